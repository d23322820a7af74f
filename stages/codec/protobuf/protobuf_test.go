package protobuf_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/stages/codec/protobuf"
)

func load(t *testing.T) *protobuf.Codec {
	t.Helper()
	c, err := protobuf.Load(context.Background(), "testdata/reading.proto", "Reading")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	c := load(t)
	in := map[string]any{"device": "d1", "temp": 26.5, "seq": float64(7), "tags": []any{"a", "b"},
		"unit": "CELSIUS", "where": map[string]any{"room": "lab"}, "raw": []byte{1, 2}}
	p, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("decoded %#v, want %#v", got, in)
	}
}

func TestErrors(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"wrong type", func() error { _, err := c.Encode(map[string]any{"temp": "hot"}); return err }, "temp"},
		{"unknown field", func() error { _, err := c.Encode(map[string]any{"colour": 1}); return err }, "colour"},
		{"garbage", func() error { _, err := c.Decode([]byte{0xff, 0xff, 0xff}); return err }, "demo.v1.Reading"},
		{"no message", func() error {
			_, err := protobuf.Load(context.Background(), "testdata/reading.proto", "Nope")
			return err
		}, `no message "Nope"`},
		{"no file", func() error {
			_, err := protobuf.Load(context.Background(), "testdata/missing.proto", "Reading")
			return err
		}, "missing.proto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
