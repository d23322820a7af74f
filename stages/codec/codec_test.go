package codec

import (
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	reg := Default()
	for _, name := range []string{"json", "raw", "msgpack"} {
		c, err := reg.Lookup(name)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", name, err)
		}
		if c.Name() != name {
			t.Fatalf("Lookup(%q).Name() = %q", name, c.Name())
		}
	}
	_, err := reg.Lookup("cbor")
	if err == nil || !strings.Contains(err.Error(), `unknown codec "cbor" (known: [json msgpack raw])`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRaw(t *testing.T) {
	p := []byte("abc")
	v, err := Raw{}.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	p[0] = 'X'
	if string(v.([]byte)) != "abc" {
		t.Fatalf("Raw.Decode aliases the payload: %q", v)
	}
	for _, tc := range []struct {
		in      any
		want    string
		wantErr bool
	}{{[]byte("x"), "x", false}, {"y", "y", false}, {nil, "", false}, {1.0, "", true}} {
		got, err := Raw{}.Encode(tc.in)
		if (err != nil) != tc.wantErr || string(got) != tc.want {
			t.Fatalf("Raw.Encode(%#v) = %q, %v", tc.in, got, err)
		}
	}
}
