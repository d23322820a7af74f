package pipeline

import "errors"

// Permanent marks err as a permanent failure of one record: retrying or
// redelivering the same record cannot succeed (the broker rejected it as
// too large, not authorised, malformed). An AsyncPublisher reports the
// outcome of each record through its ack share (env.Ack.Finish(err)); the
// runner owns what follows:
//
//   - nil: the share is released, the record is done on this link;
//   - Permanent(err), or any error for a record whose source cannot
//     redeliver (its envelope has no Ack: files, generators): the record
//     is dead-lettered with its full provenance (pipeline, record, link,
//     destination, cause) and its share released successfully; without a
//     dead-letter destination it is counted, logged and rejected;
//   - any other error is transient: the share is released with it, so the
//     source message is rejected and redelivered (at-least-once).
//
// A synchronous Publish error has already used the connector's own
// retries: it is dead-lettered when the graph has a destination, and the
// source message rejected when it has none, whatever its class.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
