package codec

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"
)

// loop runs f b.N times and also reports process CPU time per operation
// (cpu-ns/op), which includes GC work and is less sensitive than ns/op to
// other processes competing for the cores.
func loop(b *testing.B, f func() error) {
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	if used := processCPU() - start; used > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// w1Record is the record of the W1 benchmark (issue 2).
var w1Record = []byte(`{"device":"d-17","temp":23.5,"seq":1,"ts":1700000000123}`)

func w1Value() map[string]any {
	return map[string]any{"device": "d-17", "temp": 23.5, "seq": 1.0, "ts": 1700000000123.0, "alert": true}
}

func BenchmarkW1Decode(b *testing.B) {
	b.Run("codec", func(b *testing.B) {
		b.SetBytes(int64(len(w1Record)))
		loop(b, func() error { _, err := (JSON{}).Decode(w1Record); return err })
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(w1Record)))
		loop(b, func() error { var v any; return json.Unmarshal(w1Record, &v) })
	})
	b.Run("msgpack", func(b *testing.B) {
		p, err := MsgPack{}.Encode(w1Value())
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(p)))
		loop(b, func() error { _, err := (MsgPack{}).Decode(p); return err })
	})
}

func BenchmarkW1Encode(b *testing.B) {
	v := w1Value()
	b.Run("codec", func(b *testing.B) {
		loop(b, func() error { _, err := (JSON{}).Encode(v); return err })
	})
	b.Run("encoding-json", func(b *testing.B) {
		loop(b, func() error { _, err := json.Marshal(v); return err })
	})
	b.Run("msgpack", func(b *testing.B) {
		loop(b, func() error { _, err := (MsgPack{}).Encode(v); return err })
	})
}

// pairedCPU runs ours and theirs in alternating batches and reports the
// process CPU time per operation of each and their ratio. Every batch ends
// with a forced GC inside its measurement, so each side pays for the
// garbage it made (the cost of a GC with no garbage, measured with an
// empty batch, is subtracted); alternating batches cancels out drift in
// machine load.
func pairedCPU(b *testing.B, ours, theirs func() error) {
	const batch = 50000
	var tOurs, tTheirs, tEmpty time.Duration
	run := func(f func() error) time.Duration {
		runtime.GC()
		start := processCPU()
		for i := 0; i < batch; i++ {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		return processCPU() - start
	}
	n := 0
	for b.Loop() {
		tEmpty += run(func() error { return nil })
		tOurs += run(ours)
		tTheirs += run(theirs)
		n += batch
	}
	tOurs, tTheirs = tOurs-tEmpty, tTheirs-tEmpty
	if tOurs > 0 {
		b.ReportMetric(float64(tOurs.Nanoseconds())/float64(n), "codec-cpu-ns/op")
		b.ReportMetric(float64(tTheirs.Nanoseconds())/float64(n), "std-cpu-ns/op")
		b.ReportMetric(float64(tTheirs)/float64(tOurs), "speedup")
	}
}

// BenchmarkW1Paired compares the codec with encoding/json on the W1 record
// in alternating batches (see pairedCPU); run with -benchtime=10x or so.
func BenchmarkW1Paired(b *testing.B) {
	b.Run("decode", func(b *testing.B) {
		pairedCPU(b,
			func() error { _, err := (JSON{}).Decode(w1Record); return err },
			func() error { var v any; return json.Unmarshal(w1Record, &v) })
	})
	v := w1Value()
	b.Run("encode", func(b *testing.B) {
		pairedCPU(b,
			func() error { _, err := (JSON{}).Encode(v); return err },
			func() error { _, err := json.Marshal(v); return err })
	})
}
