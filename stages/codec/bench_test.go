package codec

import (
	"encoding/json"
	"testing"
)

// w1Record is the record of the W1 benchmark (issue 2).
var w1Record = []byte(`{"device":"d-17","temp":23.5,"seq":1,"ts":1700000000123}`)

func w1Value() map[string]any {
	return map[string]any{"device": "d-17", "temp": 23.5, "seq": 1.0, "ts": 1700000000123.0, "alert": true}
}

func BenchmarkW1Decode(b *testing.B) {
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(w1Record)))
		for b.Loop() {
			if _, err := (JSON{}).Decode(w1Record); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(w1Record)))
		for b.Loop() {
			var v any
			if err := json.Unmarshal(w1Record, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("msgpack", func(b *testing.B) {
		p, err := MsgPack{}.Encode(w1Value())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			if _, err := (MsgPack{}).Decode(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkW1Encode(b *testing.B) {
	v := w1Value()
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (JSON{}).Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("msgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (MsgPack{}).Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
