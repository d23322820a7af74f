package regmap

import (
	"fmt"
	"strings"
	"testing"
)

func fields(t *testing.T, specs ...string) []Field {
	t.Helper()
	var out []Field
	for i := 0; i < len(specs); i += 2 {
		f, err := ParseField(specs[i], specs[i+1], Defaults{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func TestNewMapOverlaps(t *testing.T) {
	_, errs := NewMap(fields(t,
		"a", "holding 0 float32", // 0-1
		"b", "holding 1", // overlaps a
		"c", "holding 2 string 4", // 2-5
		"d", "holding 5", // overlaps c
		"e", "coil 1",
		"f", "input 1", // another table: no overlap
		"g", "coil 1", // overlaps e
	))
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{ // in table order: coils first
		"field g: coil 1 overlaps field e (coil 1)",
		"field b: holding 1 overlaps field a (holding 0-1)",
		"field d: holding 5 overlaps field c (holding 2-5)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNewMapOrder(t *testing.T) {
	m, errs := NewMap(fields(t, "z", "input 3", "y", "coil 9", "x", "holding 1", "w", "input 0"))
	if errs != nil {
		t.Fatal(errs)
	}
	var names []string
	for _, f := range m.Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "y,x,w,z" {
		t.Fatalf("order %s, want table then address: y,x,w,z", got)
	}
}

func blocks(bs []Block) string {
	var s []string
	for _, b := range bs {
		s = append(s, fmt.Sprintf("%s@%d+%d[%d:%d]", b.Table, b.Start, b.Count, b.First, b.Last))
	}
	return strings.Join(s, " ")
}

func TestReads(t *testing.T) {
	m, _ := NewMap(fields(t,
		"a", "holding 0 float32",
		"b", "holding 2",
		"c", "holding 4", // gap of 1 after b
		"d", "input 2",
		"e", "coil 0",
		"f", "coil 1",
		"g", "coil 10",
	))
	for _, tc := range []struct {
		regs, bits, gap int
		want            string
	}{
		{0, 0, 0, "coil@0+2[0:2] coil@10+1[2:3] holding@0+3[3:5] holding@4+1[5:6] input@2+1[6:7]"},
		{0, 0, 1, "coil@0+2[0:2] coil@10+1[2:3] holding@0+5[3:6] input@2+1[6:7]"},
		{0, 0, 10, "coil@0+11[0:3] holding@0+5[3:6] input@2+1[6:7]"},
		{2, 1, 10, "coil@0+1[0:1] coil@1+1[1:2] coil@10+1[2:3] holding@0+2[3:4] holding@2+1[4:5] holding@4+1[5:6] input@2+1[6:7]"},
	} {
		if got := blocks(m.Reads(tc.regs, tc.bits, tc.gap)); got != tc.want {
			t.Errorf("Reads(%d, %d, %d):\n got %s\nwant %s", tc.regs, tc.bits, tc.gap, got, tc.want)
		}
	}
}

func TestReadsProtocolLimit(t *testing.T) {
	var specs []string
	for i := range 130 {
		specs = append(specs, fmt.Sprintf("r%03d", i), fmt.Sprintf("holding %d", i))
	}
	m, _ := NewMap(fields(t, specs...))
	if got := blocks(m.Reads(0, 0, 0)); got != "holding@0+125[0:125] holding@125+5[125:130]" {
		t.Fatalf("got %s", got)
	}
	if got := blocks(m.Reads(500, 0, 0)); got != "holding@0+125[0:125] holding@125+5[125:130]" {
		t.Fatalf("a limit above the protocol's: got %s", got)
	}
}

func TestWrites(t *testing.T) {
	m, _ := NewMap(fields(t, "a", "holding 0 float32", "b", "holding 2", "c", "holding 4", "d", "coil 0", "e", "coil 1"))
	// m order: d e a b c
	if got := blocks(m.Writes([]int{0, 1, 2, 3, 4})); got != "coil@0+2[0:2] holding@0+3[2:4] holding@4+1[4:5]" {
		t.Fatalf("got %s", got)
	}
	if got := blocks(m.Writes([]int{0, 2, 4})); got != "coil@0+1[0:1] holding@0+2[2:3] holding@4+1[4:5]" {
		t.Fatalf("absent fields split a write: got %s", got)
	}
}
