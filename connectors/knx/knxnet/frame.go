package knxnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ServiceType is a KNXnet/IP service type identifier.
type ServiceType uint16

// The service types of a tunnelling client.
const (
	SearchRequest           ServiceType = 0x0201
	SearchResponse          ServiceType = 0x0202
	DescriptionRequest      ServiceType = 0x0203
	DescriptionResponse     ServiceType = 0x0204
	ConnectRequest          ServiceType = 0x0205
	ConnectResponse         ServiceType = 0x0206
	ConnectionStateRequest  ServiceType = 0x0207
	ConnectionStateResponse ServiceType = 0x0208
	DisconnectRequest       ServiceType = 0x0209
	DisconnectResponse      ServiceType = 0x020A
	TunnellingRequest       ServiceType = 0x0420
	TunnellingAck           ServiceType = 0x0421
	RoutingIndication       ServiceType = 0x0530
)

func (s ServiceType) String() string {
	switch s {
	case SearchRequest:
		return "SEARCH_REQUEST"
	case SearchResponse:
		return "SEARCH_RESPONSE"
	case DescriptionRequest:
		return "DESCRIPTION_REQUEST"
	case DescriptionResponse:
		return "DESCRIPTION_RESPONSE"
	case ConnectRequest:
		return "CONNECT_REQUEST"
	case ConnectResponse:
		return "CONNECT_RESPONSE"
	case ConnectionStateRequest:
		return "CONNECTIONSTATE_REQUEST"
	case ConnectionStateResponse:
		return "CONNECTIONSTATE_RESPONSE"
	case DisconnectRequest:
		return "DISCONNECT_REQUEST"
	case DisconnectResponse:
		return "DISCONNECT_RESPONSE"
	case TunnellingRequest:
		return "TUNNELLING_REQUEST"
	case TunnellingAck:
		return "TUNNELLING_ACK"
	case RoutingIndication:
		return "ROUTING_INDICATION"
	}
	return fmt.Sprintf("service 0x%04x", uint16(s))
}

// Header constants.
const (
	headerLen       = 6
	protocolVersion = 0x10
	hpaiLen         = 8
	ipv4UDP         = 0x01
	// TunnelConnection is the CRI/CRD connection type of a tunnel.
	tunnelConnection = 0x04
	// TunnelLinkLayer is the KNX layer of a data link tunnel.
	tunnelLinkLayer = 0x02
)

// Status is a KNXnet/IP status code (E_NO_ERROR, E_CONNECTION_ID, ...).
type Status uint8

// Status codes.
const (
	StatusOK                Status = 0x00
	StatusHostProtocol      Status = 0x01
	StatusVersion           Status = 0x02
	StatusSequenceNumber    Status = 0x04
	StatusConnectionID      Status = 0x21
	StatusConnectionType    Status = 0x22
	StatusConnectionOption  Status = 0x23
	StatusNoMoreConnections Status = 0x24
	StatusDataConnection    Status = 0x26
	StatusKNXConnection     Status = 0x27
	StatusTunnellingLayer   Status = 0x29
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "E_NO_ERROR"
	case StatusHostProtocol:
		return "E_HOST_PROTOCOL_TYPE"
	case StatusVersion:
		return "E_VERSION_NOT_SUPPORTED"
	case StatusSequenceNumber:
		return "E_SEQUENCE_NUMBER"
	case StatusConnectionID:
		return "E_CONNECTION_ID"
	case StatusConnectionType:
		return "E_CONNECTION_TYPE"
	case StatusConnectionOption:
		return "E_CONNECTION_OPTION"
	case StatusNoMoreConnections:
		return "E_NO_MORE_CONNECTIONS"
	case StatusDataConnection:
		return "E_DATA_CONNECTION"
	case StatusKNXConnection:
		return "E_KNX_CONNECTION"
	case StatusTunnellingLayer:
		return "E_TUNNELLING_LAYER"
	}
	return fmt.Sprintf("status 0x%02x", uint8(s))
}

// Endpoint is a host protocol address information (HPAI): an IPv4
// address and UDP port. The zero Endpoint (0.0.0.0:0) asks the server to
// answer to the address the request came from (NAT mode).
type Endpoint struct {
	Addr netip.AddrPort
}

func appendHPAI(b []byte, e Endpoint) []byte {
	ip := [4]byte{}
	if e.Addr.Addr().Is4() {
		ip = e.Addr.Addr().As4()
	}
	b = append(b, hpaiLen, ipv4UDP)
	b = append(b, ip[:]...)
	return binary.BigEndian.AppendUint16(b, e.Addr.Port())
}

func readHPAI(b []byte) (Endpoint, error) {
	if len(b) < hpaiLen {
		return Endpoint{}, reasonf(ReasonTruncated, "HPAI: %d bytes, want %d", len(b), hpaiLen)
	}
	if b[0] != hpaiLen {
		return Endpoint{}, reasonf(ReasonBadLength, "HPAI length %d, want %d", b[0], hpaiLen)
	}
	if b[1] != ipv4UDP {
		return Endpoint{}, reasonf(ReasonUnsupported, "HPAI host protocol 0x%02x, want IPv4 UDP", b[1])
	}
	ip := netip.AddrFrom4([4]byte(b[2:6]))
	port := binary.BigEndian.Uint16(b[6:8])
	if ip.IsUnspecified() && port == 0 {
		return Endpoint{}, nil // NAT: answer to the sender
	}
	return Endpoint{Addr: netip.AddrPortFrom(ip, port)}, nil
}

// Frame is one decoded KNXnet/IP datagram of a service a tunnelling
// client handles. Which fields are meaningful depends on Service:
//
//   - ConnectRequest: Control, Data (the client's endpoints).
//   - ConnectResponse: Channel, Status, and on success Data (the
//     server's data endpoint) and Address (the tunnel's individual
//     address).
//   - ConnectionStateRequest, DisconnectRequest: Channel, Control.
//   - ConnectionStateResponse, DisconnectResponse: Channel, Status.
//   - TunnellingRequest: Channel, Seq, CEMI (the raw cEMI frame).
//   - TunnellingAck: Channel, Seq, Status.
type Frame struct {
	Service ServiceType
	Channel uint8
	Seq     uint8
	Status  Status
	Control Endpoint
	Data    Endpoint
	Address IndividualAddress
	CEMI    []byte
}

// Encode appends the datagram for f to b.
func (f Frame) Encode(b []byte) []byte {
	start := len(b)
	b = append(b, headerLen, protocolVersion, byte(f.Service>>8), byte(f.Service), 0, 0)
	switch f.Service {
	case ConnectRequest:
		b = appendHPAI(b, f.Control)
		b = appendHPAI(b, f.Data)
		b = append(b, 4, tunnelConnection, tunnelLinkLayer, 0)
	case ConnectResponse:
		b = append(b, f.Channel, byte(f.Status))
		if f.Status == StatusOK {
			b = appendHPAI(b, f.Data)
			b = append(b, 4, tunnelConnection, byte(f.Address>>8), byte(f.Address))
		}
	case ConnectionStateRequest, DisconnectRequest:
		b = append(b, f.Channel, 0)
		b = appendHPAI(b, f.Control)
	case ConnectionStateResponse, DisconnectResponse:
		b = append(b, f.Channel, byte(f.Status))
	case TunnellingRequest:
		b = append(b, 4, f.Channel, f.Seq, 0)
		b = append(b, f.CEMI...)
	case TunnellingAck:
		b = append(b, 4, f.Channel, f.Seq, byte(f.Status))
	}
	binary.BigEndian.PutUint16(b[start+4:], uint16(len(b)-start))
	return b
}

// Decode reads one datagram. Services a tunnelling client does not
// handle (search, description, routing, unknown types) are an error
// with ReasonUnknownService; every malformed datagram is an error with
// its Reason. The returned Frame's CEMI aliases b.
func Decode(b []byte) (Frame, error) {
	var f Frame
	if len(b) < headerLen {
		return f, reasonf(ReasonTruncated, "datagram of %d bytes, shorter than the header", len(b))
	}
	if b[0] != headerLen {
		return f, reasonf(ReasonBadHeader, "header length %d, want %d", b[0], headerLen)
	}
	if b[1] != protocolVersion {
		return f, reasonf(ReasonBadHeader, "protocol version 0x%02x, want 0x10", b[1])
	}
	f.Service = ServiceType(binary.BigEndian.Uint16(b[2:4]))
	total := int(binary.BigEndian.Uint16(b[4:6]))
	if total != len(b) {
		return f, reasonf(ReasonBadLength, "%s: total length %d, datagram has %d bytes", f.Service, total, len(b))
	}
	body := b[headerLen:]
	need := func(n int) error {
		if len(body) < n {
			return reasonf(ReasonTruncated, "%s: body of %d bytes, want at least %d", f.Service, len(body), n)
		}
		return nil
	}
	switch f.Service {
	case ConnectRequest:
		if err := need(2*hpaiLen + 4); err != nil {
			return f, err
		}
		var err error
		if f.Control, err = readHPAI(body); err != nil {
			return f, fmt.Errorf("%s control endpoint: %w", f.Service, err)
		}
		if f.Data, err = readHPAI(body[hpaiLen:]); err != nil {
			return f, fmt.Errorf("%s data endpoint: %w", f.Service, err)
		}
	case ConnectResponse:
		if err := need(2); err != nil {
			return f, err
		}
		f.Channel, f.Status = body[0], Status(body[1])
		if f.Status != StatusOK {
			return f, nil
		}
		if err := need(2 + hpaiLen + 4); err != nil {
			return f, err
		}
		var err error
		if f.Data, err = readHPAI(body[2:]); err != nil {
			return f, fmt.Errorf("%s data endpoint: %w", f.Service, err)
		}
		crd := body[2+hpaiLen:]
		if crd[0] < 4 || int(crd[0]) > len(crd) {
			return f, reasonf(ReasonBadLength, "%s: CRD length %d", f.Service, crd[0])
		}
		if crd[1] != tunnelConnection {
			return f, reasonf(ReasonUnsupported, "%s: connection type 0x%02x, want a tunnel", f.Service, crd[1])
		}
		f.Address = IndividualAddress(binary.BigEndian.Uint16(crd[2:4]))
	case ConnectionStateRequest, DisconnectRequest:
		if err := need(2 + hpaiLen); err != nil {
			return f, err
		}
		f.Channel = body[0]
		var err error
		if f.Control, err = readHPAI(body[2:]); err != nil {
			return f, fmt.Errorf("%s control endpoint: %w", f.Service, err)
		}
	case ConnectionStateResponse, DisconnectResponse:
		if err := need(2); err != nil {
			return f, err
		}
		f.Channel, f.Status = body[0], Status(body[1])
	case TunnellingRequest, TunnellingAck:
		if err := need(4); err != nil {
			return f, err
		}
		if body[0] != 4 {
			return f, reasonf(ReasonBadLength, "%s: connection header length %d, want 4", f.Service, body[0])
		}
		f.Channel, f.Seq = body[1], body[2]
		if f.Service == TunnellingAck {
			f.Status = Status(body[3])
			return f, nil
		}
		f.CEMI = body[4:]
		if len(f.CEMI) == 0 {
			return f, reasonf(ReasonTruncated, "%s without a cEMI frame", f.Service)
		}
	default:
		return f, reasonf(ReasonUnknownService, "%s not handled by a tunnelling client", f.Service)
	}
	return f, nil
}
