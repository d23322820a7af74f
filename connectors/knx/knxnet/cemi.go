package knxnet

import (
	"encoding/binary"
	"fmt"
)

// MessageCode is a cEMI message code.
type MessageCode uint8

// cEMI message codes of L_Data.
const (
	LDataReq MessageCode = 0x11
	LDataCon MessageCode = 0x2E
	LDataInd MessageCode = 0x29
)

func (m MessageCode) String() string {
	switch m {
	case LDataReq:
		return "L_Data.req"
	case LDataCon:
		return "L_Data.con"
	case LDataInd:
		return "L_Data.ind"
	}
	return fmt.Sprintf("cEMI 0x%02x", uint8(m))
}

// APCI is an application-layer service of group communication.
type APCI uint16

// Group services (the 4-bit APCI, shifted to the 10-bit field).
const (
	GroupValueRead     APCI = 0x000
	GroupValueResponse APCI = 0x040
	GroupValueWrite    APCI = 0x080
)

func (a APCI) String() string {
	switch a {
	case GroupValueRead:
		return "read"
	case GroupValueResponse:
		return "response"
	case GroupValueWrite:
		return "write"
	}
	return fmt.Sprintf("apci 0x%03x", uint16(a))
}

// MaxData is the longest group value (the bytes after the APCI) an
// LData carries: an extended frame's 254-byte APDU less its 2 APCI bytes.
const MaxData = 252

// LData is a cEMI L_Data frame of group communication.
//
// Data is the group value as the APDU carries it: with Short set, it is
// one byte whose low 6 bits travel inside the APCI octet (DPT 1, 2, 3:
// values of up to 6 bits); otherwise the bytes after the APCI.
type LData struct {
	Code        MessageCode
	Source      IndividualAddress
	Dest        GroupAddress
	Group       bool // destination is a group address (else individual)
	APCI        APCI
	Short       bool
	Data        []byte
	Priority    uint8 // 1 normal, 2 urgent, 3 low; Encode sends 0 as low
	HopCount    uint8 // default 6
	ConfirmFail bool  // L_Data.con: the frame was not sent
}

// Encode appends the cEMI frame of l to b. It returns an error when the
// data does not fit (a short value over 6 bits, more than MaxData
// bytes).
func (l *LData) Encode(b []byte) ([]byte, error) {
	if l.Short {
		if len(l.Data) != 1 || l.Data[0] > 0x3f {
			return b, fmt.Errorf("knx: a short group value is one byte of at most 6 bits, got % x", l.Data)
		}
	} else if len(l.Data) > MaxData {
		return b, fmt.Errorf("knx: group value of %d bytes, at most %d fit a frame", len(l.Data), MaxData)
	}
	if l.APCI == GroupValueRead && len(l.Data) > 0 && !(l.Short && l.Data[0] == 0) {
		return b, fmt.Errorf("knx: a GroupValueRead carries no value")
	}
	hops := l.HopCount
	if hops == 0 {
		hops = 6
	}
	prio := l.Priority & 3
	if prio == 0 {
		prio = 3 // low: what group communication uses
	}
	apdu := 1 // length counts the octets after the TPCI
	if !l.Short {
		apdu += len(l.Data)
	}
	extended := apdu > 15
	ctrl1 := byte(0xB0) | prio<<2 // standard frame, do not repeat, broadcast
	if extended {
		ctrl1 &^= 0x80
	}
	if l.ConfirmFail {
		ctrl1 |= 1
	}
	ctrl2 := (hops & 7) << 4
	if l.Group {
		ctrl2 |= 0x80
	}
	code := l.Code
	if code == 0 {
		code = LDataReq
	}
	b = append(b, byte(code), 0, ctrl1, ctrl2)
	b = binary.BigEndian.AppendUint16(b, uint16(l.Source))
	b = binary.BigEndian.AppendUint16(b, uint16(l.Dest))
	b = append(b, byte(apdu), byte(l.APCI>>8)&3, byte(l.APCI))
	if l.Short {
		b[len(b)-1] |= l.Data[0] & 0x3f
	} else {
		b = append(b, l.Data...)
	}
	return b, nil
}

// DecodeLData reads a cEMI L_Data frame (req, con or ind). Other message
// codes and malformed frames are errors with ReasonBadCEMI or
// ReasonUnsupported; a frame that is not a group service decodes with
// its APCI and Data as found (the caller decides). Data aliases b.
func DecodeLData(b []byte) (LData, error) {
	var l LData
	if len(b) < 2 {
		return l, reasonf(ReasonBadCEMI, "cEMI frame of %d bytes", len(b))
	}
	l.Code = MessageCode(b[0])
	switch l.Code {
	case LDataReq, LDataCon, LDataInd:
	default:
		return l, reasonf(ReasonUnsupported, "cEMI message code 0x%02x is not L_Data", b[0])
	}
	info := int(b[1])
	rest := b[2:]
	if info > len(rest) {
		return l, reasonf(ReasonBadCEMI, "cEMI additional info of %d bytes, frame has %d", info, len(rest))
	}
	rest = rest[info:]
	if len(rest) < 7 {
		return l, reasonf(ReasonBadCEMI, "cEMI L_Data of %d bytes after the additional info, want at least 7", len(rest))
	}
	ctrl1, ctrl2 := rest[0], rest[1]
	l.Priority = (ctrl1 >> 2) & 3
	l.ConfirmFail = ctrl1&1 == 1
	l.Group = ctrl2&0x80 != 0
	l.HopCount = (ctrl2 >> 4) & 7
	l.Source = IndividualAddress(binary.BigEndian.Uint16(rest[2:4]))
	l.Dest = GroupAddress(binary.BigEndian.Uint16(rest[4:6]))
	n := int(rest[6])
	tpdu := rest[7:]
	if n+1 != len(tpdu) {
		return l, reasonf(ReasonBadLength, "cEMI length field %d, frame carries %d octets after the TPCI", n, len(tpdu)-1)
	}
	if n == 0 {
		// A transport-layer control frame (no APCI): not group data.
		return l, reasonf(ReasonUnsupported, "cEMI frame without an APDU (transport control)")
	}
	if tpdu[0]&0xfc != 0 && l.Group {
		return l, reasonf(ReasonUnsupported, "group frame with TPCI 0x%02x (want an unnumbered data packet)", tpdu[0]&0xfc)
	}
	l.APCI = APCI(uint16(tpdu[0]&3)<<8 | uint16(tpdu[1]&0xc0))
	if n == 1 {
		l.Short = true
		l.Data = []byte{tpdu[1] & 0x3f}
	} else {
		l.Data = tpdu[2:]
	}
	return l, nil
}

// IsGroupValue reports whether l is a group service (read, response or
// write addressed to a group).
func (l *LData) IsGroupValue() bool {
	return l.Group && (l.APCI == GroupValueRead || l.APCI == GroupValueResponse || l.APCI == GroupValueWrite)
}
