package knxnet

import (
	"errors"
	"fmt"
)

// Reason classifies why a datagram or cEMI frame was rejected, so that
// rejections can be counted by reason.
type Reason string

// Reasons for rejecting input.
const (
	ReasonTruncated      Reason = "truncated"
	ReasonBadHeader      Reason = "bad header"
	ReasonBadLength      Reason = "wrong length"
	ReasonUnknownService Reason = "unknown service type"
	ReasonUnsupported    Reason = "unsupported"
	ReasonWrongChannel   Reason = "wrong channel"
	ReasonSequence       Reason = "out of sequence"
	ReasonUnexpected     Reason = "unexpected"
	ReasonBadCEMI        Reason = "bad cEMI frame"
)

// Error is a rejected datagram or frame.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func reasonf(r Reason, format string, args ...any) error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason of a rejection error, or "" for other
// errors.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
