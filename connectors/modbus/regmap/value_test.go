package regmap

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func field(t *testing.T, spec string) Field {
	t.Helper()
	f, err := ParseField("v", spec, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestDecode reads registers as they come off the wire.
func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		spec string
		regs []uint16
		want string
	}{
		{"holding 0", []uint16{0xFFFF}, "65535"},
		{"holding 0 int16", []uint16{0xFFFE}, "-2"},
		{"holding 0 int16 bytes little", []uint16{0xFEFF}, "-2"},
		{"holding 0 uint32", []uint16{0x0001, 0x0002}, "65538"},
		{"holding 0 uint32 words low", []uint16{0x0002, 0x0001}, "65538"},
		{"holding 0 uint32 words low bytes little", []uint16{0x0200, 0x0100}, "65538"},
		{"holding 0 int32", []uint16{0xFFFF, 0xFFFF}, "-1"},
		{"holding 0 float32", []uint16{0x41AC, 0x0000}, "21.5"},
		{"holding 0 float32", []uint16{0x3DCC, 0xCCCD}, "0.1"},
		{"holding 0 float32 words low", []uint16{0x0000, 0x41AC}, "21.5"},
		{"holding 0 float64", []uint16{0x4035, 0x8000, 0, 0}, "21.5"},
		{"holding 0 uint64", []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, "18446744073709551615"},
		{"holding 0 int64", []uint16{0x8000, 0, 0, 0}, "-9223372036854775808"},
		{"holding 0 int16 scale 0.1", []uint16{215}, "21.5"},
		{"holding 0 uint16 scale 0.5 offset -10", []uint16{30}, "5"},
		{"holding 0 string 3", []uint16{0x6869, 0x2100, 0x0000}, `"hi!"`},
		{"holding 0 string 2 bytes little", []uint16{0x6968, 0x0021}, `"hi!"`},
		{"holding 0 string 2", []uint16{0xFF41, 0x0000}, `"\ufffdA"`},
		{"holding 0 string 2", []uint16{0x223C, 0x0A00}, `"\"<\n"`},
		{"holding 0 string 4", []uint16{0x68C3, 0xA96C, 0x5C01, 0x7F00}, `"h\u00e9l\\\u0001\u007f"`},
		{"holding 0 string 2", []uint16{0xF09F, 0x9982}, `"\ud83d\ude42"`},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			f := field(t, tc.spec)
			got, err := f.AppendRegs(nil, tc.regs)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("%s is not JSON", got)
			}
		})
	}
}

// TestDecodeNotFinite: a peer's NaN or infinity reads as null, with a
// reason.
func TestDecodeNotFinite(t *testing.T) {
	for _, regs := range [][]uint16{{0x7FC0, 0}, {0x7F80, 0}, {0xFF80, 0}} {
		got, err := field(t, "input 0 float32").AppendRegs(nil, regs)
		if string(got) != "null" || !errors.Is(err, ErrNotFinite) {
			t.Fatalf("%04x: got %s, %v", regs, got, err)
		}
	}
}

// TestEncodeRoundTrip: what Regs writes, AppendRegs reads back.
func TestEncodeRoundTrip(t *testing.T) {
	for _, tc := range []struct{ spec, value string }{
		{"holding 0", "65535"},
		{"holding 0 int16", "-32768"},
		{"holding 0 int16 bytes little", "-2"},
		{"holding 0 uint32 words low", "4294967295"},
		{"holding 0 int32 words low bytes little", "-123456"},
		{"holding 0 int64", "-9223372036854775808"},
		{"holding 0 uint64 words low", "18446744073709551615"},
		{"holding 0 float32", "21.5"},
		{"holding 0 float32 words low", "-0.25"},
		{"holding 0 float64 bytes little", "3.141592653589793"},
		{"holding 0 int16 scale 0.1", "21.5"},
		{"holding 0 uint16 scale 0.5 offset -10", "5"},
		{"holding 0 string 4", `"pump-7"`},
		{"holding 0 string 4", `"h\u00e9llo"`},
		{"holding 0 string 2 bytes little", `"abcd"`},
	} {
		t.Run(tc.spec+"="+tc.value, func(t *testing.T) {
			f := field(t, tc.spec)
			var v any
			d := json.NewDecoder(strings.NewReader(tc.value))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				t.Fatal(err)
			}
			regs, err := f.Regs(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			if len(regs) != f.Len {
				t.Fatalf("%d registers, want %d", len(regs), f.Len)
			}
			got, err := f.AppendRegs(nil, regs)
			if err != nil || string(got) != tc.value {
				t.Fatalf("read back %s (%v), want %s", got, err, tc.value)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		value any
		want  string
	}{
		{"holding 0", json.Number("65536"), "65536 is out of the uint16 range"},
		{"holding 0", json.Number("-1"), "-1 is out of the uint16 range"},
		{"holding 0 int16", json.Number("32768"), "out of the int16 range"},
		{"holding 0 int16", json.Number("2.5"), "want a whole number for int16, got 2.5"},
		{"holding 0 uint64", json.Number("-1"), "out of the uint64 range"},
		{"holding 0 int64", json.Number("9223372036854775808"), "out of the int64 range"},
		{"holding 0 int16 scale 0.1", json.Number("5000"), "scales to a raw value out of the int16 range"},
		{"holding 0 float32", json.Number("1e39"), "out of the float32 range"},
		{"holding 0", "12", "want a number for uint16 holding 0, got a string"},
		{"holding 0", true, "got a boolean"},
		{"holding 0 string 2", json.Number("1"), "want a string for holding 0-1, got a number"},
		{"holding 0 string 2", "hello", "string of 5 bytes does not fit 2 registers (4 bytes)"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := field(t, tc.spec).Regs(nil, tc.value)
			var ve *ValueError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *ValueError containing %q", err, tc.want)
			}
		})
	}
	if _, err := field(t, "coil 0").Bit(json.Number("1")); err == nil || !strings.Contains(err.Error(), "want true or false for coil 0, got a number") {
		t.Fatalf("bit: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("holding 0 float32", uint16(0x41AC), uint16(0), uint16(0), uint16(0))
	f.Add("holding 0 string 4", uint16(0xFFFE), uint16(0x2200), uint16(0x5C00), uint16(1))
	f.Fuzz(func(t *testing.T, spec string, a, b, c, d uint16) {
		fl, err := ParseField("v", spec, Defaults{})
		if err != nil || fl.Table.Bits() || fl.Len > 4 {
			return
		}
		regs := []uint16{a, b, c, d}[:fl.Len]
		out, err := fl.AppendRegs(nil, regs)
		if !json.Valid(out) {
			t.Fatalf("%s from %04x: not JSON (%v)", out, regs, err)
		}
		if err == nil && !fl.Scaled && fl.Type != String {
			// Exact types read back to the same registers.
			var v any
			dec := json.NewDecoder(strings.NewReader(string(out)))
			dec.UseNumber()
			_ = dec.Decode(&v)
			back, err := fl.Regs(nil, v)
			if err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			for i := range regs {
				if back[i] != regs[i] && !(fl.Type == Float32 || fl.Type == Float64) {
					t.Fatalf("%s: %04x read back as %04x", out, regs, back)
				}
			}
		}
		_ = math.Pi
	})
}
