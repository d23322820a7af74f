package serial_test

import (
	"reflect"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/serial"
	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

func TestBinFlatCodec(t *testing.T) {
	o := value.NewObject(8, 64)
	o.Set("device", value.StringOf("d-1"))
	o.Set("temp", value.FloatOf(26.5))
	o.Set("seq", value.IntOf(7))
	o.Set("alert", value.BoolOf(true))
	o.Set("x", value.Value{})
	got, err := serial.BinFlat{}.Decode(binflat.Append(nil, o)) // what a device writes
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"device": "d-1", "temp": 26.5, "seq": 7, "alert": true, "x": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	enc, err := serial.BinFlat{}.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	back, err := serial.BinFlat{}.Decode(enc)
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if _, err := (serial.BinFlat{}).Encode(map[string]any{"nested": map[string]any{}}); err == nil {
		t.Fatal("nested value accepted")
	}
	if _, err := (serial.BinFlat{}).Decode([]byte{5, 1}); err == nil {
		t.Fatal("garbage accepted")
	}
}
