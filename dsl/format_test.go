package dsl

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func formatSrc(t testing.TB, name string, src []byte) []byte {
	t.Helper()
	errs := &ErrorList{}
	f := Parse(name, src, errs)
	if errs.Len() > 0 {
		t.Fatalf("%s: %v", name, errs.Err())
	}
	return Format(f)
}

func TestFormatGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/fmt/messy.flow")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/fmt/messy.golden")
	if err != nil {
		t.Fatal(err)
	}
	got := formatSrc(t, "messy.flow", in)
	if !bytes.Equal(got, want) {
		t.Fatalf("Format:\n%s\nwant:\n%s", got, want)
	}
}

// TestFormatIdempotent formats every example and the golden file twice.
func TestFormatIdempotent(t *testing.T) {
	files, _ := filepath.Glob("../pipelines/*.flow")
	files = append(files, "testdata/fmt/messy.flow", "testdata/fmt/messy.golden")
	if len(files) < 3 {
		t.Fatal("no example files found")
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		once := formatSrc(t, f, src)
		twice := formatSrc(t, f, once)
		if !bytes.Equal(once, twice) {
			t.Errorf("%s: formatting is not idempotent:\n%s\n---\n%s", f, once, twice)
		}
	}
}

// TestExamplesAreFormatted keeps the shipped examples in canonical form.
func TestExamplesAreFormatted(t *testing.T) {
	files, _ := filepath.Glob("../pipelines/*.flow")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if out := formatSrc(t, f, src); !bytes.Equal(out, src) {
			t.Errorf("%s is not formatted (run aimdb-flow fmt -w %s):\n%s", f, f, out)
		}
	}
}

// TestFormatKeepsMeaning compiles a file and its formatted form to graphs
// with the same description.
func TestFormatKeepsMeaning(t *testing.T) {
	src, err := os.ReadFile("testdata/fmt/messy.flow")
	if err != nil {
		t.Fatal(err)
	}
	g1, err := Load(Options{}, Source{Name: "a.flow", Src: src})
	if err != nil {
		t.Fatal(err)
	}
	g2, err := Load(Options{}, Source{Name: "a.flow", Src: formatSrc(t, "a.flow", src)})
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := describe(g1, false), describe(g2, false); d1 != d2 {
		t.Fatalf("meaning changed:\n%s\n---\n%s", d1, d2)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../pipelines/*.flow")
	files = append(files, "testdata/fmt/messy.flow")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("record r {\n  from \"x://y\" decode json\n    rate 5 # c\n}\n"))
	f.Add([]byte("pipeline p { from r\n filter `a\n>\n1` }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		errs := &ErrorList{}
		file := Parse("f.flow", src, errs)
		out := Format(file)
		_ = Compile(Options{Getenv: func(string) (string, bool) { return "", false }}, &ErrorList{}, file)
		if errs.Len() > 0 {
			return
		}
		// A file that parses formats to one that parses, and formatting
		// is idempotent.
		errs2 := &ErrorList{}
		f2 := Parse("f.flow", out, errs2)
		if errs2.Len() > 0 {
			t.Fatalf("formatted output does not parse: %v\ninput:\n%q\noutput:\n%q", errs2.Err(), src, out)
		}
		if out2 := Format(f2); !bytes.Equal(out, out2) {
			t.Fatalf("not idempotent:\ninput %q\nonce  %q\ntwice %q", src, out, out2)
		}
	})
}
