package dpt

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeEncode(t *testing.T) {
	cases := []struct {
		id    string
		data  []byte
		value any
		unit  string
		text  string
	}{
		{"1.001", []byte{1}, true, "", "on"},
		{"1.001", []byte{0}, false, "", "off"},
		{"1.009", []byte{1}, true, "", "close"},
		{"1.099", []byte{1}, true, "", "true"}, // unlisted subtype: main type
		{"5.001", []byte{0xff}, 100.0, "%", ""},
		{"5.001", []byte{0}, 0.0, "%", ""},
		{"5.003", []byte{0xff}, 360.0, "°", ""},
		{"5.004", []byte{200}, int64(200), "%", ""},
		{"5.010", []byte{42}, int64(42), "pulses", ""},
		{"5", []byte{7}, int64(7), "", ""},
		{"6.001", []byte{0x80}, int64(-128), "%", ""},
		{"6.010", []byte{0x7f}, int64(127), "pulses", ""},
		{"7.001", []byte{0xff, 0xff}, int64(65535), "pulses", ""},
		{"7.004", []byte{0x00, 0x0a}, 1000.0, "ms", ""},
		{"7.013", []byte{0x01, 0xf4}, int64(500), "lx", ""},
		{"8.001", []byte{0x80, 0x00}, int64(-32768), "pulses", ""},
		{"8.010", []byte{0x27, 0x10}, 100.0, "%", ""},
		{"9.001", []byte{0x0c, 0x1a}, 21.0, "°C", ""},
		{"9.001", []byte{0x0c, 0x33}, 21.5, "°C", ""},
		{"9.001", []byte{0x87, 0x9c}, -1.0, "°C", ""},
		{"9.001", []byte{0x00, 0x00}, 0.0, "°C", ""},
		{"9.004", []byte{0x7f, 0xfe}, 670433.28, "lx", ""},
		{"9.007", []byte{0x14, 0x4c}, 44.0, "%", ""},
		{"12.001", []byte{0xff, 0xff, 0xff, 0xff}, int64(4294967295), "pulses", ""},
		{"13.010", []byte{0xff, 0xff, 0xff, 0xfe}, int64(-2), "Wh", ""},
		{"13.013", []byte{0x00, 0x00, 0x01, 0x00}, int64(256), "kWh", ""},
		{"14.056", []byte{0x42, 0x28, 0x00, 0x00}, 42.0, "W", ""},
		{"14.068", []byte{0xc1, 0x20, 0x00, 0x00}, -10.0, "°C", ""},
		{"16.000", []byte("KNX is OK\x00\x00\x00\x00\x00"), "KNX is OK", "", ""},
		{"16.001", []byte("Gr\xfc\xdfe\x00\x00\x00\x00\x00\x00\x00\x00\x00"), "Grüße", "", ""},
		{"17.001", []byte{63}, int64(63), "", ""},
		{"18.001", []byte{0x85}, map[string]any{"learn": true, "scene": int64(5)}, "", ""},
		{"18.001", []byte{0x05}, map[string]any{"learn": false, "scene": int64(5)}, "", ""},
		{"20.102", []byte{1}, int64(1), "", "comfort"},
		{"20.102", []byte{4}, int64(4), "", "building_protection"},
		{"20.001", []byte{9}, int64(9), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			typ, ok, err := Lookup(tc.id)
			if err != nil || !ok {
				t.Fatalf("Lookup(%q) = %v %v", tc.id, ok, err)
			}
			v, err := typ.Decode(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if f, isF := v.(float64); isF {
				if w := tc.value.(float64); math.Abs(f-w) > 1e-9 {
					t.Fatalf("Decode(% x) = %v, want %v", tc.data, v, tc.value)
				}
			} else if !reflect.DeepEqual(v, tc.value) {
				t.Fatalf("Decode(% x) = %#v, want %#v", tc.data, v, tc.value)
			}
			if typ.Unit != tc.unit {
				t.Errorf("unit %q, want %q", typ.Unit, tc.unit)
			}
			if txt := typ.Text(v); txt != tc.text {
				t.Errorf("text %q, want %q", txt, tc.text)
			}
			back, err := typ.Encode(v)
			if err != nil {
				t.Fatalf("Encode(%v): %v", v, err)
			}
			if !bytes.Equal(back, tc.data) {
				t.Errorf("Encode(%v) = % x, want % x", v, back, tc.data)
			}
		})
	}
}

func TestEncodeShapes(t *testing.T) {
	cases := []struct {
		id   string
		v    any
		want []byte
	}{
		{"1.001", "on", []byte{1}},
		{"1.001", "OFF", []byte{0}},
		{"1.001", 1.0, []byte{1}},
		{"5.001", 50.0, []byte{0x80}},
		{"5.001", 100, []byte{0xff}},
		{"9.001", 21.5, []byte{0x0c, 0x33}},
		{"9.001", 21.555, []byte{0x0c, 0x36}}, // rounded to the nearest step (0.02 at E=1)
		{"9.001", -0.004, []byte{0x00, 0x00}},
		{"9.001", -671088.64, []byte{0xf8, 0x00}},
		{"9.001", 670433.28, []byte{0x7f, 0xfe}},
		{"16.000", "", make([]byte, 14)},
		{"17.001", int64(3), []byte{3}},
		{"18.001", map[string]any{"scene": 2.0}, []byte{2}},
		{"20.102", "Economy", []byte{3}},
		{"20.102", 2.0, []byte{2}},
		{"13.002", 1.0, []byte{0, 0, 0x27, 0x10}},
	}
	for _, tc := range cases {
		typ, _, _ := Lookup(tc.id)
		got, err := typ.Encode(tc.v)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s Encode(%#v) = % x %v, want % x", tc.id, tc.v, got, err, tc.want)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	cases := []struct {
		id   string
		v    any
		want string
	}{
		{"1.001", "maybe", "is not off or on"},
		{"1.001", 2.0, "not a boolean"},
		{"5.001", 100.5, "out of range"},
		{"5.001", -1.0, "out of range"},
		{"5.010", 256.0, "out of range 0 to 255"},
		{"5.010", 1.5, "not a whole number"},
		{"6.001", 128.0, "out of range -128 to 127"},
		{"7.001", 65536.0, "out of range"},
		{"8.001", -32769.0, "out of range"},
		{"9.001", 670761.0, "2-byte float range"},
		{"9.001", 670760.96, "invalid-data marker"},
		{"9.001", math.NaN(), "not a number"},
		{"9.001", "21", "not a number"},
		{"12.001", -1.0, "out of range"},
		{"13.001", 2147483648.0, "out of range"},
		{"14.056", 1e39, "32-bit float range"},
		{"16.000", "fifteen chars!!", "longer than 14"},
		{"16.000", "Grüße", "cannot be written"},
		{"16.001", "日本", "cannot be written"},
		{"16.000", 5.0, "not a string"},
		{"17.001", 64.0, "out of range"},
		{"18.001", map[string]any{"scene": 64.0}, "want a whole number from 0 to 63"},
		{"18.001", map[string]any{"scene": 1.0, "learn": "yes"}, "learn"},
		{"18.001", 5.0, "not an object"},
		{"20.102", "off", "is not one of auto, comfort"},
		{"20.102", nil, "not a number"},
	}
	for _, tc := range cases {
		typ, _, _ := Lookup(tc.id)
		_, err := typ.Encode(tc.v)
		if err == nil || !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s Encode(%#v) = %v, want ErrValue containing %q", tc.id, tc.v, err, tc.want)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	cases := []struct {
		id   string
		data []byte
		want string
	}{
		{"1.001", []byte{2}, "want 0 or 1"},
		{"1.001", []byte{}, "0 bytes, want 1"},
		{"9.001", []byte{1}, "1 bytes, want 2"},
		{"9.001", []byte{0x7f, 0xff}, "invalid-data marker"},
		{"14.056", []byte{0x7f, 0xc0, 0, 0}, "NaN"},
		{"12.001", []byte{1, 2, 3}, "want 4"},
		{"16.000", make([]byte, 15), "at most 14"},
		{"16.000", []byte{'a', 0, 'b'}, "byte 0x00"},
		{"16.000", []byte{0xe9}, "byte 0xe9"},
		{"17.001", []byte{64}, "want 0 to 63"},
		{"18.001", []byte{0x40}, "reserved bit"},
	}
	for _, tc := range cases {
		typ, _, _ := Lookup(tc.id)
		_, err := typ.Decode(tc.data)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s Decode(% x) = %v, want ErrMalformed containing %q", tc.id, tc.data, err, tc.want)
		}
	}
}

func TestLookup(t *testing.T) {
	for in, want := range map[string]string{"9.001": "9.001", "9.1": "9.001", "DPT9.001": "9.001", "dpt-9.1": "9.001", "9": "9.000", " 1.001 ": "1.001"} {
		typ, ok, err := Lookup(in)
		if err != nil || !ok || typ.ID != want {
			t.Errorf("Lookup(%q) = %q %v %v, want %q", in, typ.ID, ok, err, want)
		}
	}
	if _, ok, err := Lookup("232.600"); ok || err != nil {
		t.Errorf("Lookup of an unknown main type: ok %v err %v, want not found", ok, err)
	}
	for _, in := range []string{"", "nine", "9.", ".1", "9.x", "-9.1", "9.-1", "+9.1"} {
		if _, _, err := Lookup(in); err == nil {
			t.Errorf("Lookup(%q) accepted", in)
		}
	}
	// Every listed type has a main type.
	for _, id := range IDs() {
		if typ, ok, err := Lookup(id); !ok || err != nil || typ.ID != id || typ.Name == "" {
			t.Errorf("table entry %q: %+v %v %v", id, typ, ok, err)
		}
	}
}

// FuzzFloat16 checks that every 2-byte float decodes, and re-encodes to a
// value that decodes the same.
func FuzzFloat16(f *testing.F) {
	f.Add(uint16(0x0c1a))
	f.Add(uint16(0x879c))
	f.Fuzz(func(t *testing.T, raw uint16) {
		if raw == 0x7fff {
			return
		}
		v := decodeFloat16(raw)
		back, err := encodeFloat16(v)
		if err != nil {
			t.Fatalf("%04x = %v does not encode: %v", raw, v, err)
		}
		if w := decodeFloat16(back); w != v {
			t.Fatalf("%04x = %v re-encodes to %04x = %v", raw, v, back, w)
		}
	})
}

// FuzzTypes decodes arbitrary group values as every listed type: nothing
// panics, a refusal wraps ErrMalformed, and what decodes encodes back to
// bytes that decode to the same value.
func FuzzTypes(f *testing.F) {
	f.Add([]byte{0x0c, 0x1a})
	f.Add([]byte("hello\x00"))
	f.Add([]byte{0x85})
	f.Add([]byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, id := range IDs() {
			typ, _, _ := Lookup(id)
			v, err := typ.Decode(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s Decode(% x): %v does not wrap ErrMalformed", id, b, err)
				}
				continue
			}
			enc, err := typ.Encode(v)
			if err != nil {
				t.Fatalf("%s: decoded %v (% x) does not encode: %v", id, v, b, err)
			}
			again, err := typ.Decode(enc)
			if err != nil || !reflect.DeepEqual(again, v) {
				t.Fatalf("%s: % x -> %v -> % x -> %v %v", id, b, v, enc, again, err)
			}
		}
	})
}
