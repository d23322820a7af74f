package flowtest

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestPassingSuite(t *testing.T) {
	s, err := LoadSuite("testdata/relay.test.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Run(context.Background(), quietLog()) {
		if !r.Passed() {
			t.Fatalf("%s: %v", r.Case, r.Failures)
		}
	}
}

// TestFailuresAreReported makes sure the harness does fail: each case of
// failing.test.json is wrong in one way.
func TestFailuresAreReported(t *testing.T) {
	s, err := LoadSuite("testdata/failing.test.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"wrong value":                            `out://relayed/x message #1: got {"kind":"x","n":1,"where":"in/a"}, want {"n":2}`,
		"wrong count":                            "out://relayed/x: got 1 messages, want 0",
		"unexpected dead letter":                 "unexpected dead letters",
		"input matches no link":                  "input bus://elsewhere matches no record's from link",
		"expectation on an undeclared connector": `expect typo://relayed/x: the pipeline file declares no connector "typo"`,
		"unexpected output":                      "unexpected output (list its link in \"expect\", or in \"ignore\" to skip it):\n      out://relayed/x ",
		"output beside the expected link":        "unexpected output (list its link in \"expect\", or in \"ignore\" to skip it):\n      out://relayed/x ",
		"expect on a link nothing publishes to":  "expect out://elsewhere/x: no link of the pipeline file publishes there (sink links on out: [out://relayed/+])",
		"ignore on a link nothing publishes to":  "ignore bus://in/a: no link of the pipeline file publishes there",
	}
	res := s.Run(context.Background(), quietLog())
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d", len(res), len(want))
	}
	for _, r := range res {
		if r.Passed() {
			t.Errorf("%s passed, want a failure", r.Case)
			continue
		}
		if !strings.Contains(strings.Join(r.Failures, "\n"), want[r.Case]) {
			t.Errorf("%s: failures %q, want one containing %q", r.Case, r.Failures, want[r.Case])
		}
	}
}

func TestLoadSuiteRejectsUnknownFields(t *testing.T) {
	if _, err := LoadSuite("testdata/does-not-exist.test.json"); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestFind(t *testing.T) {
	files, err := Find("testdata")
	if err != nil || len(files) != 2 || !strings.HasSuffix(files[0], "failing.test.json") {
		t.Fatalf("Find = %v, %v", files, err)
	}
}
