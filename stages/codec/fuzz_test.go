package codec

import (
	"bytes"
	"encoding/json"
	"testing"
)

var fuzzJSONSeeds = []string{
	`{"device":"d-17","temp":23.5,"seq":1,"ts":1700000000123}`,
	`[1,-0,0.5e-3,1E400,"\ud83d\ude00\ud83d","\u00e9\/",true,false,null,{}]`,
	"\"\xff\xfe\"",
	`{"a":{"b":[[[]]]}} x`,
	`  "\u2028<&>"  `,
	`123456789012345678901234567890.5e-10`,
}

// FuzzJSONDecode checks that the decoder never panics and agrees with
// encoding/json: both accept or both reject, accepted documents decode to
// identical values, and those values encode to identical bytes.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range fuzzJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, gerr := JSON{}.Decode(doc)
		var want any
		werr := json.Unmarshal(doc, &want)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("doc %q: encoding/json err=%v, ours err=%v", doc, werr, gerr)
		}
		// The lazy decoder accepts and rejects the same documents and
		// agrees with the eager one in its number model.
		checkLazyAgainstEager(t, doc)
		if werr != nil {
			return
		}
		if !sameValue(want, got) {
			t.Fatalf("doc %q:\n std  %#v\n ours %#v", doc, want, got)
		}
		wb, werr := json.Marshal(want)
		gb, gerr := JSON{}.Encode(got)
		if werr != nil || gerr != nil || !bytes.Equal(wb, gb) {
			t.Fatalf("re-encoding %q: std %s (%v), ours %s (%v)", doc, wb, werr, gb, gerr)
		}
	})
}

// FuzzMsgPackDecode checks that the decoder never panics on arbitrary
// input and that whatever it accepts re-encodes to bytes that decode to
// the same value.
func FuzzMsgPackDecode(f *testing.F) {
	for _, s := range fuzzJSONSeeds {
		if v, err := (JSON{}).Decode([]byte(s)); err == nil {
			p, err := MsgPack{}.Encode(v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(p)
		}
	}
	f.Add([]byte{0xc7, 0x0c, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xdf, 0, 0, 0, 1, 0xcd, 1, 0, 0xc4, 1, 7})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		v, err := MsgPack{}.Decode(p)
		if err != nil {
			return
		}
		p2, err := MsgPack{}.Encode(v)
		if err != nil {
			t.Fatalf("% x decoded to %#v which does not encode: %v", p, v, err)
		}
		v2, err := MsgPack{}.Decode(p2)
		if err != nil {
			t.Fatalf("re-encoded % x does not decode: %v", p2, err)
		}
		if !sameValue(v, v2) {
			t.Fatalf("% x: %#v != %#v after round trip", p, v, v2)
		}
	})
}
