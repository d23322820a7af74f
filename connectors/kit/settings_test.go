package kit

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// getterCase is one getter call on one value: get reads the setting "k"
// and returns what the getter returned; wantErr is the full error text
// ("" for none).
type getterCase struct {
	name    string
	value   string // the setting "k"; "<absent>" leaves it out
	get     func(s *Settings) any
	want    any
	wantErr string
}

func runGetterCases(t *testing.T, tests []getterCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.Params{"k": tc.value}
			if tc.value == "<absent>" {
				p = nil
			}
			s := Read(p)
			got := tc.get(s)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
			err := s.Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			}
			if err != nil && pipeline.SettingOf(pipeline.SplitErrors(err)[0]) != "k" {
				t.Errorf("error %v does not name the setting", err)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	dur := func(s *Settings) any { return s.Duration("k", 5*time.Second) }
	in := func(s *Settings) any { return s.DurationIn("k", time.Second, 100*time.Millisecond, time.Hour) }
	runGetterCases(t, []getterCase{
		{"absent gives the default", "<absent>", dur, 5 * time.Second, ""},
		{"go duration", "1m30s", dur, 90 * time.Second, ""},
		{"days", "2d", dur, 48 * time.Hour, ""},
		{"zero", "0", dur, time.Duration(0), ""},
		{"spaces around", " 2s ", dur, 2 * time.Second, ""},
		{"bare number is refused with a hint", "30", dur, 5 * time.Second, `k "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)`},
		{"negative", "-1s", dur, 5 * time.Second, `k "-1s": must not be negative`},
		{"garbage", "soon", dur, 5 * time.Second, `k "soon": want a duration like 500ms, 2s or 1m30s`},
		{"in range", "2s", in, 2 * time.Second, ""},
		{"below range", "10ms", in, time.Second, `k "10ms": want a duration from 100ms to 1h0m0s`},
		{"above range", "2d", in, time.Second, `k "2d": want a duration from 100ms to 1h0m0s`},
	})
}

func TestSize(t *testing.T) {
	size := func(s *Settings) any { return s.Size("k", 1<<20) }
	in := func(s *Settings) any { return s.SizeIn("k", 1024, 1, 64<<20) }
	runGetterCases(t, []getterCase{
		{"absent", "<absent>", size, int64(1 << 20), ""},
		{"binary unit", "4MiB", size, int64(4 << 20), ""},
		{"decimal unit", "1MB", size, int64(1e6), ""},
		{"kibibytes", "512KiB", size, int64(512 << 10), ""},
		{"plain bytes", "1048576", size, int64(1 << 20), ""},
		{"unknown unit", "4MiBs", size, int64(1 << 20), `k "4MiBs": unknown unit "MiBs" (units: B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)`},
		{"ambiguous", "4m", size, int64(1 << 20), `k "4m": unit "m" is ambiguous: write MiB (powers of 1024) or MB (powers of 1000)`},
		{"zero below range", "0", in, int64(1024), `k "0": want a size from 1 to 64MiB`},
		{"above range", "1GiB", in, int64(1024), `k "1GiB": want a size from 1 to 64MiB`},
	})
}

func TestNumbers(t *testing.T) {
	port := func(s *Settings) any { return s.Int("k", 1883, 1, 65535) }
	atLeast := func(s *Settings) any { return s.Int("k", 16, 1, math.MaxInt) }
	i64 := func(s *Settings) any { return s.Int64("k", 0, 0, math.MaxInt64) }
	u64 := func(s *Settings) any { return s.Uint64("k", 1) }
	rate := func(s *Settings) any { return s.Float("k", 0, 0, math.Inf(1)) }
	frac := func(s *Settings) any { return s.Float("k", 0.5, 0, 1) }
	runGetterCases(t, []getterCase{
		{"int", "8080", port, 8080, ""},
		{"int absent", "<absent>", port, 1883, ""},
		{"int above", "70000", port, 1883, `k "70000": want a whole number from 1 to 65535`},
		{"int not a number", "lots", port, 1883, `k "lots": want a whole number from 1 to 65535`},
		{"int fraction", "1.5", port, 1883, `k "1.5": want a whole number from 1 to 65535`},
		{"int open above", "0", atLeast, 16, `k "0": want a whole number of at least 1`},
		{"int64", "9000000000", i64, int64(9e9), ""},
		{"int64 negative", "-1", i64, int64(0), `k "-1": want a whole number of at least 0`},
		{"uint64", "18446744073709551615", u64, uint64(math.MaxUint64), ""},
		{"uint64 negative", "-7", u64, uint64(1), `k "-7": want a whole number of at least 0`},
		{"float", "0.25", rate, 0.25, ""},
		{"float exponent", "1e3", rate, 1000.0, ""},
		{"float negative", "-1", rate, 0.0, `k "-1": want a number of at least 0`},
		{"float NaN", "NaN", rate, 0.0, `k "NaN": want a number of at least 0`},
		{"float infinite", "+Inf", rate, 0.0, `k "+Inf": want a number of at least 0`},
		{"float range", "2", frac, 0.5, `k "2": want a number from 0 to 1`},
	})
}

type level int

func TestBoolEnumStringList(t *testing.T) {
	boolean := func(s *Settings) any { return s.Bool("k", true) }
	enum := func(s *Settings) any { return s.Enum("k", "block", "block", "drop-oldest") }
	choose := func(s *Settings) any {
		return Choose(s, "k", level(0),
			Choice[level]{Name: "all", Aliases: []string{"-1"}, Value: 1},
			Choice[level]{Name: "one", Aliases: []string{"1", "leader"}, Value: 2},
			Choice[level]{Name: "none", Aliases: []string{"0"}, Value: 3})
	}
	str := func(s *Settings) any { return s.String("k", "def") }
	list := func(s *Settings) any { return s.List("k", []string{"a"}) }
	runGetterCases(t, []getterCase{
		{"bool true", "true", boolean, true, ""},
		{"bool no", "no", boolean, false, ""},
		{"bool off", "OFF", boolean, false, ""},
		{"bool absent", "<absent>", boolean, true, ""},
		{"bool bad", "nope", boolean, true, `k "nope": want true or false`},
		{"enum", "drop-oldest", enum, "drop-oldest", ""},
		{"enum case-insensitive", "BLOCK", enum, "block", ""},
		{"enum did you mean", "drop-olest", enum, "block", `k "drop-olest": want block or drop-oldest (did you mean "drop-oldest"?)`},
		{"enum far off", "sometimes", enum, "block", `k "sometimes": want block or drop-oldest`},
		{"choose by name", "one", choose, level(2), ""},
		{"choose by alias", "-1", choose, level(1), ""},
		{"choose bad", "al", choose, level(0), `k "al": want all, one or none (did you mean "all"?)`},
		{"string", "edge-1", str, "edge-1", ""},
		{"string empty is a value", "", str, "", ""},
		{"string absent", "<absent>", str, "def", ""},
		{"list", "traceparent, x-* ,baggage", list, []string{"traceparent", "x-*", "baggage"}, ""},
		{"list none", "none", list, []string{}, ""},
		{"list absent", "<absent>", list, []string{"a"}, ""},
	})
}

func TestSecretSetting(t *testing.T) {
	s := Read(pipeline.Params{"password": "hunter2", "pasword": "hunter3"})
	pw := s.Secret("password")
	if pw.Value() != "hunter2" || pw.String() != Redacted {
		t.Fatalf("secret = %q / %q", pw.Value(), pw.String())
	}
	s.Errorf("password", "rejected by the broker")
	err := s.Err()
	want := "password: rejected by the broker\npasword: unknown setting (did you mean \"password\"?)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if strings.Contains(err.Error(), "hunter") {
		t.Fatalf("error shows a secret: %v", err)
	}
	if got := Read(nil).Secret("password"); got.IsSet() || got.Value() != "" || got.String() != "" {
		t.Fatalf("absent secret = %#v", got)
	}
}

// Every problem is reported at once, unknown settings get suggestions,
// and each error names its setting for the DSL.
func TestErrCollectsEverything(t *testing.T) {
	s := Read(pipeline.Params{
		"keepalive": "30", "qos": "3", "clean_start": "maybe", "client_idd": "x", "colour": "red",
	})
	s.Duration("keepalive", 30*time.Second)
	s.Int("qos", 1, 0, 2)
	s.Bool("clean_start", false)
	s.String("client_id", "")
	err := s.Err()
	want := []string{
		`keepalive "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)`,
		`qos "3": want a whole number from 0 to 2`,
		`clean_start "maybe": want true or false`,
		`client_idd: unknown setting (did you mean "client_id"?)`,
		`colour: unknown setting (known: keepalive, qos, clean_start, client_id)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var names []string
	for _, e := range pipeline.SplitErrors(err) {
		names = append(names, pipeline.SettingOf(e))
	}
	if got := strings.Join(names, " "); got != "keepalive qos clean_start client_idd colour" {
		t.Fatalf("settings named: %s", got)
	}
	var ke *Error
	if !errors.As(err, &ke) || ke.Key != "keepalive" || ke.Value != "30" {
		t.Fatalf("errors.As: %+v", ke)
	}
	if Read(pipeline.Params{"a": "1"}).Err().Error() != "a: unknown setting (none are accepted here)" {
		t.Fatal("no-settings message")
	}
	if err := Read(nil).Err(); err != nil {
		t.Fatalf("empty: %v", err)
	}
}

func TestLinkNoun(t *testing.T) {
	err := ReadLink(pipeline.Outbound, pipeline.Params{"retian": "true"})
	err.Bool("retain", false)
	if got := err.Err().Error(); got != `retian: unknown outbound link setting (did you mean "retain"?)` {
		t.Fatal(got)
	}
}

func TestAlias(t *testing.T) {
	tests := []struct {
		p       pipeline.Params
		want    bool
		wantErr string
	}{
		{pipeline.Params{"insecure_skip_verify": "true"}, true, ""},
		{pipeline.Params{"insecure": "true"}, true, ""},
		{pipeline.Params{"insecure": "true", "insecure_skip_verify": "false"}, false,
			"insecure: insecure_skip_verify and insecure are the same setting; give one"},
		{pipeline.Params{"insecure": "sure"}, false, `insecure "sure": want true or false`},
	}
	for _, tc := range tests {
		s := Read(tc.p)
		s.Alias("insecure_skip_verify", "insecure")
		got := s.Bool("insecure_skip_verify", false)
		err := s.Err()
		if got != tc.want || (err == nil) != (tc.wantErr == "") || err != nil && err.Error() != tc.wantErr {
			t.Errorf("%v: got %v, %v; want %v, %q", tc.p, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestPrefixedAndHas(t *testing.T) {
	s := Read(pipeline.Params{"header_X_B": "2", "header_X_A": "1", "tls": "true", "heder_X": "3"})
	got := s.Prefixed("header_", "header_<Name>")
	want := []Pair{{Key: "header_X_A", Name: "X_A", Value: "1"}, {Key: "header_X_B", Name: "X_B", Value: "2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Prefixed = %+v", got)
	}
	if !s.Has("tls") || s.Has("sasl") {
		t.Fatal("Has")
	}
	if err := s.Err(); err == nil || err.Error() != "heder_X: unknown setting (known: header_<Name>, tls, sasl)" {
		t.Fatalf("err = %v", err)
	}
	if k := s.Known(); strings.Join(k, ",") != "header_<Name>,tls,sasl" {
		t.Fatalf("Known = %v", k)
	}
}

func TestErrorValueIsShortened(t *testing.T) {
	s := Read(pipeline.Params{"template": strings.Repeat("é", 100)})
	s.String("template", "")
	s.Errorf("template", "bad")
	msg := s.Err().Error()
	if !strings.HasSuffix(msg, `…": bad`) || len(msg) > 100 {
		t.Fatalf("message %q", msg)
	}
}

func TestLinkOptions(t *testing.T) {
	type opts struct{ N int }
	def := opts{N: 1}
	for _, tc := range []struct {
		in   any
		want int
	}{
		{opts{N: 2}, 2},
		{&opts{N: 3}, 3},
		{(*opts)(nil), 1},
		{nil, 1},
		{"other", 1},
	} {
		if got := LinkOptions(tc.in, def); got.N != tc.want {
			t.Errorf("LinkOptions(%#v) = %d, want %d", tc.in, got.N, tc.want)
		}
	}
}
