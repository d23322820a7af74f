package knxnet

import (
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	cases := []struct {
		in      string
		match   []string // three-level addresses that match
		nomatch []string
		err     string
	}{
		{in: "1/2/3", match: []string{"1/2/3"}, nomatch: []string{"1/2/4", "1/3/3", "2/2/3"}},
		{in: "1/2/*", match: []string{"1/2/0", "1/2/255"}, nomatch: []string{"1/3/0", "0/2/0"}},
		{in: "1/*/*", match: []string{"1/0/0", "1/7/255"}, nomatch: []string{"2/0/0"}},
		{in: "*/*/7", match: []string{"0/0/7", "31/7/7"}, nomatch: []string{"0/0/8"}},
		{in: "*", match: []string{"0/0/0", "31/7/255"}},
		{in: "1/515", match: []string{"1/2/3"}, nomatch: []string{"1/2/4"}},
		{in: "1/*", match: []string{"1/0/0", "1/7/255"}, nomatch: []string{"0/7/255"}},
		{in: "2051", match: []string{"1/0/3"}, nomatch: []string{"1/0/4"}},
		{in: "31/7/255", match: []string{"31/7/255"}},
		{in: "32/0/0", err: "level 1 is 32, want 0 to 31"},
		{in: "1/8/0", err: "level 2 is 8, want 0 to 7"},
		{in: "1/2/256", err: "level 3 is 256, want 0 to 255"},
		{in: "1/2048", err: "level 2 is 2048, want 0 to 2047"},
		{in: "65536", err: "is not a number"},
		{in: "1/2/3/4", err: "want 1 to 3 levels"},
		{in: "", err: "empty group address"},
		{in: "1//3", err: "level 2 \"\" is not a number"},
		{in: "a/b/c", err: "not a number or *"},
		{in: "+1/2/3", err: "not a number"},
		{in: "1/2/-3", err: "not a number"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParsePattern(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParsePattern(%q) = %v, want error containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.match {
				a, _, err := ParseGroupAddress(m)
				if err != nil {
					t.Fatal(err)
				}
				if !p.Match(a) {
					t.Errorf("%q does not match %s", tc.in, m)
				}
			}
			for _, m := range tc.nomatch {
				a, _, _ := ParseGroupAddress(m)
				if p.Match(a) {
					t.Errorf("%q matches %s", tc.in, m)
				}
			}
		})
	}
}

func TestGroupAddressFormats(t *testing.T) {
	cases := []struct {
		in    string
		raw   GroupAddress
		style AddressStyle
		three string
	}{
		{"1/2/3", 0x0a03, ThreeLevel, "1/2/3"},
		{"31/7/255", 0xffff, ThreeLevel, "31/7/255"},
		{"0/0/1", 1, ThreeLevel, "0/0/1"},
		{"1/515", 0x0a03, TwoLevel, "1/2/3"},
		{"2563", 0x0a03, Free, "1/2/3"},
	}
	for _, tc := range cases {
		a, style, err := ParseGroupAddress(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if a != tc.raw || style != tc.style {
			t.Errorf("%s: 0x%04x style %d, want 0x%04x style %d", tc.in, uint16(a), style, uint16(tc.raw), tc.style)
		}
		if got := a.Format(style); got != tc.in {
			t.Errorf("Format(%d) = %q, want %q", style, got, tc.in)
		}
		if a.String() != tc.three {
			t.Errorf("String() = %q, want %q", a.String(), tc.three)
		}
	}
	if _, _, err := ParseGroupAddress("1/2/*"); err == nil {
		t.Error("ParseGroupAddress accepted a wildcard")
	}
}

func TestIndividualAddress(t *testing.T) {
	for in, want := range map[string]IndividualAddress{"1.1.5": 0x1105, "15.15.255": 0xffff, "0.0.1": 1} {
		a, err := ParseIndividualAddress(in)
		if err != nil || a != want || a.String() != in {
			t.Errorf("ParseIndividualAddress(%q) = 0x%04x %v (%s), want 0x%04x", in, uint16(a), err, a, uint16(want))
		}
	}
	for _, in := range []string{"16.0.0", "1.1", "1.1.256", "a.b.c", ""} {
		if _, err := ParseIndividualAddress(in); err == nil {
			t.Errorf("ParseIndividualAddress(%q) accepted", in)
		}
	}
}
