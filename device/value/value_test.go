package value_test

import (
	"errors"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

func TestObjectCapacity(t *testing.T) {
	o := value.NewObject(2, 8)
	if err := o.Set("a", value.StringOf("xyz")); err != nil {
		t.Fatal(err)
	}
	if err := o.Set("a", value.IntOf(1)); err != nil || o.Len() != 1 {
		t.Fatalf("replace: %v, len %d", err, o.Len())
	}
	if err := o.Set("b", value.BoolOf(true)); err != nil {
		t.Fatal(err)
	}
	if err := o.Set("c", value.Value{}); !errors.Is(err, value.ErrTooManyFields) {
		t.Fatalf("third field: %v", err)
	}
	o.Reset()
	if err := o.Set("long", value.StringOf("123456789")); !errors.Is(err, value.ErrArenaFull) {
		t.Fatalf("arena: %v", err)
	}
	c := value.NewObject(4, 64)
	o.Reset()
	o.Set("k", value.StringOf("v"))
	if err := c.CopyFrom(o); err != nil {
		t.Fatal(err)
	}
	o.Reset()
	o.Set("k", value.StringOf("w"))
	if v, _ := c.Lookup("k"); string(v.S) != "v" {
		t.Fatal("CopyFrom must deep-copy strings")
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b value.Value
		want bool
	}{
		{value.IntOf(1), value.FloatOf(1), true},
		{value.IntOf(1), value.StringOf("1"), false},
		{value.Value{}, value.Value{}, true},
		{value.StringOf("a"), value.StringOf("a"), true},
		{value.BoolOf(true), value.BoolOf(false), false},
	}
	for _, tt := range tests {
		if got := tt.a.Equal(tt.b); got != tt.want {
			t.Errorf("%s == %s: %v", value.Format(tt.a), value.Format(tt.b), got)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	o := value.NewObject(8, 64)
	name := []byte("device")
	v := value.BytesOf([]byte("d-1"))
	if n := alloctest.PerRun(100, func() {
		o.Reset()
		o.SetBytes(name, v)
		o.Set("temp", value.FloatOf(1))
		o.Lookup("temp")
	}); n != 0 {
		t.Fatalf("%.1f allocs", n)
	}
}
