package kit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Session is one live connection of a connector to its peer, made by
// SupervisorConfig.Connect. The connector writes it: it is the protocol
// adapter (read frames and dispatch them, write publishes).
type Session interface {
	// Serve runs the session: it reads what the peer sends (and dispatches
	// it) until the connection fails or ends, or ctx ends, and returns why.
	// It must return promptly once ctx ends (close the connection from a
	// context.AfterFunc to unblock a read). A session with nothing to read
	// returns when ctx ends. Returning nil means the peer ended the session
	// cleanly; the supervisor reconnects all the same, unless the error is
	// marked with Final.
	Serve(ctx context.Context) error
	// Close releases the connection. The supervisor calls it exactly once,
	// after Serve returned.
	Close() error
}

// SupervisorConfig configures a Supervisor.
type SupervisorConfig[S Session] struct {
	// Name prefixes readiness errors and log messages ("serial").
	Name string
	// Connect makes a session. It is called again, after a backoff, when
	// it fails or when the session ends. It must honour ctx. An error
	// marked with Final ends the supervisor's Run with that error.
	Connect func(ctx context.Context) (S, error)
	// Backoff paces reconnects; it starts over after a healthy session.
	Backoff pipeline.Backoff
	// Healthy is how long a session must have lasted for the backoff to
	// start over (default 1s): a peer that accepts and drops at once is
	// retried with growing delays, not in a tight loop.
	Healthy time.Duration
	// FailFast makes Session return at once, with the reason, while
	// there is no session and no connection attempt is under way (in a
	// backoff after a failure), instead of waiting for the next session
	// (before the first Run or Start it waits all the same: that is not an
	// outage):
	// a publish during an outage then fails fast (the runner retries or
	// dead-letters it) rather than waiting for its context.
	FailFast bool
	// Log receives reconnect messages (default: discarded). The first
	// failure after a session, and then the 2nd, 4th, 8th... consecutive
	// failure, are warnings; the others are debug messages, so an outage
	// does not flood the log. A session after failures is logged once.
	Log *slog.Logger

	// Sleep waits d or until ctx ends, reporting whether d passed; tests
	// inject it to drive the backoff without real time (default: a timer).
	Sleep func(ctx context.Context, d time.Duration) bool
	// Now is the clock Healthy is measured with (default time.Now).
	Now func() time.Time
}

// Supervisor owns a connector's connection: it connects, serves one
// session at a time, reconnects with backoff when the session fails or
// ends, reports readiness, and hands the live session to publishers. The
// connector supplies only Connect and the session (its protocol adapter).
//
// Invariants:
//
//   - At most one session exists at a time. Its Serve runs on the
//     goroutine of Run; its Close is called exactly once, by Run, after
//     Serve returned, before the next Connect.
//   - Ready returns nil exactly while a session is live (connected and
//     serving). Before the first session it reports "not connected yet";
//     after a failure it reports the failure (the Connect error, or why
//     the session ended), until the next session is live.
//   - The backoff starts over once a session lasted Healthy; a failing
//     Connect or a session shorter than Healthy advances it.
//   - Session returns the live session, or waits for one until its ctx
//     ends (the error then wraps ctx.Err()), the supervisor is closed
//     (ErrSupervisorClosed) or Run ended; with FailFast it does not wait
//     through a backoff.
//   - Fail(s, err) ends session s (if it is still the live one): Serve's
//     context is cancelled, readiness reports err, and the supervisor
//     reconnects. Publishers call it when a write shows the connection
//     is broken.
//   - Close stops Run, which cancels the live session's Serve, closes the
//     session and returns; Close waits for that until its ctx ends. Once
//     Close returned nil, no goroutine of the supervisor is left.
//   - Only one Run at a time: Run while another runs (or after Close)
//     returns an error at once.
//
// A Supervisor is safe for concurrent use.
type Supervisor[S interface {
	Session
	comparable
}] struct {
	cfg SupervisorConfig[S]

	mu         sync.Mutex
	live       bool
	sess       S
	stopSess   context.CancelFunc // cancels the live session's Serve
	failErr    error              // why Fail ended the live session
	reason     error              // why not ready (nil before the first attempt)
	connecting bool               // a Connect is under way
	changed    chan struct{}      // closed and replaced on every change
	running    bool
	cancel     context.CancelFunc // stops the running Run
	done       chan struct{}      // closed when the running Run returns
	closed     bool
	begun      bool // a Run began (FailFast applies from then on)
	ended      bool // a Run returned (for Session without FailFast)
}

// ErrSupervisorClosed is returned by Session and Run after Close.
var ErrSupervisorClosed = errors.New("connection supervisor closed")

// NewSupervisor returns a supervisor for cfg; nothing connects until Run
// or Start.
func NewSupervisor[S interface {
	Session
	comparable
}](cfg SupervisorConfig[S]) *Supervisor[S] {
	if cfg.Name == "" {
		cfg.Name = "connector"
	}
	if cfg.Healthy <= 0 {
		cfg.Healthy = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Supervisor[S]{cfg: cfg, changed: make(chan struct{})}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Final marks err as the end of a supervisor's Run: returned by Connect
// or by a session's Serve, the supervisor does not reconnect and Run
// returns err (nil for Final(nil): the source is finished, e.g. a file
// read to its end).
func Final(err error) error { return &finalError{err} }

type finalError struct{ err error }

func (e *finalError) Error() string {
	if e.err == nil {
		return "finished"
	}
	return e.err.Error()
}

func (e *finalError) Unwrap() error { return e.err }

// finalOf reports whether err is marked with Final, and the error Run
// returns for it.
func finalOf(err error) (error, bool) {
	var f *finalError
	if errors.As(err, &f) {
		return f.err, true
	}
	return nil, false
}

// broadcast wakes every waiter; with s.mu held.
func (s *Supervisor[S]) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// begin claims the loop for one Run; with s.mu held.
func (s *Supervisor[S]) begin(parent context.Context) (context.Context, error) {
	switch {
	case s.closed:
		return nil, ErrSupervisorClosed
	case s.running:
		return nil, fmt.Errorf("%s: connection supervisor already running", s.cfg.Name)
	}
	ctx, cancel := context.WithCancel(parent)
	s.running, s.cancel, s.done, s.ended, s.begun = true, cancel, make(chan struct{}), false, true
	s.connecting = true
	s.broadcast()
	return ctx, nil
}

// Run connects and serves sessions until ctx ends (it returns nil), Close
// is called (nil), or Connect or a session's Serve returns an error marked
// with Final (that error). See Supervisor for the invariants.
func (s *Supervisor[S]) Run(ctx context.Context) error {
	s.mu.Lock()
	ctx, err := s.begin(ctx)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.loop(ctx)
}

// Start runs Run in a goroutine the supervisor owns (Close stops it), for
// a connector whose connection is not driven by Serve (outbound links
// only). It does nothing when Run is already running or after Close.
func (s *Supervisor[S]) Start() {
	s.mu.Lock()
	ctx, err := s.begin(context.Background())
	s.mu.Unlock()
	if err == nil {
		go func() { _ = s.loop(ctx) }()
	}
}

func (s *Supervisor[S]) loop(ctx context.Context) (err error) {
	defer func() {
		s.mu.Lock()
		s.cancel()
		s.running, s.connecting, s.live, s.ended = false, false, false, true
		if err != nil {
			s.reason = fmt.Errorf("%s: %w", s.cfg.Name, err)
		} else {
			s.reason = fmt.Errorf("%s: stopped", s.cfg.Name)
		}
		close(s.done)
		s.broadcast()
		s.mu.Unlock()
	}()
	bo := s.cfg.Backoff
	failures := 0 // consecutive failures since the last healthy session
	var down time.Time
	for ctx.Err() == nil {
		s.mu.Lock()
		s.connecting = true
		s.mu.Unlock()
		sess, cerr := s.cfg.Connect(ctx)
		if ctx.Err() != nil {
			if cerr == nil {
				_ = sess.Close()
			}
			return nil
		}
		if cerr != nil {
			if ferr, ok := finalOf(cerr); ok {
				return ferr
			}
			if failures == 0 {
				down = s.cfg.Now()
			}
			failures++
			s.failed(fmt.Errorf("%s: connect: %w", s.cfg.Name, cerr), failures)
			if !s.cfg.Sleep(ctx, bo.Next()) {
				return nil
			}
			continue
		}
		if failures > 0 {
			s.cfg.Log.Info(s.cfg.Name+": connected again", "attempts", failures, "down", s.cfg.Now().Sub(down).Round(time.Millisecond))
		}
		sctx, stop := context.WithCancel(ctx)
		start := s.cfg.Now()
		s.mu.Lock()
		s.live, s.sess, s.stopSess, s.connecting = true, sess, stop, false
		s.broadcast()
		s.mu.Unlock()

		serr := sess.Serve(sctx)
		stop()
		s.mu.Lock()
		failedBy := s.failErr // set by Fail
		var zero S
		s.live, s.sess, s.stopSess, s.failErr = false, zero, nil, nil
		s.mu.Unlock()
		_ = sess.Close()
		if ctx.Err() != nil {
			return nil
		}
		if ferr, ok := finalOf(serr); ok {
			return ferr
		}
		if s.cfg.Now().Sub(start) >= s.cfg.Healthy {
			bo.Reset()
			failures = 0
		}
		if failures == 0 {
			down = s.cfg.Now()
		}
		failures++
		why := serr
		switch {
		case failedBy != nil:
			why = failedBy
		case why == nil:
			why = errors.New("session ended")
		}
		s.failed(fmt.Errorf("%s: disconnected: %w", s.cfg.Name, why), failures)
		if !s.cfg.Sleep(ctx, bo.Next()) {
			return nil
		}
	}
	return nil
}

// failed records reason as why the supervisor is not ready and logs the
// n-th consecutive failure without flooding.
func (s *Supervisor[S]) failed(reason error, n int) {
	s.mu.Lock()
	s.reason, s.connecting = reason, false
	s.broadcast()
	s.mu.Unlock()
	if bits.OnesCount(uint(n)) == 1 { // 1, 2, 4, 8, ...
		s.cfg.Log.Warn(reason.Error()+"; reconnecting", "attempt", n)
	} else {
		s.cfg.Log.Debug(reason.Error()+"; reconnecting", "attempt", n)
	}
}

// Ready returns nil while a session is live, and otherwise why not.
func (s *Supervisor[S]) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.live:
		return nil
	case s.reason != nil:
		return s.reason
	}
	return fmt.Errorf("%s: not connected yet", s.cfg.Name)
}

// Session returns the live session, waiting for one while ctx lasts (see
// Supervisor and SupervisorConfig.FailFast).
func (s *Supervisor[S]) Session(ctx context.Context) (S, error) {
	var zero S
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return zero, fmt.Errorf("%s: %w", s.cfg.Name, ErrSupervisorClosed)
		case s.live:
			sess := s.sess
			s.mu.Unlock()
			return sess, nil
		case s.ended, s.cfg.FailFast && s.begun && !s.connecting:
			err := s.reason
			if err == nil {
				err = fmt.Errorf("%s: not connected", s.cfg.Name)
			}
			s.mu.Unlock()
			return zero, err
		}
		ch, reason := s.changed, s.reason
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			if reason == nil {
				return zero, fmt.Errorf("%s: waiting for a connection: %w", s.cfg.Name, ctx.Err())
			}
			return zero, fmt.Errorf("%s: waiting for a connection (%v): %w", s.cfg.Name, reason, ctx.Err())
		}
	}
}

// Fail ends sess because err showed its connection is broken (a write
// failed): if sess is still the live session, readiness reports err at
// once, its Serve's context is cancelled, and the supervisor reconnects.
// It does nothing for a session that already ended.
func (s *Supervisor[S]) Fail(sess S, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live || s.sess != sess {
		return
	}
	s.live, s.failErr = false, err
	s.reason = fmt.Errorf("%s: disconnected: %w", s.cfg.Name, err)
	s.stopSess()
	s.broadcast()
}

// Close stops the supervisor: Run returns, the live session (if any) is
// cancelled and closed, and waiters of Session get ErrSupervisorClosed.
// It waits for Run to return until ctx ends (then it returns ctx's error).
// Close is idempotent.
func (s *Supervisor[S]) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.broadcast()
	}
	running, cancel, done := s.running, s.cancel, s.done
	s.mu.Unlock()
	if !running {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: close: %w", s.cfg.Name, ctx.Err())
	}
}
