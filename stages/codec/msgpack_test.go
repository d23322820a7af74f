package codec

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMsgPackEncodeVectors(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string // hex
	}{
		{"nil", nil, "c0"},
		{"false", false, "c2"},
		{"true", true, "c3"},
		{"fixint", 1.0, "01"},
		{"fixint max", 127.0, "7f"},
		{"uint8", 128.0, "cc 80"},
		{"uint16", 256.0, "cd 01 00"},
		{"uint32", 65536.0, "ce 00 01 00 00"},
		{"uint64", 1700000000123.0, "cf 00 00 01 8b cf e5 68 7b"},
		{"negative fixint", -1.0, "ff"},
		{"negative fixint min", -32.0, "e0"},
		{"int8", -33.0, "d0 df"},
		{"int16", -129.0, "d1 ff 7f"},
		{"int32", -32769.0, "d2 ff ff 7f ff"},
		{"int64", -2147483649.0, "d3 ff ff ff ff 7f ff ff ff"},
		{"float64", 1.5, "cb 3f f8 00 00 00 00 00 00"},
		{"negative zero stays float", math.Copysign(0, -1), "cb 80 00 00 00 00 00 00 00"},
		{"2^63 stays float", math.Ldexp(1, 63), "cb 43 e0 00 00 00 00 00 00"},
		{"float32", float32(1.5), "ca 3f c0 00 00"},
		{"go int", int(-5), "fb"},
		{"go uint64 max", uint64(math.MaxUint64), "cf ff ff ff ff ff ff ff ff"},
		{"go int64 min", int64(math.MinInt64), "d3 80 00 00 00 00 00 00 00"},
		{"fixstr", "a", "a1 61"},
		{"str8", strings.Repeat("x", 32), "d9 20" + strings.Repeat("78", 32)},
		{"str16", strings.Repeat("x", 256), "da 01 00" + strings.Repeat("78", 256)},
		{"bin8", []byte{1, 2}, "c4 02 01 02"},
		{"nil bytes", []byte(nil), "c0"},
		{"fixarray", []any{1.0, "a"}, "92 01 a1 61"},
		{"fixmap sorted", map[string]any{"b": 2.0, "a": 1.0}, "82 a1 61 01 a1 62 02"},
		{"string map", map[string]string{"k": "v"}, "81 a1 6b a1 76"},
		{"string slice", []string{"a"}, "91 a1 61"},
		{"float slice", []float64{0.5}, "91 cb 3f e0 00 00 00 00 00 00"},
		{"json number int", json.Number("300"), "cd 01 2c"},
		{"json number float", json.Number("0.5"), "cb 3f e0 00 00 00 00 00 00"},
		{"timestamp32", time.Unix(1, 0), "d6 ff 00 00 00 01"},
		{"timestamp64", time.Unix(1, 1), "d7 ff 00 00 00 04 00 00 00 01"},
		{"timestamp96", time.Unix(-1, 0), "c7 0c ff 00 00 00 00 ff ff ff ff ff ff ff ff"},
		{"struct via JSON", encStruct{A: 1, C: []any{}}, "82 a1 43 90 a1 61 01"},
		{"w1", map[string]any{"device": "d-17", "temp": 23.5, "seq": 1.0},
			"83 a6 646576696365 a4 642d3137 a3 736571 01 a4 74656d70 cb 40 37 80 00 00 00 00 00"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MsgPack{}.Encode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("got % x\nwant % x", got, want)
			}
		})
	}
}

func TestMsgPackDecodeVectors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want any
	}{
		{"nil", "c0", nil},
		{"fixint", "05", 5.0},
		{"negative fixint", "e0", -32.0},
		{"uint8", "cc ff", 255.0},
		{"uint16", "cd ff ff", 65535.0},
		{"uint32", "ce ff ff ff ff", 4294967295.0},
		{"uint64 max", "cf ff ff ff ff ff ff ff ff", 18446744073709551615.0},
		{"int8", "d0 80", -128.0},
		{"int16", "d1 80 00", -32768.0},
		{"int32", "d2 80 00 00 00", -2147483648.0},
		{"int64 min", "d3 80 00 00 00 00 00 00 00", -9223372036854775808.0},
		{"float32", "ca 3f c0 00 00", 1.5},
		{"float64", "cb 3f f8 00 00 00 00 00 00", 1.5},
		{"str8", "d9 01 61", "a"},
		{"str16", "da 00 01 61", "a"},
		{"str32", "db 00 00 00 01 61", "a"},
		{"empty str", "a0", ""},
		{"bin16", "c5 00 01 07", []byte{7}},
		{"bin32", "c6 00 00 00 00", []byte{}},
		{"array16", "dc 00 02 c2 c3", []any{false, true}},
		{"array32", "dd 00 00 00 00", []any{}},
		{"map16", "de 00 01 a1 61 c0", map[string]any{"a": nil}},
		{"map32 int keys", "df 00 00 00 02 01 c3 ff c2", map[string]any{"1": true, "-1": false}},
		{"bin key", "81 c4 01 6b 01", map[string]any{"k": 1.0}},
		{"uint16 key", "81 cd 01 00 01", map[string]any{"256": 1.0}},
		{"int8 key", "81 d0 80 01", map[string]any{"-128": 1.0}},
		{"timestamp32", "d6 ff 00 00 00 01", time.Unix(1, 0)},
		{"timestamp64", "d7 ff 00 00 00 04 00 00 00 01", time.Unix(1, 1)},
		{"timestamp96", "c7 0c ff 00 00 00 02 ff ff ff ff ff ff ff ff", time.Unix(-1, 2)},
		{"nested", "81 a1 61 91 81 a1 62 a1 63", map[string]any{"a": []any{map[string]any{"b": "c"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MsgPack{}.Decode(mustHex(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestMsgPackDecodeErrors(t *testing.T) {
	cases := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "unexpected end of input at offset 0"},
		{"never used", "c1", "invalid type byte 0xc1 at offset 0"},
		{"trailing", "01 02", "1 bytes of trailing data after the value at offset 1"},
		{"truncated str", "a3 61", "unexpected end of input (need 3 bytes, have 1) at offset 1"},
		{"huge array claim", "dd ff ff ff ff", "array of 4294967295 elements exceeds the remaining 0 bytes"},
		{"huge map claim", "df 7f ff ff ff 01", "map of 2147483647 entries exceeds"},
		{"nil key", "81 c0 01", "map key of type byte 0xc0 is not a string or integer at offset 1"},
		{"float key", "81 cb 00 00 00 00 00 00 00 00 01", "map key of type byte 0xcb"},
		{"unknown ext", "d4 05 00", "unsupported extension type 5 at offset 1"},
		{"bad timestamp size", "d5 ff 00 00", "timestamp extension of 2 bytes"},
		{"bad nanoseconds", "c7 0c ff 3b 9a ca 00 00 00 00 00 00 00 00 00", "nanoseconds 1000000000 out of range"},
		{"truncated ext", "c7 0c ff 00", "unexpected end of input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MsgPack{}.Decode(mustHex(t, tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
			}
			var me *MsgPackError
			if !errors.As(err, &me) {
				t.Fatalf("err %T is not a *MsgPackError", err)
			}
		})
	}
}

func TestMsgPackTruncationsFail(t *testing.T) {
	v := map[string]any{"device": "d-17", "list": []any{1.0, -300.0, 1.5, "x", nil, true, []byte{1}},
		"t": time.Unix(1700000000, 5), "big": math.Ldexp(1, 40), "m": map[string]any{"k": strings.Repeat("s", 40)}}
	p, err := MsgPack{}.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(p); i++ {
		if _, err := (MsgPack{}).Decode(p[:i]); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", i, len(p))
		}
	}
	got, err := MsgPack{}.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	v["big"] = math.Ldexp(1, 40)
	if !sameValue(got, v) {
		t.Fatalf("got %#v", got)
	}
}

func TestMsgPackDepth(t *testing.T) {
	for _, tc := range []struct {
		depth int
		ok    bool
	}{{maxJSONDepth, true}, {maxJSONDepth + 1, false}} {
		p := append(bytes.Repeat([]byte{0x91}, tc.depth-1), 0x90)
		_, err := MsgPack{}.Decode(p)
		if tc.ok != (err == nil) {
			t.Fatalf("depth %d: err = %v", tc.depth, err)
		}
		if !tc.ok && !errors.Is(err, ErrTooDeep) {
			t.Fatalf("err %v does not wrap ErrTooDeep", err)
		}
	}
	m := map[string]any{}
	m["self"] = m
	if _, err := (MsgPack{}).Encode(m); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("cycle: err = %v", err)
	}
}

// TestMsgPackRoundTripJSONShapes checks that a pipeline can switch codecs:
// any JSON document decodes to the same value directly or through
// JSON -> value -> MessagePack -> value, and re-encodes to the same JSON.
func TestMsgPackRoundTripJSONShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var b bytes.Buffer
	g := &jsonGen{r: r, b: &b}
	n := 0
	for i := 0; i < 5000; i++ {
		b.Reset()
		g.value(0)
		v, err := JSON{}.Decode(b.Bytes())
		if err != nil {
			continue // e.g. 1e-400 style overflows
		}
		n++
		p, err := MsgPack{}.Encode(v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		back, err := MsgPack{}.Decode(p)
		if err != nil {
			t.Fatalf("decode % x: %v", p, err)
		}
		if !sameValue(v, back) {
			t.Fatalf("round trip changed the value:\n in  %#v\n out %#v", v, back)
		}
		j1, _ := JSON{}.Encode(v)
		j2, _ := JSON{}.Encode(back)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("JSON differs after round trip: %s vs %s", j1, j2)
		}
	}
	if n < 4000 {
		t.Fatalf("only %d documents were valid; generator broken?", n)
	}
}

func TestMsgPackRoundTripGoValues(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 5000; i++ {
		v := genValue(r, 0)
		p, err := MsgPack{}.Encode(v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		back, err := MsgPack{}.Decode(p)
		if err != nil {
			t.Fatalf("decode % x (from %#v): %v", p, v, err)
		}
		// Re-encoding the decoded value is a fixed point.
		p2, err := MsgPack{}.Encode(back)
		if err != nil {
			t.Fatal(err)
		}
		back2, err := MsgPack{}.Decode(p2)
		if err != nil || !sameValue(back, back2) {
			t.Fatalf("not a fixed point: %#v vs %#v (%v)", back, back2, err)
		}
	}
}

func TestMsgPackDecodeDoesNotAlias(t *testing.T) {
	p, err := MsgPack{}.Encode(map[string]any{"k": "value", "b": []byte("bin")})
	if err != nil {
		t.Fatal(err)
	}
	v, err := MsgPack{}.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] = 0
	}
	if !sameValue(v, map[string]any{"k": "value", "b": []byte("bin")}) {
		t.Fatalf("decoded value changed with the payload: %#v", v)
	}
}
