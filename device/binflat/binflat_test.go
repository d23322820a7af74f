package binflat_test

import (
	"errors"
	"math"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

func sample() *value.Object {
	o := value.NewObject(8, 128)
	o.Set("device", value.StringOf("d-\u00e91"))
	o.Set("temp", value.FloatOf(-21.625))
	o.Set("n", value.IntOf(math.MinInt64))
	o.Set("big", value.IntOf(math.MaxInt64))
	o.Set("ok", value.BoolOf(true))
	o.Set("none", value.Value{})
	o.Set("nan", value.FloatOf(math.Inf(-1)))
	return o
}

func TestRoundTrip(t *testing.T) {
	src := sample()
	enc := binflat.Append(nil, src)
	dst := value.NewObject(8, 128)
	if err := binflat.Decode(enc, dst); err != nil {
		t.Fatal(err)
	}
	if dst.Len() != src.Len() {
		t.Fatalf("%d fields, want %d", dst.Len(), src.Len())
	}
	for i := 0; i < src.Len(); i++ {
		a, b := src.Field(i), dst.Field(i)
		if string(a.Name) != string(b.Name) || a.Val.K != b.Val.K || value.Format(a.Val) != value.Format(b.Val) {
			t.Errorf("field %d: %s=%s, got %s=%s", i, a.Name, value.Format(a.Val), b.Name, value.Format(b.Val))
		}
	}
	// Every strict prefix is malformed, never a panic or a silent success.
	for i := 0; i < len(enc); i++ {
		if err := binflat.Decode(enc[:i], dst); err == nil {
			t.Fatalf("prefix %d of %d accepted", i, len(enc))
		}
	}
	if err := binflat.Decode(append(enc, 0), dst); !errors.Is(err, binflat.ErrFormat) {
		t.Fatalf("trailing byte: %v", err)
	}
	if err := binflat.Decode(enc, value.NewObject(2, 128)); !errors.Is(err, value.ErrTooManyFields) {
		t.Fatalf("small object: %v", err)
	}
}

func TestNoAllocations(t *testing.T) {
	src := sample()
	dst := value.NewObject(8, 128)
	buf := make([]byte, 0, 256)
	if n := alloctest.PerRun(500, func() {
		buf = binflat.Append(buf[:0], src)
		if err := binflat.Decode(buf, dst); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%.1f allocs", n)
	}
}
