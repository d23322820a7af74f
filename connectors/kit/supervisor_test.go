package kit_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// fakeSession serves until the test ends it (end) or its context ends.
type fakeSession struct {
	id       int
	end      chan error
	served   chan struct{} // closed when Serve returned
	closes   atomic.Int32
	ignoreCx bool // Serve ignores its context (a broken adapter)
}

func (f *fakeSession) Serve(ctx context.Context) error {
	defer close(f.served)
	if f.ignoreCx {
		return <-f.end
	}
	select {
	case err := <-f.end:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeSession) Close() error { f.closes.Add(1); return nil }

// rig drives a supervisor without real time: Connect takes its outcome
// from connects, the backoff's waits are reported on sleeps and end when
// the test sends on wake, and the clock is moved by hand.
type rig struct {
	t        *testing.T
	sup      *kit.Supervisor[*fakeSession]
	connects chan func() (*fakeSession, error)
	sleeps   chan time.Duration
	wake     chan bool
	mu       sync.Mutex
	now      time.Time
	logs     *logCounter
	runErr   chan error
}

type logCounter struct {
	mu    sync.Mutex
	warns []string
	infos []string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.Level {
	case slog.LevelWarn:
		l.warns = append(l.warns, r.Message)
	case slog.LevelInfo:
		l.infos = append(l.infos, r.Message)
	}
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func (l *logCounter) counts() (warns, infos int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.warns), len(l.infos)
}

func newRig(t *testing.T, failFast bool) *rig {
	r := &rig{t: t, connects: make(chan func() (*fakeSession, error)), sleeps: make(chan time.Duration),
		wake: make(chan bool), now: time.Unix(0, 0), logs: &logCounter{}, runErr: make(chan error, 1)}
	r.sup = kit.NewSupervisor(kit.SupervisorConfig[*fakeSession]{
		Name:     "fake",
		Backoff:  pipeline.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second},
		Healthy:  time.Second,
		FailFast: failFast,
		Log:      slog.New(r.logs),
		Connect: func(ctx context.Context) (*fakeSession, error) {
			select {
			case f := <-r.connects:
				return f()
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		Sleep: func(ctx context.Context, d time.Duration) bool {
			select {
			case r.sleeps <- d:
			case <-ctx.Done():
				return false
			}
			select {
			case ok := <-r.wake:
				return ok
			case <-ctx.Done():
				return false
			}
		},
		Now: func() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now },
	})
	return r
}

func (r *rig) run(ctx context.Context) {
	go func() { r.runErr <- r.sup.Run(ctx) }()
	r.t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.sup.Close(cctx); err != nil {
			r.t.Errorf("Close: %v", err)
		}
	})
}

func (r *rig) advance(d time.Duration) { r.mu.Lock(); r.now = r.now.Add(d); r.mu.Unlock() }

// connectOK lets the pending Connect succeed and waits until the session
// is live.
func (r *rig) connectOK(id int) *fakeSession {
	r.t.Helper()
	f := &fakeSession{id: id, end: make(chan error, 1), served: make(chan struct{})}
	r.connects <- func() (*fakeSession, error) { return f, nil }
	r.waitSession(f)
	return f
}

func (r *rig) waitSession(f *fakeSession) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := r.sup.Session(ctx)
	if err != nil || got != f {
		r.t.Fatalf("Session: %v, %v; want session %d", got, err, f.id)
	}
}

// connectFail makes the pending Connect fail and returns the backoff the
// supervisor then waits (without letting it pass).
func (r *rig) connectFail(err error) time.Duration {
	r.t.Helper()
	r.connects <- func() (*fakeSession, error) { return nil, err }
	return r.nextSleep()
}

func (r *rig) nextSleep() time.Duration {
	r.t.Helper()
	select {
	case d := <-r.sleeps:
		return d
	case <-time.After(5 * time.Second):
		r.t.Fatal("the supervisor did not wait a backoff")
	}
	return 0
}

func within(d, lo, hi time.Duration) bool { return d >= lo && d < hi }

func TestSupervisorReadiness(t *testing.T) {
	r := newRig(t, false)
	if err := r.sup.Ready(); err == nil || err.Error() != "fake: not connected yet" {
		t.Fatalf("Ready before Run: %v, want fake: not connected yet", err)
	}
	r.run(context.Background())
	d := r.connectFail(errors.New("connection refused"))
	if err := r.sup.Ready(); err == nil || err.Error() != "fake: connect: connection refused" {
		t.Fatalf("Ready after a failed connect: %v", err)
	}
	if !within(d, 50*time.Millisecond, 100*time.Millisecond) {
		t.Fatalf("first backoff %v, want [50ms, 100ms)", d)
	}
	r.wake <- true
	s1 := r.connectOK(1)
	if err := r.sup.Ready(); err != nil {
		t.Fatalf("Ready with a live session: %v", err)
	}
	s1.end <- errors.New("EOF")
	r.nextSleep()
	if err := r.sup.Ready(); err == nil || err.Error() != "fake: disconnected: EOF" {
		t.Fatalf("Ready after the session ended: %v", err)
	}
	if n := s1.closes.Load(); n != 1 {
		t.Fatalf("the ended session was closed %d times, want once", n)
	}
	r.wake <- true
	r.connectOK(2)
	if err := r.sup.Ready(); err != nil {
		t.Fatalf("Ready after reconnecting: %v", err)
	}
}

// TestSupervisorBackoff: failures advance the backoff; a session that
// lasted Healthy starts it over, a shorter one does not.
func TestSupervisorBackoff(t *testing.T) {
	tests := []struct {
		name    string
		lasted  time.Duration
		lo, hi  time.Duration // the backoff after the session
		attempt int
	}{
		{"healthy session resets", 2 * time.Second, 50 * time.Millisecond, 100 * time.Millisecond, 1},
		{"flapping session does not", 10 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, false)
			r.run(context.Background())
			if d := r.connectFail(errors.New("refused")); !within(d, 50*time.Millisecond, 100*time.Millisecond) {
				t.Fatalf("backoff 1: %v", d)
			}
			r.wake <- true
			if d := r.connectFail(errors.New("refused")); !within(d, 100*time.Millisecond, 200*time.Millisecond) {
				t.Fatalf("backoff 2: %v", d)
			}
			r.wake <- true
			s := r.connectOK(1)
			r.advance(tc.lasted)
			s.end <- nil
			if d := r.nextSleep(); !within(d, tc.lo, tc.hi) {
				t.Fatalf("backoff after a session of %v: %v, want [%v, %v)", tc.lasted, d, tc.lo, tc.hi)
			}
		})
	}
}

// TestSupervisorSessionWaits: without FailFast, Session waits for the
// next session through an outage, and its error wraps ctx's; with
// FailFast it fails at once during a backoff, with the reason.
func TestSupervisorSessionWaits(t *testing.T) {
	t.Run("wait", func(t *testing.T) {
		r := newRig(t, false)
		r.run(context.Background())
		r.connectFail(errors.New("refused"))
		got := make(chan *fakeSession, 1)
		go func() {
			s, err := r.sup.Session(context.Background())
			if err != nil {
				t.Errorf("Session: %v", err)
			}
			got <- s
		}()
		r.wake <- true
		s := r.connectOK(1)
		if g := <-got; g != s {
			t.Fatalf("the waiting Session got %v, want the new session", g)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.end <- errors.New("reset")
		r.nextSleep()
		if _, err := r.sup.Session(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "reset") {
			t.Fatalf("Session with a cancelled context in an outage: %v, want it to wrap context.Canceled and name the reason", err)
		}
	})
	t.Run("fail fast", func(t *testing.T) {
		r := newRig(t, true)
		r.run(context.Background())
		r.connectFail(errors.New("refused"))
		if _, err := r.sup.Session(context.Background()); err == nil || err.Error() != "fake: connect: refused" {
			t.Fatalf("FailFast Session during a backoff: %v, want the reason at once", err)
		}
		// While a connect is under way it waits for its outcome.
		r.wake <- true
		f := &fakeSession{id: 1, end: make(chan error, 1), served: make(chan struct{})}
		release := make(chan struct{})
		// Once this send is taken, the supervisor is inside Connect.
		r.connects <- func() (*fakeSession, error) { <-release; return f, nil }
		got := make(chan error, 1)
		go func() { _, err := r.sup.Session(context.Background()); got <- err }()
		close(release)
		if err := <-got; err != nil {
			t.Fatalf("FailFast Session during a connect: %v", err)
		}
	})
}

// TestSupervisorFail: a publisher's Fail ends the live session (its Serve
// context is cancelled), readiness names the cause, and the supervisor
// reconnects; Fail of a session that already ended does nothing.
func TestSupervisorFail(t *testing.T) {
	r := newRig(t, false)
	r.run(context.Background())
	s1 := r.connectOK(1)
	r.sup.Fail(s1, errors.New("write: broken pipe"))
	if err := r.sup.Ready(); err == nil || err.Error() != "fake: disconnected: write: broken pipe" {
		t.Fatalf("Ready right after Fail: %v", err)
	}
	wait(t, s1.served, "the failed session's Serve to return")
	r.nextSleep()
	r.wake <- true
	s2 := r.connectOK(2)
	r.sup.Fail(s1, errors.New("late"))
	if err := r.sup.Ready(); err != nil {
		t.Fatalf("Fail of an ended session changed readiness: %v", err)
	}
	select {
	case <-s2.served:
		t.Fatal("Fail of an ended session ended the live one")
	default:
	}
}

// TestSupervisorFinal: Final ends Run with its error (nil: finished), and
// nothing reconnects.
func TestSupervisorFinal(t *testing.T) {
	boom := errors.New("no such file")
	tests := []struct {
		name string
		end  func(r *rig)
		want error
	}{
		{"connect", func(r *rig) { r.connects <- func() (*fakeSession, error) { return nil, kit.Final(boom) } }, boom},
		{"serve finished", func(r *rig) { r.connectOK(1).end <- kit.Final(nil) }, nil},
		{"serve failed", func(r *rig) { r.connectOK(1).end <- kit.Final(boom) }, boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, false)
			r.run(context.Background())
			tc.end(r)
			select {
			case err := <-r.runErr:
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Fatalf("Run: %v, want %v", err, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return")
			}
			if _, err := r.sup.Session(context.Background()); err == nil {
				t.Fatal("Session after Run ended: no error")
			}
		})
	}
}

// TestSupervisorClose: Close cancels the live session, closes it once,
// makes Run return and Session fail; it is bounded by its context when a
// session ignores cancellation; a second Run is refused.
func TestSupervisorClose(t *testing.T) {
	t.Run("live session", func(t *testing.T) {
		r := newRig(t, false)
		r.run(context.Background())
		s := r.connectOK(1)
		if err := r.sup.Run(context.Background()); err == nil {
			t.Fatal("a second concurrent Run was accepted")
		}
		if err := closeSoon(r.sup); err != nil {
			t.Fatal(err)
		}
		if err := <-r.runErr; err != nil {
			t.Fatalf("Run after Close: %v", err)
		}
		if n := s.closes.Load(); n != 1 {
			t.Fatalf("session closed %d times, want once", n)
		}
		if _, err := r.sup.Session(context.Background()); !errors.Is(err, kit.ErrSupervisorClosed) {
			t.Fatalf("Session after Close: %v", err)
		}
		if err := r.sup.Run(context.Background()); !errors.Is(err, kit.ErrSupervisorClosed) {
			t.Fatalf("Run after Close: %v", err)
		}
	})
	t.Run("in backoff", func(t *testing.T) {
		r := newRig(t, false)
		r.run(context.Background())
		r.connectFail(errors.New("refused"))
		if err := closeSoon(r.sup); err != nil {
			t.Fatal(err)
		}
		if err := <-r.runErr; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
	t.Run("session ignores its context", func(t *testing.T) {
		r := newRig(t, false)
		r.run(context.Background())
		f := &fakeSession{id: 1, end: make(chan error, 1), served: make(chan struct{}), ignoreCx: true}
		r.connects <- func() (*fakeSession, error) { return f, nil }
		r.waitSession(f)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.sup.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Close with a stuck session: %v, want its context's error", err)
		}
		f.end <- nil // let the stuck session go
		<-r.runErr
	})
	t.Run("Start", func(t *testing.T) {
		r := newRig(t, false)
		r.sup.Start()
		r.sup.Start() // no second loop
		s := r.connectOK(1)
		if err := closeSoon(r.sup); err != nil {
			t.Fatal(err)
		}
		wait(t, s.served, "Serve to return")
		if n := s.closes.Load(); n != 1 {
			t.Fatalf("session closed %d times", n)
		}
	})
}

// TestSupervisorLogsWithoutFlooding: of 10 consecutive failures, the 1st,
// 2nd, 4th and 8th are warnings; the session after them is one info.
func TestSupervisorLogsWithoutFlooding(t *testing.T) {
	r := newRig(t, false)
	r.run(context.Background())
	for i := 0; i < 10; i++ {
		r.connectFail(errors.New("refused"))
		r.wake <- true
	}
	r.connectOK(1)
	if w, i := r.logs.counts(); w != 4 || i != 1 {
		t.Fatalf("%d warnings and %d infos for 10 failures and a reconnect, want 4 and 1", w, i)
	}
}

// closeSoon closes sup, bounded by a deadline that fails the check.
func closeSoon(sup *kit.Supervisor[*fakeSession]) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return sup.Close(ctx)
}

// wait waits for ch to be closed, failing the test after 5s.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
