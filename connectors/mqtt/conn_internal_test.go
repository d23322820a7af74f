package mqtt

import (
	"bytes"
	"testing"
)

// TestPayloadSlab: copies hold the original bytes, are independent of the
// source buffer and of each other (an append to one cannot overwrite the
// next), and share chunks so that small payloads do not allocate one by
// one.
func TestPayloadSlab(t *testing.T) {
	var s payloadSlab
	src := []byte("first")
	a := s.copy(src)
	b := s.copy([]byte("second"))
	src[0] = 'X'
	if string(a) != "first" || string(b) != "second" {
		t.Fatalf("copies %q %q", a, b)
	}
	_ = append(a, "!!!!!!"...)
	if string(b) != "second" {
		t.Fatalf("an append to one copy changed the next: %q", b)
	}
	big := bytes.Repeat([]byte("x"), slabMax+1)
	used := len(s.buf)
	if c := s.copy(big); !bytes.Equal(c, big) || len(s.buf) != used {
		t.Fatalf("large payload: copied %v, slab used %d -> %d (want its own allocation)", bytes.Equal(c, big), used, len(s.buf))
	}
	if e := s.copy(nil); len(e) != 0 {
		t.Fatalf("empty payload copied as %q", e)
	}
	msg := bytes.Repeat([]byte("m"), 90)
	s.copy(msg)
	if n := testing.AllocsPerRun(1000, func() { s.copy(msg) }); n >= 1 {
		t.Errorf("%v allocations per 90-byte payload, want < 1", n)
	}
}
