package knxnet

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

var local = Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:54678")}

// TestFrameWire checks each service against its bytes on the wire
// (KNXnet/IP core and tunnelling), both ways.
func TestFrameWire(t *testing.T) {
	cases := []struct {
		name string
		f    Frame
		wire string
	}{
		{"connect request", Frame{Service: ConnectRequest, Control: local, Data: local},
			"06 10 0205 001a 0801 7f000001 d596 0801 7f000001 d596 04 04 02 00"},
		{"connect response", Frame{Service: ConnectResponse, Channel: 1, Status: StatusOK, Data: local, Address: 0x0005},
			"06 10 0206 0014 01 00 0801 7f000001 d596 04 04 0005"},
		{"connect refused", Frame{Service: ConnectResponse, Channel: 0, Status: StatusNoMoreConnections},
			"06 10 0206 0008 00 24"},
		{"connectionstate request", Frame{Service: ConnectionStateRequest, Channel: 7, Control: local},
			"06 10 0207 0010 07 00 0801 7f000001 d596"},
		{"connectionstate response", Frame{Service: ConnectionStateResponse, Channel: 7, Status: StatusConnectionID},
			"06 10 0208 0008 07 21"},
		{"disconnect request", Frame{Service: DisconnectRequest, Channel: 7, Control: Endpoint{}},
			"06 10 0209 0010 07 00 0801 00000000 0000"},
		{"disconnect response", Frame{Service: DisconnectResponse, Channel: 7},
			"06 10 020a 0008 07 00"},
		{"tunnelling request", Frame{Service: TunnellingRequest, Channel: 1, Seq: 9, CEMI: unhex("2900bce01105 0a03 01 0081")},
			"06 10 0420 0015 04 01 09 00 2900bce011050a03010081"},
		{"tunnelling ack", Frame{Service: TunnellingAck, Channel: 1, Seq: 9, Status: StatusOK},
			"06 10 0421 000a 04 01 09 00"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire := unhex(tc.wire)
			if got := tc.f.Encode(nil); !bytes.Equal(got, wire) {
				t.Errorf("Encode = % x\nwant     % x", got, wire)
			}
			got, err := Decode(wire)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.f) {
				t.Errorf("Decode = %+v\nwant     %+v", got, tc.f)
			}
		})
	}
}

// TestDecodeHostile: every malformed datagram is an error with its
// reason, never a panic.
func TestDecodeHostile(t *testing.T) {
	cases := []struct {
		name   string
		wire   string
		reason Reason
	}{
		{"empty", "", ReasonTruncated},
		{"short header", "06 10 04", ReasonTruncated},
		{"header length", "08 10 0420 0008 0000", ReasonBadHeader},
		{"version", "06 20 0420 0006", ReasonBadHeader},
		{"total length too long", "06 10 0421 00ff 04 01 00 00", ReasonBadLength},
		{"total length too short", "06 10 0421 0008 04 01 00 00", ReasonBadLength},
		{"unknown service", "06 10 0999 0006", ReasonUnknownService},
		{"routing is not for a tunnel client", "06 10 0530 0008 2900", ReasonUnknownService},
		{"search response", "06 10 0202 0006", ReasonUnknownService},
		{"truncated ack", "06 10 0421 0008 04 01", ReasonTruncated},
		{"connection header length", "06 10 0421 000a 05 01 00 00", ReasonBadLength},
		{"request without cEMI", "06 10 0420 000a 04 01 00 00", ReasonTruncated},
		{"connect response truncated", "06 10 0206 000a 01 00 0801", ReasonTruncated},
		{"connect response bad hpai", "06 10 0206 0014 01 00 0901 7f000001 d596 04 04 0005", ReasonBadLength},
		{"connect response tcp hpai", "06 10 0206 0014 01 00 0802 7f000001 d596 04 04 0005", ReasonUnsupported},
		{"connect response bad crd", "06 10 0206 0014 01 00 0801 7f000001 d596 09 04 0005", ReasonBadLength},
		{"connect response not a tunnel", "06 10 0206 0014 01 00 0801 7f000001 d596 04 03 0005", ReasonUnsupported},
		{"state response truncated", "06 10 0208 0007 07", ReasonTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(unhex(tc.wire))
			if err == nil {
				t.Fatal("accepted")
			}
			if r := ReasonOf(err); r != tc.reason {
				t.Errorf("reason %q (%v), want %q", r, err, tc.reason)
			}
		})
	}
}

func TestLDataWire(t *testing.T) {
	cases := []struct {
		name string
		l    LData
		wire string
	}{
		{"short write", LData{Code: LDataInd, Source: 0x1105, Dest: 0x0a03, Group: true, APCI: GroupValueWrite, Short: true, Data: []byte{1}, Priority: 3, HopCount: 6},
			"29 00 bc e0 1105 0a03 01 00 81"},
		{"long write", LData{Code: LDataReq, Dest: 0x0a03, Group: true, APCI: GroupValueWrite, Data: []byte{0x0c, 0x1a}, Priority: 3, HopCount: 6},
			"11 00 bc e0 0000 0a03 03 00 80 0c 1a"},
		{"read", LData{Code: LDataReq, Dest: 0x0a03, Group: true, APCI: GroupValueRead, Short: true, Data: []byte{0}, Priority: 3, HopCount: 6},
			"11 00 bc e0 0000 0a03 01 00 00"},
		{"response", LData{Code: LDataInd, Source: 0x1101, Dest: 0x0a03, Group: true, APCI: GroupValueResponse, Data: []byte{0x42}, Priority: 3, HopCount: 5},
			"29 00 bc d0 1101 0a03 02 00 40 42"},
		{"negative confirmation", LData{Code: LDataCon, Dest: 0x0a03, Group: true, APCI: GroupValueWrite, Short: true, Data: []byte{0}, Priority: 3, HopCount: 6, ConfirmFail: true},
			"2e 00 bd e0 0000 0a03 01 00 80"},
		{"extended frame", LData{Code: LDataReq, Dest: 1, Group: true, APCI: GroupValueWrite, Data: bytes.Repeat([]byte{7}, 20), Priority: 3, HopCount: 6},
			"11 00 3c e0 0000 0001 15 00 80" + strings.Repeat("07", 20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire := unhex(tc.wire)
			got, err := tc.l.Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wire) {
				t.Errorf("Encode = % x\nwant     % x", got, wire)
			}
			l, err := DecodeLData(wire)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l, tc.l) {
				t.Errorf("DecodeLData = %+v\nwant          %+v", l, tc.l)
			}
		})
	}
	// Additional info is skipped.
	l, err := DecodeLData(unhex("29 03 aa bb cc bc e0 1105 0a03 01 00 81"))
	if err != nil || l.Data[0] != 1 || l.Dest != 0x0a03 {
		t.Errorf("with additional info: %+v %v", l, err)
	}
}

func TestLDataHostile(t *testing.T) {
	cases := []struct{ name, wire, want string }{
		{"empty", "", "cEMI frame of 0 bytes"},
		{"not L_Data", "f0 00", "not L_Data"},
		{"additional info too long", "29 09 00", "additional info of 9 bytes"},
		{"too short", "29 00 bc e0 1105", "want at least 7"},
		{"length field too long", "29 00 bc e0 1105 0a03 05 00 80", "length field 5"},
		{"length field too short", "29 00 bc e0 1105 0a03 01 00 80 0c 1a", "length field 1"},
		{"transport control", "29 00 bc e0 1105 0a03 00 80", "without an APDU"},
		{"numbered group frame", "29 00 bc e0 1105 0a03 01 40 80", "TPCI"},
	}
	for _, tc := range cases {
		_, err := DecodeLData(unhex(tc.wire))
		if err == nil || !strings.Contains(err.Error(), tc.want) || ReasonOf(err) == "" {
			t.Errorf("%s: %v, want an error with a reason containing %q", tc.name, err, tc.want)
		}
	}
	for _, l := range []LData{
		{APCI: GroupValueWrite, Short: true, Data: []byte{0x40}},
		{APCI: GroupValueWrite, Short: true, Data: []byte{1, 2}},
		{APCI: GroupValueWrite, Data: make([]byte, MaxData+1)},
		{APCI: GroupValueRead, Data: []byte{1}},
	} {
		if _, err := l.Encode(nil); err == nil {
			t.Errorf("Encode(%+v) accepted", l)
		}
	}
}
