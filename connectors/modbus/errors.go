package modbus

import (
	"errors"
	"strings"

	mb "github.com/simonvetter/modbus"
)

// Class is what a failed request means.
type Class uint8

// Failure classes.
const (
	// Exception: the peer answered with a Modbus exception; the
	// connection is fine.
	Exception Class = iota + 1
	// Timeout: no answer within the request timeout.
	Timeout
	// Malformed: the answer was not a valid frame (bad CRC, wrong length,
	// wrong unit or transaction id): a faulty or hostile peer.
	Malformed
	// Broken: the connection failed (closed, reset, refused).
	Broken
)

var classNames = [...]string{"", "exception", "timeout", "malformed", "transport"}

// String returns the class's name ("exception", "timeout", "malformed",
// "transport").
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "error"
}

// Classify tells what err, returned by a request, means.
func Classify(err error) Class {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, mb.ErrIllegalFunction), errors.Is(err, mb.ErrIllegalDataAddress),
		errors.Is(err, mb.ErrIllegalDataValue), errors.Is(err, mb.ErrServerDeviceFailure),
		errors.Is(err, mb.ErrAcknowledge), errors.Is(err, mb.ErrServerDeviceBusy),
		errors.Is(err, mb.ErrMemoryParityError), errors.Is(err, mb.ErrGWPathUnavailable),
		errors.Is(err, mb.ErrGWTargetFailedToRespond),
		strings.Contains(err.Error(), "unknown exception code ("):
		return Exception
	case errors.Is(err, mb.ErrRequestTimedOut):
		return Timeout
	case errors.Is(err, mb.ErrProtocolError), errors.Is(err, mb.ErrBadCRC), errors.Is(err, mb.ErrShortFrame),
		errors.Is(err, mb.ErrBadUnitId), errors.Is(err, mb.ErrBadTransactionId), errors.Is(err, mb.ErrUnknownProtocolId):
		return Malformed
	}
	return Broken
}

// permanentException reports whether a write refused with err can never
// succeed as it is (the address or value is wrong, the function is not
// supported), as opposed to a busy or failing device.
func permanentException(err error) bool {
	return errors.Is(err, mb.ErrIllegalFunction) || errors.Is(err, mb.ErrIllegalDataAddress) || errors.Is(err, mb.ErrIllegalDataValue)
}
