package mqtt

// reasonSuffix renders a broker's reason string as ": reason", or "".
func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// connackReason names the MQTT 5 CONNACK reason codes a client may see.
func connackReason(code byte) string {
	switch code {
	case 0x80:
		return "unspecified error"
	case 0x81:
		return "malformed packet"
	case 0x82:
		return "protocol error"
	case 0x84:
		return "unsupported protocol version"
	case 0x85:
		return "client identifier not valid"
	case 0x86:
		return "bad user name or password"
	case 0x87:
		return "not authorized (check username/password)"
	case 0x88:
		return "server unavailable"
	case 0x89:
		return "server busy"
	case 0x8A:
		return "banned"
	case 0x8C:
		return "bad authentication method"
	case 0x95:
		return "packet too large"
	case 0x97:
		return "quota exceeded"
	case 0x9F:
		return "connection rate exceeded"
	}
	return "refused"
}

// pubReason names the MQTT 5 PUBACK/PUBREC failure reason codes.
func pubReason(code byte) string {
	switch code {
	case 0x80:
		return "unspecified error"
	case 0x83:
		return "implementation specific error"
	case 0x87:
		return "not authorized"
	case 0x90:
		return "topic name invalid"
	case 0x91:
		return "packet identifier in use"
	case 0x97:
		return "quota exceeded"
	case 0x99:
		return "payload format invalid"
	}
	return "refused"
}

// pubRetryable reports whether a PUBACK/PUBREC failure reason code may
// clear when the same record is sent again later: the broker's quota, or
// a packet identifier clash in the session. Every other failure (not
// authorized, invalid topic or payload, unspecified) is permanent for the
// record.
func pubRetryable(code byte) bool {
	return code == 0x91 || code == 0x97
}
