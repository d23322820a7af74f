package topic_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		{"a/+/c", "a/x/c", true},
		{"a/+/c", "a//c", true},
		{"a/+", "a/x/y", false},
		{"+", "a", true},
		{"+", "", true},
		{"+/+", "/x", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c/d", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"sensors/+/temp", "sensors/d-1/temp", true},
		{"sensors/+/temp", "sensors/d-1/hum", false},
		{"a/b", "a/B", false},
	}
	for _, tt := range tests {
		if got := topic.Match(tt.filter, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, f := range []string{"a", "a/+/b", "#", "a/#", "+", "/"} {
		if err := topic.Validate(f); err != nil {
			t.Errorf("Validate(%q) = %v", f, err)
		}
	}
	for _, f := range []string{"", "a/#/b", "a+", "a/b#", "#/a"} {
		if err := topic.Validate(f); err == nil {
			t.Errorf("Validate(%q) accepted", f)
		}
	}
}

func TestFilterStripsShare(t *testing.T) {
	f, g := topic.Filter("$share/grp/sensors/+/temp")
	if f != "sensors/+/temp" || g != "grp" {
		t.Fatalf("got %q %q", f, g)
	}
	if f, g := topic.Filter("plain/t"); f != "plain/t" || g != "" {
		t.Fatalf("got %q %q", f, g)
	}
}

// The router must agree with Match for every filter/topic pair.
func TestRouterAgreesWithMatch(t *testing.T) {
	filters := []string{"a/b/c", "a/+/c", "a/#", "#", "+/+", "+", "a/b", "$SYS/#", "+/b/#", "a/+/+", "x"}
	topics := []string{"a/b/c", "a/x/c", "a", "a/b", "b", "$SYS/x", "x/b/z/w", "a//c", "", "/", "x"}
	r := topic.NewRouter[string]()
	for _, f := range filters {
		if err := r.Add(f, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, tp := range topics {
		got := r.Lookup(nil, tp)
		var want []string
		for _, f := range filters {
			if topic.Match(f, tp) {
				want = append(want, f)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("topic %q: router %v, Match %v", tp, got, want)
		}
	}
}

func FuzzRouterAgreesWithMatch(f *testing.F) {
	f.Add("a/+/c", "a/b/c")
	f.Add("#", "$x")
	f.Add("a/#", "a")
	f.Fuzz(func(t *testing.T, filter, tp string) {
		if topic.Validate(filter) != nil {
			return
		}
		r := topic.NewRouter[int]()
		if err := r.Add(filter, 1); err != nil {
			t.Fatal(err)
		}
		got := len(r.Lookup(nil, tp)) > 0
		if want := topic.Match(filter, tp); got != want {
			t.Fatalf("filter %q topic %q: router %v Match %v", filter, tp, got, want)
		}
	})
}

func ExampleRouter() {
	r := topic.NewRouter[string]()
	r.Add("sensors/+/temp", "sensor.temp")
	r.Add("sensors/#", "sensor.all")
	fmt.Println(r.Lookup(nil, "sensors/d-1/temp"))
	// Output: [sensor.all sensor.temp]
}

func BenchmarkRouterLookup(b *testing.B) {
	r := topic.NewRouter[int]()
	for i := 0; i < 100; i++ {
		r.Add(fmt.Sprintf("site/%d/+/temp", i), i)
	}
	r.Add("site/#", -1)
	dst := make([]int, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		dst = r.Lookup(dst[:0], "site/42/d-7/temp")
	}
}
