package pipeline_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func TestAckFanIn(t *testing.T) {
	tests := []struct {
		name    string
		shares  int     // extra shares taken
		fails   []error // outcomes of the extra shares (nil = Done)
		want    error
		wantRun bool
	}{
		{"source only", 0, nil, nil, true},
		{"all succeed", 3, []error{nil, nil, nil}, nil, true},
		{"one fails", 3, []error{nil, errors.New("boom"), nil}, errors.New("boom"), true},
		{"nack without cause", 1, []error{pipeline.ErrNacked}, pipeline.ErrNacked, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got error
			runs := 0
			a := pipeline.NewAck(func(err error) { got = err; runs++ })
			a.Add(tt.shares)
			var wg sync.WaitGroup
			for _, f := range tt.fails {
				wg.Add(1)
				go func() { defer wg.Done(); a.Finish(f) }()
			}
			wg.Wait()
			if runs != 0 {
				t.Fatal("callback ran before the source released its share")
			}
			a.Done()
			if runs != 1 {
				t.Fatalf("callback ran %d times", runs)
			}
			if (got == nil) != (tt.want == nil) || (got != nil && got.Error() != tt.want.Error()) {
				t.Fatalf("got %v want %v", got, tt.want)
			}
		})
	}
}

func TestNilAckIsNoop(t *testing.T) {
	var a *pipeline.Ack
	a.Add(3)
	a.Done()
	a.Nack(nil)
	if a.Pending() != 0 {
		t.Fatal("nil ack has pending shares")
	}
}

func TestAckOverReleasePanics(t *testing.T) {
	a := pipeline.NewAck(nil)
	a.Done()
	defer func() {
		if recover() == nil {
			t.Fatal("expected a panic on double release")
		}
	}()
	a.Done()
}

func TestHeaders(t *testing.T) {
	h := pipeline.Headers{{"a", "1"}, {"b", "2"}, {"a", "3"}}
	if v, _ := h.Get("a"); v != "1" {
		t.Fatal(v)
	}
	h = h.Set("a", "9").Set("c", "4")
	if len(h) != 3 || h[0].Value != "9" || h[2].Key != "c" {
		t.Fatalf("%v", h)
	}
}

func TestTemplate(t *testing.T) {
	env := &pipeline.Envelope{Topic: "in/x", Key: []byte("k1"), Value: map[string]any{
		"device": "d-1", "n": 3.0, "meta": map[string]any{"site": "s9"}}}
	tests := []struct {
		tmpl, want, err string
	}{
		{"alerts", "alerts", ""},
		{"alerts/{device}", "alerts/d-1", ""},
		{"{meta.site}/{device}/{n}", "s9/d-1/3", ""},
		{"from/{topic}/{key}", "from/in/x/k1", ""},
		{"x/{missing}", "", `field "missing" missing`},
		{"x/{device.y}", "", "not an object"},
	}
	for _, tt := range tests {
		tp, err := pipeline.ParseTemplate(tt.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tp.Render(env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.tmpl, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v want %q", tt.tmpl, got, err, tt.want)
		}
	}
	for _, bad := range []string{"a/{", "a/{}"} {
		if _, err := pipeline.ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) accepted", bad)
		}
	}
}
