package w1_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/bench/w1"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// edgeLines are appended to the generated input: the boundary of the
// filter, numbers in other spellings, another key order, escapes, nested
// values and an existing "alert" field.
var edgeLines = []string{
	`{"device":"edge-eq","temp":25,"seq":-1}`,
	`{"device":"edge-eq-float","temp":25.0,"seq":-2}`,
	`{"device":"edge-above","temp":25.01,"seq":-3}`,
	`{"temp":26,"device":"edge-int-first","seq":-4}`,
	`{"device":"edge-exp","temp":2.6e1,"seq":-5}`,
	`{"device":"edge-neg","temp":-30,"seq":-6}`,
	`{"device":"edge \"quoted\" \u00e9\\","temp":40.5,"meta":{"a":[1,"x",null,true]},"seq":-7}`,
	`{"device":"edge-alert","temp":30,"alert":false,"seq":-8}`,
}

// writeInput generates n W1 lines plus edgeLines into dir/in.jsonl.
func writeInput(t *testing.T, dir string, n int) string {
	t.Helper()
	in := filepath.Join(dir, "in.jsonl")
	if err := w1.Generate(in, n); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range edgeLines {
		fmt.Fprintln(f, l)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return in
}

// readRecords parses every line of path with encoding/json.
func readRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s line %d: %v: %s", filepath.Base(path), i+1, err, line)
		}
		recs = append(recs, m)
	}
	return recs
}

// oracle computes W1's expected output from the input independently of
// every variant: the records whose temp is a number above keep, in input
// order, with "alert": true.
func oracle(t *testing.T, in string, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	var want []map[string]any
	for _, m := range readRecords(t, in) {
		if keep(m) {
			m["alert"] = true
			want = append(want, m)
		}
	}
	return want
}

func tempAbove25(m map[string]any) bool {
	f, ok := m["temp"].(float64)
	return ok && f > 25.0
}

// sameRecords fails unless got has the records of want, in order, with
// equal fields and values (numbers compared as encoding/json parses them).
func sameRecords(t *testing.T, name string, got, want []map[string]any) {
	t.Helper()
	for i := 0; i < min(len(got), len(want)); i++ {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: record %d differs:\n got  %v\n want %v", name, i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", name, len(got), len(want))
	}
}

// runFlow runs a .flow file of pipelines/ in process, the graph the CLI
// builds from it, with W1_IN and W1_OUT (and extra variables) set.
func runFlow(t *testing.T, flow, in, out string, extra map[string]string) {
	t.Helper()
	vars := map[string]string{"W1_IN": in, "W1_OUT": out}
	for k, v := range extra {
		vars[k] = v
	}
	os.Remove(out) // the file sink appends
	g, err := dsl.LoadFiles(dsl.Options{Getenv: func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}}, filepath.Join("..", "..", "pipelines", flow))
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSameOutput checks that every W1 variant does the same work: each
// writes exactly the records an independent encoding/json computation of
// W1 expects, in input order, with the same fields and values. The bytes
// may differ (key order, number spelling), the records may not.
func TestSameOutput(t *testing.T) {
	dir := t.TempDir()
	in := writeInput(t, dir, 20000)
	want := oracle(t, in, tempAbove25)
	if len(want) < 1000 {
		t.Fatalf("oracle kept only %d records: input generator changed?", len(want))
	}
	loop := func(f func(string, string) (int, error)) func(string) error {
		return func(out string) error {
			n, err := f(in, out)
			if err == nil && n != len(want) {
				err = fmt.Errorf("reported %d records written, want %d", n, len(want))
			}
			return err
		}
	}
	pipe := func(workers int) func(string) error {
		return func(out string) error {
			_, err := w1.Pipeline(context.Background(), in, out, workers)
			return err
		}
	}
	flow := func(name string, extra map[string]string) func(string) error {
		return func(out string) error {
			runFlow(t, name, in, out, extra)
			return nil
		}
	}
	variants := []struct {
		name string
		run  func(out string) error
	}{
		{"strong loop", loop(w1.Baseline)},
		{"map loop", loop(w1.MapBaseline)},
		{"pipeline Parallel(1)", pipe(1)},
		{"pipeline Parallel(2)", pipe(2)},
		{"pipelines/w1.flow", flow("w1.flow", nil)},
		{"pipelines/w1-parallel.flow, parallel 2", flow("w1-parallel.flow", map[string]string{"W1_WORKERS": "2"})},
	}
	for i, v := range variants {
		out := filepath.Join(dir, "out-"+strconv.Itoa(i)+".jsonl")
		if err := v.run(out); err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		sameRecords(t, v.name, readRecords(t, out), want)
	}
}

// TestBaselineFilterIsGeneral runs the strong loop with other
// expressions: it evaluates the program through expr-lang on the fields
// the program reads, whatever they are.
func TestBaselineFilterIsGeneral(t *testing.T) {
	dir := t.TempDir()
	in := writeInput(t, dir, 5000)
	tests := []struct {
		expr string
		keep func(map[string]any) bool
	}{
		{`device == "d-7" || seq < 10`, func(m map[string]any) bool {
			s, _ := m["seq"].(float64)
			return m["device"] == "d-7" || s < 10
		}},
		{`temp <= 25 and seq > 4000`, func(m map[string]any) bool {
			f, _ := m["temp"].(float64)
			s, _ := m["seq"].(float64)
			return f <= 25 && s > 4000
		}},
		{`device startsWith "edge" and temp > 25`, func(m map[string]any) bool {
			d, _ := m["device"].(string)
			return len(d) >= 4 && d[:4] == "edge" && tempAbove25(m)
		}},
		{`meta.a[1] == "x"`, func(m map[string]any) bool {
			meta, _ := m["meta"].(map[string]any)
			a, _ := meta["a"].([]any)
			return len(a) > 1 && a[1] == "x"
		}},
	}
	for i, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			want := oracle(t, in, tt.keep)
			if len(want) == 0 {
				t.Fatal("oracle kept nothing: a weak case")
			}
			out := filepath.Join(dir, "out-"+strconv.Itoa(i)+".jsonl")
			n, err := w1.BaselineFilter(in, out, tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) {
				t.Errorf("reported %d records, want %d", n, len(want))
			}
			sameRecords(t, "strong loop", readRecords(t, out), want)
		})
	}
}

// TestBaselineLongLines checks the strong loop on a line longer than its
// read buffer and on a last line without a newline.
func TestBaselineLongLines(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	long := bytes.Repeat([]byte("x"), 3<<20)
	src := fmt.Sprintf("{\"temp\":30,\"pad\":%q}\n{\"temp\":1}\n{\"temp\":26,\"seq\":2}", long)
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	if _, err := w1.Baseline(in, out); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "strong loop", readRecords(t, out), oracle(t, in, tempAbove25))
}

// TestBaselineSteadyStateAllocs checks that the strong loop allocates
// (almost) nothing per record once warm: the allocations of a run over
// many records minus those of a run over few, per extra record.
func TestBaselineSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("generates inputs")
	}
	dir := t.TempDir()
	small, large := filepath.Join(dir, "small.jsonl"), filepath.Join(dir, "large.jsonl")
	const nSmall, nLarge = 2000, 50000
	if err := w1.Generate(small, nSmall); err != nil {
		t.Fatal(err)
	}
	if err := w1.Generate(large, nLarge); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	mallocs := func(in string) uint64 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		if _, err := w1.Baseline(in, out); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&b)
		return b.Mallocs - a.Mallocs
	}
	mallocs(small) // warm up package-level state (expr, fastjson)
	s, l := mallocs(small), mallocs(large)
	perRecord := (float64(l) - float64(s)) / (nLarge - nSmall)
	t.Logf("strong loop: %d allocations for %d records, %d for %d: %.3f per extra record", s, nSmall, l, nLarge, perRecord)
	if perRecord > 0.01 {
		t.Errorf("strong loop allocates %.3f times per record in steady state, want ~0", perRecord)
	}
}

// allocsPerRecord reports the mallocs of b's loop per input record.
func allocsPerRecord(b *testing.B, n int, f func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		f()
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n*b.N), "allocs/rec")
}

func BenchmarkW1(b *testing.B) {
	dir := b.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	const n = 200000
	if err := w1.Generate(in, n); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	loop := func(f func(string, string) (int, error)) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			allocsPerRecord(b, n, func() {
				if _, err := f(in, out); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
	b.Run("loop", loop(w1.Baseline))
	b.Run("map-loop", loop(w1.MapBaseline))
	for _, workers := range []int{1, 2} {
		b.Run("pipeline/workers="+strconv.Itoa(workers), func(b *testing.B) {
			b.ReportAllocs()
			allocsPerRecord(b, n, func() {
				if _, err := w1.Pipeline(context.Background(), in, out, workers); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// TestSameRecordsCompares checks the comparison the scaling and pipeline
// tests rely on: key order and number spelling are ignored, a missing or
// different field, a missing record and a different order are not.
func TestSameRecordsCompares(t *testing.T) {
	dir := t.TempDir()
	want := "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":\"y\"}\n"
	tests := []struct {
		name, got string
		same      bool
	}{
		{"identical", want, true},
		{"key order and number spelling", "{\"b\":\"x\",\"a\":1.0}\n{\"b\":\"y\",\"a\":2e0}\n", true},
		{"a field missing", "{\"a\":1}\n{\"a\":2,\"b\":\"y\"}\n", false},
		{"a value differs", "{\"a\":1,\"b\":\"x\"}\n{\"a\":3,\"b\":\"y\"}\n", false},
		{"an extra field", "{\"a\":1,\"b\":\"x\",\"c\":true}\n{\"a\":2,\"b\":\"y\"}\n", false},
		{"a record missing", "{\"a\":1,\"b\":\"x\"}\n", false},
		{"order swapped", "{\"a\":2,\"b\":\"y\"}\n{\"a\":1,\"b\":\"x\"}\n", false},
	}
	wp := filepath.Join(dir, "want.jsonl")
	if err := os.WriteFile(wp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		gp := filepath.Join(dir, "got-"+strconv.Itoa(i)+".jsonl")
		if err := os.WriteFile(gp, []byte(tt.got), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := w1.SameRecords(gp, wp); (err == nil) != tt.same {
			t.Errorf("%s: SameRecords = %v, want same=%v", tt.name, err, tt.same)
		}
	}
}
