package dsl

import (
	"slices"
	"strings"
	"testing"
)

// A settable record compiles to RecordSpec.Settable, counts as written (a
// pipeline may read it without Embedded) and takes no other writer.
func TestSettable(t *testing.T) {
	src := okHeader + "record setpoint {\n  settable\n  buffer latest\n}\npipeline p {\n  from setpoint\n  to \"stdio://stdout\" encode json\n}\n"
	g, err := Load(Options{}, Source{Name: "t.flow", Src: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	if !g.Records()[0].Settable {
		t.Fatal("settable did not set RecordSpec.Settable")
	}
	tests := []struct {
		name, src, want string
	}{
		{"with an argument", okHeader + "record s {\n  settable yes\n}\n", "t.flow:4:12: settable: unexpected name yes"},
		{"twice", okHeader + "record s {\n  settable\n  settable\n}\n", "t.flow:5:3: record s: settable given twice"},
		{"with an inbound link", okHeader + "record s {\n  settable\n  from \"gen://x\" decode json\n}\n", "record s: settable, but written by its inbound links"},
		{"written by a pipeline", okHeader + "record s {\n  settable\n}\nrecord r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  into s\n}\n", "record s already has a writer (it is settable"},
		{"misspelt", okHeader + "record s {\n  setable\n}\n", `(did you mean "settable"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probs := load(t, tc.src, nil)
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("problems %q, want one containing %q", probs, tc.want)
			}
		})
	}
}

func TestFormatKeepsSettable(t *testing.T) {
	src := "record setpoint {\n    settable\n  buffer latest\n}\n"
	out := formatSrc(t, "t.flow", []byte(src))
	if !strings.Contains(string(out), "  settable\n") {
		t.Fatalf("formatted:\n%s", out)
	}
}
