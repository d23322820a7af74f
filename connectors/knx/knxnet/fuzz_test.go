package knxnet

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary datagrams to the frame decoder, the cEMI
// decoder and a connected Tunnel: nothing panics, every rejection has a
// reason, and what decodes re-encodes to a datagram that decodes to the
// same frame.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		"06 10 0420 0015 04 01 09 00 2900bce011050a03010081",
		"06 10 0420 0017 04 03 00 00 2900bce011010a0303 00800c1a",
		"06 10 0421 000a 04 01 09 00",
		"06 10 0206 0014 01 00 0801 7f000001 d596 04 04 0005",
		"06 10 0208 0008 07 21",
		"06 10 0209 0010 03 00 0801 00000000 0000",
		"06 10 0420 0016 04 03 00 00 2e00bce000000a03010081",
		"06 10 0420 0018 04 03 00 00 2903aabbccbce011050a0301",
		"06 10 0999 0006",
		"",
	}
	for _, s := range seeds {
		f.Add(unhex(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("rejection without a reason: %v", err)
			}
		} else {
			again, err := Decode(fr.Encode(nil))
			if err != nil {
				t.Fatalf("re-encoded %+v does not decode: %v", fr, err)
			}
			if !reflect.DeepEqual(again, fr) && !(len(again.CEMI) == 0 && len(fr.CEMI) == 0) {
				t.Fatalf("round trip changed the frame:\n%+v\n%+v", fr, again)
			}
			if fr.Service == TunnellingRequest {
				checkLData(t, fr.CEMI)
			}
		}
		checkLData(t, b)

		// A connected tunnel takes anything without panicking.
		tn := NewTunnel(TunnelConfig{})
		tn.Connect(t0)
		tn.Handle(t0, Frame{Service: ConnectResponse, Channel: 3, Data: local}.Encode(nil))
		_ = tn.Send(t0, LData{Dest: 0x0a03, APCI: GroupValueWrite, Short: true, Data: []byte{1}}, 1)
		tn.Handle(t0, b)
		if len(b) > 8 {
			b[7] = 3 // channel, in case it is a tunnelling frame
			tn.Handle(t0, b)
		}
		tn.Tick(t0.Add(tn.cfg.AckTimeout))
		tn.Output()
	})
}

func checkLData(t *testing.T, b []byte) {
	l, err := DecodeLData(b)
	if err != nil {
		if ReasonOf(err) == "" {
			t.Fatalf("cEMI rejection without a reason: %v", err)
		}
		return
	}
	enc, err := l.Encode(nil)
	if err != nil {
		return // e.g. a read with data, a system-priority frame: not ours to send
	}
	again, err := DecodeLData(enc)
	if err != nil {
		t.Fatalf("re-encoded %+v does not decode: %v", l, err)
	}
	if l.Priority == 0 || l.HopCount == 0 {
		return // Encode sends these as low priority, hop count 6
	}
	if again.APCI != l.APCI || again.Dest != l.Dest || again.Source != l.Source || again.Short != l.Short ||
		!bytes.Equal(again.Data, l.Data) || again.Code != l.Code || again.Group != l.Group {
		t.Fatalf("cEMI round trip changed the frame:\n%+v\n%+v", l, again)
	}
}
