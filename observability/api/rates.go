package api

import (
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// sampleEvery is the shortest interval between two samples of the rates.
const sampleEvery = time.Second

// rateSampler derives per-second rates from two samples of the runner's
// counters: nothing is counted per record for them.
type rateSampler struct {
	src interface{ Stats() pipeline.Snapshot }

	mu        sync.Mutex
	prev, cur sample
}

type sample struct {
	at   time.Time
	recs map[string]pipeline.RecordSnapshot
}

// sample takes a sample unless the last one is younger than sampleEvery
// (and force is false).
func (s *rateSampler) sample(now time.Time, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && !s.cur.at.IsZero() && now.Sub(s.cur.at) < sampleEvery {
		return
	}
	if !s.cur.at.IsZero() && !now.After(s.cur.at) {
		return
	}
	s.prev = s.cur
	s.cur = sample{at: now, recs: s.src.Stats().Records}
}

// rates returns the rates of every record over the last interval, or nil
// before two samples exist.
func (s *rateSampler) rates() map[string]*Rates {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prev.at.IsZero() {
		return nil
	}
	secs := s.cur.at.Sub(s.prev.at).Seconds()
	out := make(map[string]*Rates, len(s.cur.recs))
	for name, c := range s.cur.recs {
		p := s.prev.recs[name]
		out[name] = &Rates{
			Writes:    float64(c.Writes-p.Writes) / secs,
			Delivered: float64(c.Buffer.Delivered-p.Buffer.Delivered) / secs,
			Dropped:   float64(c.Buffer.Dropped+c.Buffer.Lagged-p.Buffer.Dropped-p.Buffer.Lagged) / secs,
		}
	}
	return out
}
