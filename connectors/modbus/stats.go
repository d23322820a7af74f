package modbus

import (
	"sync"
	"sync/atomic"
)

// Stats counts what the connector did and what went wrong. Failures are
// counted, logged (without flooding) and, for the connection, reflected
// in readiness; none stops the pipeline.
type Stats struct {
	polls, records, unchanged                          atomic.Uint64
	exceptions, timeouts, malformed, transport, badVal atomic.Uint64
	writes, writeErrs, served, clientWrites            atomic.Uint64

	mu      sync.Mutex
	lastErr string
}

// StatsSnapshot is a copy of the counters.
type StatsSnapshot struct {
	// Polls is the number of polls that read every block; Records the
	// records dispatched from them (Unchanged: polls whose values equal the
	// last record's, not dispatched under emit change).
	Polls, Records, Unchanged uint64
	// Exceptions, Timeouts, Malformed and Transport count failed requests
	// by Class (reads and writes).
	Exceptions, Timeouts, Malformed, Transport uint64
	// BadValues counts fields read as null because the peer sent a value
	// JSON cannot carry (a NaN or infinite float).
	BadValues uint64
	// Writes counts records written (client) or applied to the served
	// registers (server); WriteErrors the records that were not.
	Writes, WriteErrors uint64
	// ClientWrites counts write requests of Modbus clients to a server.
	ClientWrites uint64
	// LastError is the most recent failure, with its class.
	LastError string
}

func (s *Stats) fail(cl Class, err error) {
	switch cl {
	case Exception:
		s.exceptions.Add(1)
	case Timeout:
		s.timeouts.Add(1)
	case Malformed:
		s.malformed.Add(1)
	default:
		s.transport.Add(1)
	}
	s.mu.Lock()
	s.lastErr = cl.String() + ": " + err.Error()
	s.mu.Unlock()
}

func (s *Stats) snapshot() StatsSnapshot {
	s.mu.Lock()
	last := s.lastErr
	s.mu.Unlock()
	return StatsSnapshot{
		Polls: s.polls.Load(), Records: s.records.Load(), Unchanged: s.unchanged.Load(),
		Exceptions: s.exceptions.Load(), Timeouts: s.timeouts.Load(), Malformed: s.malformed.Load(), Transport: s.transport.Load(),
		BadValues: s.badVal.Load(), Writes: s.writes.Load(), WriteErrors: s.writeErrs.Load(), ClientWrites: s.clientWrites.Load(),
		LastError: last,
	}
}

// flood decides how loudly to log the n-th consecutive failure: the
// first, then the 2nd, 4th, 8th... are warnings, the rest debug messages.
func flood(n uint64) bool { return n&(n-1) == 0 }
