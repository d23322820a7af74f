// Package serial is the host side of device/frame: it reads framed record
// messages (COBS + CRC-16, topic + payload) from a serial device, a pipe or
// FIFO, a file, or a TCP byte stream, and dispatches them into a host
// pipeline; outbound links write framed records back to the device.
//
// Endpoints (connector serial "..."):
//
//	serial:///dev/ttyUSB0          a serial device (set `baud 115200` to put it in raw mode at that speed)
//	serial:///tmp/device.fifo      a named pipe, or a regular file (read to its end: a finite source)
//	serial://127.0.0.1:7000        a TCP byte stream (ser2net, QEMU -serial tcp:..., a device bridge)
//
// Settings (read with connectors/kit): baud N (ttys only, Linux),
// max_frame SIZE (bytes or e.g. 16KiB, default 4096).
//
// Links: an inbound address is a topic filter with MQTT wildcards matched
// against the topic of each frame ("serial://sensors/+/temp"; "serial://#"
// takes everything). The runner routes serial links by exact address, so a
// frame matched by a wildcard filter is dispatched with env.Topic set to the
// filter and the frame's own topic in the "topic" header; a frame matched by
// an exact filter carries its topic in env.Topic as usual. An outbound
// address is the topic written into the frame.
//
// The stream is reopened with exponential backoff after it fails or ends
// (except for regular files), by a kit.Supervisor: readiness reports the
// last open failure or how the stream ended, a publish while the stream is
// down fails at once, and a failed write reopens the stream. Frames that fail their CRC are counted and
// skipped; the stream resynchronises at the next delimiter.
package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
)

// TopicHeader carries a frame's own topic when it was matched by a
// wildcard filter.
const TopicHeader = "topic"

// DefaultMaxFrame is the default largest frame message accepted.
const DefaultMaxFrame = 4096

// Config configures a serial connector.
type Config struct {
	// Open returns the byte stream. It is called again (with backoff) after
	// the stream fails or ends, unless Finite reports true. If the stream
	// also implements io.Writer, outbound links write frames to it.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// Finite reports whether the end of the stream ends the source (a
	// regular file). Nil means never.
	Finite func() bool
	// MaxFrame bounds a frame's message size (default DefaultMaxFrame).
	MaxFrame int
	// Backoff paces reopen attempts.
	Backoff pipeline.Backoff
}

// Builder builds a serial connector.
type Builder struct{ cfg Config }

// New returns a builder for cfg.
func New(cfg Config) *Builder {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	return &Builder{cfg: cfg}
}

// Scheme implements pipeline.Builder.
func (b *Builder) Scheme() string { return "serial" }

// Caps implements pipeline.CapsDeclarer: framed records addressed by
// topic, with wildcards inbound.
func (b *Builder) Caps() pipeline.Caps {
	return pipeline.Caps{Inbound: true, Outbound: true, Topics: true}
}

// ParseLinkOptions implements pipeline.LinkOptionParser: links take no
// options; inbound addresses must be valid topic filters.
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	var errs []error
	if dir == pipeline.Inbound && addr != "" {
		if err := topic.Validate(addr); err != nil {
			errs = append(errs, fmt.Errorf("serial link %q: %w", addr, err))
		}
	}
	return nil, errors.Join(append(errs, kit.ReadLink(dir, p).Err())...)
}

// Build implements pipeline.Builder. It does not open the stream: Serve
// (or, without inbound links, the first Publish) does, with retries.
func (b *Builder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	if b.cfg.Open == nil {
		return nil, errors.New("serial: no Open function configured")
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{cfg: b.cfg, log: log.With("connector", env.Name), inbound: len(env.Inbound) > 0}
	c.sup = kit.NewSupervisor(kit.SupervisorConfig[*stream]{
		Name:     "serial",
		Connect:  c.connect,
		Backoff:  b.cfg.Backoff,
		FailFast: true,
		Log:      c.log,
	})
	return c, nil
}

// Conn is a built serial connector. Its stream is owned by a
// kit.Supervisor: opened, served (read and dispatched while Serve runs)
// and reopened with backoff after it fails or ends.
type Conn struct {
	cfg     Config
	log     *slog.Logger
	sup     *kit.Supervisor[*stream]
	inbound bool // built with inbound links: Serve drives the supervisor

	mu      sync.Mutex
	filters []string            // of the running Serve
	d       pipeline.Dispatcher // of the running Serve; nil: write-only sessions

	frames  atomic.Uint64
	corrupt atomic.Uint64
	serving atomic.Bool
}

// stream is one open byte stream: the session the supervisor serves.
type stream struct {
	c       *Conn
	rc      io.ReadCloser
	filters []string
	d       pipeline.Dispatcher // nil: nothing reads (outbound links only)

	wmu sync.Mutex
	fw  *frame.Writer // nil when the stream is read-only
}

// Stats reports frames received and frames dropped as corrupt or overlong.
func (c *Conn) Stats() (frames, corrupt uint64) { return c.frames.Load(), c.corrupt.Load() }

// Ready implements pipeline.Readiness: while serving inbound links, ready
// means the stream is open (otherwise the error says why not: the last
// open failure, or how the stream ended). A connector with only outbound
// links opens the stream on the first Publish and is always ready.
func (c *Conn) Ready() error {
	if !c.serving.Load() {
		return nil
	}
	return c.sup.Ready()
}

// Finite implements pipeline.FiniteSource.
func (c *Conn) Finite([]pipeline.Subscription) bool {
	return c.cfg.Finite != nil && c.cfg.Finite()
}

func (c *Conn) finite() bool { return c.cfg.Finite != nil && c.cfg.Finite() }

// connect opens the stream (kit.SupervisorConfig.Connect). The open
// failure of a finite source ends Serve with it.
func (c *Conn) connect(ctx context.Context) (*stream, error) {
	rc, err := c.cfg.Open(ctx)
	if err != nil {
		if c.finite() {
			return nil, kit.Final(fmt.Errorf("serial: open: %w", err))
		}
		return nil, fmt.Errorf("open: %w", err)
	}
	c.mu.Lock()
	s := &stream{c: c, rc: rc, filters: c.filters, d: c.d}
	c.mu.Unlock()
	if w, ok := rc.(io.Writer); ok {
		s.fw = frame.NewWriter(w, c.cfg.MaxFrame)
	}
	return s, nil
}

// Serve implements kit.Session: it reads frames and dispatches them until
// the stream fails or ends (the end of a finite source ends the
// connector's Serve), or, for a write-only session, waits for ctx.
func (s *stream) Serve(ctx context.Context) error {
	if s.d == nil {
		<-ctx.Done()
		return nil
	}
	err := s.c.read(ctx, s.rc, s.filters, s.d)
	if s.c.finite() {
		if err == nil || errors.Is(err, io.EOF) {
			return kit.Final(nil)
		}
		return kit.Final(err)
	}
	return err
}

// Close implements kit.Session.
func (s *stream) Close() error { return s.rc.Close() }

// write writes one framed record.
func (s *stream) write(dest string, payload []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.fw == nil {
		return errReadOnly
	}
	return s.fw.WriteRecord(dest, payload)
}

var errReadOnly = errors.New("stream is read-only")

// Serve implements pipeline.Source: the stream is opened, read and
// reopened (with Config.Backoff) until ctx ends or, for a finite source,
// the stream ended.
func (c *Conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	// One dispatch per distinct filter: the runner fans out to every record
	// linked with that address.
	var filters []string
	seen := map[string]bool{}
	for _, s := range subs {
		if !seen[s.Filter] {
			seen[s.Filter] = true
			filters = append(filters, s.Filter)
		}
	}
	c.mu.Lock()
	c.filters, c.d = filters, d
	c.mu.Unlock()
	c.serving.Store(true)
	defer c.serving.Store(false)
	return c.sup.Run(ctx)
}

func (c *Conn) read(ctx context.Context, s io.ReadCloser, filters []string, d pipeline.Dispatcher) error {
	stop := context.AfterFunc(ctx, func() { s.Close() }) // unblock Read on cancel
	defer stop()
	r := frame.NewReader(s, c.cfg.MaxFrame)
	for {
		tp, payload, err := r.ReadRecord()
		switch {
		case errors.Is(err, frame.ErrCorrupt) || errors.Is(err, frame.ErrTooLong) || errors.Is(err, frame.ErrRecord):
			n := c.corrupt.Add(1)
			c.log.Debug("serial: dropped bad frame", "err", err, "dropped", n)
			continue
		case err != nil:
			return err
		}
		c.frames.Add(1)
		t := string(tp)
		now := time.Now()
		for _, f := range filters {
			env := pipeline.Envelope{Topic: t, Time: now, Partition: -1}
			switch {
			case f == t:
			case f == "" || topic.HasWildcard(f) && topic.Match(f, t):
				env.Topic = f
				env.Headers = pipeline.Headers{{Key: TopicHeader, Value: t}}
			default:
				continue
			}
			env.Payload = append([]byte(nil), payload...) // ownership passes on
			if err := d.Dispatch(ctx, &env); err != nil {
				return err
			}
		}
	}
}

// Publish implements pipeline.Connector: it writes env.Payload as a framed
// record under dest to the device (the stream must be writable). Without
// inbound links the first Publish starts opening the stream. While the
// stream is down Publish fails at once (after an open attempt under way)
// with the reason; a failed write makes the stream reopen.
func (c *Conn) Publish(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	if !c.inbound {
		c.sup.Start()
	}
	s, err := c.sup.Session(ctx)
	if err != nil {
		return fmt.Errorf("serial: publish: %w", err)
	}
	if err := s.write(dest, env.Payload); err != nil {
		if !errors.Is(err, errReadOnly) {
			c.sup.Fail(s, fmt.Errorf("write: %w", err))
		}
		return fmt.Errorf("serial: publish: %w", err)
	}
	return nil
}

// Close implements pipeline.Connector: it stops the supervisor and closes
// the stream, within ctx.
func (c *Conn) Close(ctx context.Context) error {
	return c.sup.Close(ctx)
}

// OpenPath opens a device, FIFO or file for reading and writing (reading
// only if it cannot be opened for writing). A positive baud puts a tty
// into raw mode at that speed.
func OpenPath(path string, baud int) func(ctx context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			var rerr error
			if f, rerr = os.Open(path); rerr != nil {
				return nil, err
			}
		}
		if baud > 0 {
			if err := setRaw(f, baud); err != nil {
				f.Close()
				return nil, fmt.Errorf("serial: %s: %w", path, err)
			}
		}
		return f, nil
	}
}

// IsRegularFile reports whether path is a regular file (a finite source).
func IsRegularFile(path string) func() bool {
	return func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Mode().IsRegular()
	}
}

// DialTCP connects to a TCP byte stream.
func DialTCP(addr string) func(ctx context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// Factory builds a serial connector from a DSL declaration; it is
// registered in connectors/registry under "serial".
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("serial endpoint: %w", err)
	}
	var cfg Config
	s := kit.Read(params)
	baud := s.Int("baud", 0, 1, math.MaxInt32)
	cfg.MaxFrame = int(s.SizeIn("max_frame", DefaultMaxFrame, 1, math.MaxInt32))
	var errs []error
	switch {
	case u.Host != "":
		if baud > 0 {
			s.Errorf("baud", "applies to a device path, not a TCP address")
		}
		cfg.Open = DialTCP(u.Host)
	case u.Path != "":
		cfg.Open = OpenPath(u.Path, baud)
		cfg.Finite = IsRegularFile(u.Path)
	default:
		errs = append(errs, fmt.Errorf("serial endpoint %q: want serial:///dev/ttyX, serial:///path or serial://host:port", endpoint))
	}
	if err := errors.Join(append(errs, s.Err())...); err != nil {
		return nil, err
	}
	return New(cfg), nil
}
