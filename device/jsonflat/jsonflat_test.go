package jsonflat_test

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

func TestDecodeEncode(t *testing.T) {
	tests := []struct{ in, out string }{
		{`{}`, `{}`},
		{` { "device" : "d-1", "temp": 21.5, "n": -3, "ok": true, "x": null } `, `{"device":"d-1","temp":21.5,"n":-3,"ok":true,"x":null}`},
		{`{"s":"a\"b\\c\n\u00e9\ud83d\ude00\/"}`, `{"s":"a\"b\\c\né😀/"}`},
		{`{"big":12345678901234567890,"e":1e3,"small":1e-7,"z":-0}`, `{"big":12345678901234567000,"e":1000,"small":1e-7,"z":0}`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{"ctl":"\u0001"}`, `{"ctl":"\u0001"}`},
	}
	o := value.NewObject(8, 128)
	for _, tt := range tests {
		if err := jsonflat.Decode([]byte(tt.in), o); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		got, err := jsonflat.Append(nil, o)
		if err != nil || string(got) != tt.out {
			t.Errorf("%s: got %s, %v; want %s", tt.in, got, err, tt.out)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{``, jsonflat.ErrSyntax},
		{`[]`, jsonflat.ErrSyntax},
		{`{"a":1`, jsonflat.ErrSyntax},
		{`{"a":1,}`, jsonflat.ErrSyntax},
		{`{"a":01}`, jsonflat.ErrSyntax},
		{`{"a":tru}`, jsonflat.ErrSyntax},
		{`{"a":"x}`, jsonflat.ErrSyntax},
		{`{"a":{"b":1}}`, jsonflat.ErrNotFlat},
		{`{"a":[1]}`, jsonflat.ErrNotFlat},
		{`{"a":1} x`, jsonflat.ErrSyntax},
		{`{"a":1,"b":2,"c":3,"d":4,"e":5}`, value.ErrTooManyFields},
		{`{"a":"0123456789012345678901234567890123456789"}`, value.ErrArenaFull},
	}
	o := value.NewObject(4, 32)
	for _, tt := range tests {
		err := jsonflat.Decode([]byte(tt.in), o)
		var se *jsonflat.SyntaxError
		if !errors.Is(err, tt.want) || !errors.As(err, &se) {
			t.Errorf("%q: err = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestEncodeRejectsNaN(t *testing.T) {
	o := value.NewObject(1, 8)
	o.Set("x", value.FloatOf(0))
	o.Set("x", value.FloatOf(nan()))
	if _, err := jsonflat.Append(nil, o); !errors.Is(err, jsonflat.ErrNotFinite) {
		t.Fatal(err)
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestNoAllocations(t *testing.T) {
	// Floats with a short decimal form (sensor readings) are formatted
	// without strconv, so without the digit buffer TinyGo allocates for
	// every strconv.AppendFloat.
	in := []byte(`{"device":"d-\u00e91","temp":21.5,"t2":-40.01,"t3":43.125,"z":0,"n":-3,"ok":true}`)
	o := value.NewObject(8, 128)
	buf := make([]byte, 0, 256)
	allocs := alloctest.PerRun(500, func() {
		if err := jsonflat.Decode(in, o); err != nil {
			t.Fatal(err)
		}
		var err error
		if buf, err = jsonflat.Append(buf[:0], o); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocs per decode+encode", allocs)
	}
}

// TestFloatsFormatLikeStrconv compares the short-form fast path with
// strconv on floats with few decimals, their neighbours (one ulp off,
// which need the long form) and edge cases.
func TestFloatsFormatLikeStrconv(t *testing.T) {
	o := value.NewObject(1, 8)
	buf := make([]byte, 0, 64)
	want := make([]byte, 0, 64)
	check := func(f float64) {
		abs := math.Abs(f)
		if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			return // 'e' format: not the fast path's; covered by the encoding/json comparison
		}
		o.Reset()
		o.Set("x", value.FloatOf(f))
		got, err := jsonflat.Append(buf[:0], o)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		want = append(strconv.AppendFloat(append(want[:0], `{"x":`...), f, 'f', -1, 64), '}')
		if string(got) != string(want) {
			t.Fatalf("%v (%b): got %s, want %s", f, math.Float64bits(f), got, want)
		}
	}
	for _, f := range []float64{0, 1, -1, 0.1, 0.2, 0.3, 40.1, 40.01, 43.125, 44.75, 1e-6, 1.5e-6, 123456789.123, 1e15, 1e15 + 1,
		9007199254740991, 9007199254740992, 9007199254740993, 1e20, 0.1 + 0.2, 1.0 / 3, 2.0 / 3, 100, 1e-5, 5e-324} {
		check(f)
	}
	n := 2000
	if alloctest.TinyGo {
		n = 200 // strconv's fallback allocates under TinyGo: keep a small board's heap
	}
	for i := 0; i < n; i++ {
		x := float64(i*7919%100003) / []float64{1, 10, 100, 1000, 1e4, 1e6}[i%6]
		check(x)
		check(-x)
		check(math.Nextafter(x, 2e9)) // one ulp off: the long form
		check(math.Nextafter(x, -2e9))
	}
}

func ExampleDecode() {
	rec := value.NewObject(8, 128) // preallocated once
	if err := jsonflat.Decode([]byte(`{"device":"d-1","temp":21.5}`), rec); err != nil {
		panic(err)
	}
	v, _ := rec.Lookup("temp")
	rec.Set("alert", value.BoolOf(v.F > 20))
	out, _ := jsonflat.Append(nil, rec)
	fmt.Println(string(out))
	// Output: {"device":"d-1","temp":21.5,"alert":true}
}
