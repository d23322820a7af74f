// Package file connects pipelines to files and standard streams, one
// message per line (JSON lines):
//
//   - file:///path inbound reads the file line by line to its end (a finite
//     source; with the link option follow=true it keeps reading appended
//     lines); file:///path outbound appends one line per record.
//   - stdio://stdin inbound reads standard input; stdio://stdout and
//     stdio://stderr outbound write lines to them.
//
// Outbound writes are buffered and flushed at least every FlushInterval and
// on Close.
package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// FlushInterval bounds how long an outbound line may sit in a buffer.
const FlushInterval = 100 * time.Millisecond

// MaxLine is the longest line read; a longer line stops the source with an
// error.
const MaxLine = 16 << 20

// Options are the typed link options.
type Options struct {
	// Follow keeps reading a file after its end (like tail -f): the source
	// is then not finite. A followed file that does not exist yet is
	// waited for.
	Follow bool
	// Truncate empties an outbound file when the run first writes to it
	// (default: append to what the file holds).
	Truncate bool
}

// Builder builds a file or stdio connector.
type Builder struct {
	scheme string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// New returns a builder for the "file" scheme.
func New() *Builder { return &Builder{scheme: "file"} }

// NewStdio returns a builder for the "stdio" scheme on the given streams
// (os.Stdin, os.Stdout, os.Stderr when nil).
func NewStdio(in io.Reader, out, errw io.Writer) *Builder {
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	if errw == nil {
		errw = os.Stderr
	}
	return &Builder{scheme: "stdio", stdin: in, stdout: out, stderr: errw}
}

// Scheme implements pipeline.Builder.
func (b *Builder) Scheme() string { return b.scheme }

// Caps implements pipeline.CapsDeclarer: files and standard streams are
// read and written; which names are which is checked per link.
func (b *Builder) Caps() pipeline.Caps { return pipeline.Caps{Inbound: true, Outbound: true} }

// Factory is the pipeline.Factory of the "file" scheme; a file connector
// takes no settings (follow is a link setting).
func Factory(_ string, p pipeline.Params) (pipeline.Builder, error) {
	if err := kit.Read(p).Err(); err != nil {
		return nil, err
	}
	return New(), nil
}

// StdioFactory is the pipeline.Factory of the "stdio" scheme (standard
// streams of the process); it takes no settings.
func StdioFactory(_ string, p pipeline.Params) (pipeline.Builder, error) {
	if err := kit.Read(p).Err(); err != nil {
		return nil, err
	}
	return NewStdio(nil, nil, nil), nil
}

// ParseLinkOptions implements pipeline.LinkOptionParser: inbound links
// take follow (a boolean).
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	var o Options
	s := kit.ReadLink(dir, p)
	if dir == pipeline.Inbound {
		o.Follow = s.Bool("follow", false)
	} else if b.scheme == "file" {
		o.Truncate = s.Bool("truncate", false)
	}
	if err := errors.Join(b.checkAddress(dir, addr), s.Err()); err != nil {
		return nil, err
	}
	return o, nil
}

// checkAddress checks a link's address for its direction.
func (b *Builder) checkAddress(dir pipeline.Direction, addr string) error {
	if b.scheme == "stdio" {
		switch {
		case dir == pipeline.Inbound && addr != "stdin" && addr != "":
			return fmt.Errorf("stdio inbound link must be stdio://stdin, got %q", addr)
		case dir == pipeline.Outbound && addr != "stdout" && addr != "stderr":
			return fmt.Errorf("stdio outbound link must be stdio://stdout or stdio://stderr, got %q", addr)
		}
	} else if addr == "" {
		return errors.New("file link needs a path: file:///path/to/file")
	}
	return nil
}

// ValidateLinkOptions implements pipeline.LinkOptionValidator: typed Go
// options (file.Options) get the checks DSL settings get: the address,
// Follow only inbound, Truncate only on outbound files.
func (b *Builder) ValidateLinkOptions(dir pipeline.Direction, addr string, opts any) error {
	o, ok := opts.(Options)
	if !ok {
		return fmt.Errorf("%s link options are file.Options, not %T", b.scheme, opts)
	}
	errs := []error{b.checkAddress(dir, addr)}
	if o.Follow && dir != pipeline.Inbound {
		errs = append(errs, errors.New("Options.Follow applies to inbound links only"))
	}
	if o.Truncate && (dir != pipeline.Outbound || b.scheme != "file") {
		errs = append(errs, errors.New("Options.Truncate applies to outbound files only"))
	}
	return errors.Join(errs...)
}

// CheckLink implements pipeline.LinkChecker: a finite file source reads a
// file that exists, so a missing one is reported at load, with the link's
// position, rather than failing the run (a followed file is waited for).
func (b *Builder) CheckLink(dir pipeline.Direction, addr string, opts any) error {
	o, _ := opts.(Options)
	if b.scheme != "file" || dir != pipeline.Inbound || o.Follow || addr == "" {
		return nil
	}
	if _, err := os.Stat(addr); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("file %s does not exist (add follow true to wait for it to appear)", addr)
		}
		return fmt.Errorf("file %s: %w", addr, err)
	}
	return nil
}

// Build implements pipeline.Builder.
func (b *Builder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	c := &conn{b: b, writers: map[string]*lineWriter{}, done: make(chan struct{})}
	go c.flusher()
	return c, nil
}

type conn struct {
	b        *Builder
	mu       sync.Mutex
	writers  map[string]*lineWriter
	done     chan struct{}
	doneOnce sync.Once
}

type lineWriter struct {
	mu    sync.Mutex
	w     *bufio.Writer
	c     io.Closer
	dirty bool
}

func (c *conn) writer(dest string, truncate bool) (*lineWriter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lw := c.writers[dest]; lw != nil {
		return lw, nil
	}
	var w io.Writer
	var closer io.Closer
	if c.b.scheme == "stdio" {
		switch dest {
		case "stdout":
			w = c.b.stdout
		case "stderr":
			w = c.b.stderr
		default:
			return nil, fmt.Errorf("stdio: unknown stream %q", dest)
		}
	} else {
		flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
		if truncate {
			flags |= os.O_TRUNC
		}
		f, err := os.OpenFile(dest, flags, 0o644)
		if err != nil {
			return nil, err
		}
		w, closer = f, f
	}
	lw := &lineWriter{w: bufio.NewWriterSize(w, 64<<10), c: closer}
	c.writers[dest] = lw
	return lw, nil
}

// CopiesPayload implements pipeline.PayloadCopier: Publish writes the
// payload into the file's buffer before it returns.
func (c *conn) CopiesPayload() bool { return true }

func (c *conn) Publish(_ context.Context, dest string, opts any, env *pipeline.Envelope) error {
	o, _ := opts.(Options)
	lw, err := c.writer(dest, o.Truncate)
	if err != nil {
		return err
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	p := env.Payload
	if len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	if bytes.IndexByte(p, '\n') >= 0 {
		return errors.New("payload contains a newline; a line-oriented sink cannot frame it")
	}
	lw.w.Write(p)
	lw.dirty = true
	return lw.w.WriteByte('\n')
}

func (c *conn) flushAll() error {
	c.mu.Lock()
	ws := make([]*lineWriter, 0, len(c.writers))
	for _, w := range c.writers {
		ws = append(ws, w)
	}
	c.mu.Unlock()
	var errs []error
	for _, lw := range ws {
		lw.mu.Lock()
		if lw.dirty {
			if err := lw.w.Flush(); err != nil {
				errs = append(errs, err)
			}
			lw.dirty = false
		}
		lw.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (c *conn) flusher() {
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = c.flushAll()
		case <-c.done:
			return
		}
	}
}

func (c *conn) Close(context.Context) error {
	c.doneOnce.Do(func() { close(c.done) })
	err := c.flushAll()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, lw := range c.writers {
		if lw.c != nil {
			err = errors.Join(err, lw.c.Close())
		}
	}
	c.writers = map[string]*lineWriter{}
	return err
}

// Finite implements pipeline.FiniteSource: file sources end at EOF unless
// one follows its file.
func (c *conn) Finite(subs []pipeline.Subscription) bool {
	for _, s := range subs {
		if o, _ := s.Options.(Options); o.Follow {
			return false
		}
	}
	return true
}

// Serve implements pipeline.Source.
func (c *conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	var wg sync.WaitGroup
	errs := make([]error, len(subs))
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.serveOne(ctx, s, d)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *conn) serveOne(ctx context.Context, s pipeline.Subscription, d pipeline.Dispatcher) error {
	opts, _ := s.Options.(Options)
	var r io.Reader
	if c.b.scheme == "stdio" {
		r = c.b.stdin
	} else {
		f, err := openSource(ctx, s.Filter, opts.Follow)
		if err != nil || f == nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return ReadLines(ctx, r, s.Filter, opts.Follow, d)
}

// ReadLines dispatches every line of r as one message on topic. Payloads
// are carved from large shared slabs, so reading allocates per 64 KiB, not
// per line. With follow it polls for appended data after EOF until ctx ends.
func ReadLines(ctx context.Context, r io.Reader, topic string, follow bool, d pipeline.Dispatcher) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var slab []byte
	var partial []byte
	var env pipeline.Envelope // hoisted: escapes once, not once per line
	// Lines already in the buffer are handed over together when the
	// dispatcher takes batches: one buffer hand-off per batch.
	bd, batching := d.(pipeline.BatchDispatcher)
	var batch []pipeline.Envelope
	if batching {
		batch = make([]pipeline.Envelope, 0, dispatchBatch)
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := bd.DispatchBatch(ctx, batch)
		clear(batch)
		batch = batch[:0]
		return err
	}
	defer flush()
	// Lines that arrive in one read share its receive time: the clock is
	// read when the buffer is refilled, not per line (time.Now costs
	// more than the rest of a record's dispatch on some virtual machines).
	var now time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		if br.Buffered() == 0 || now.IsZero() {
			now = time.Now()
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			partial = append(partial, line...)
			if len(partial) > MaxLine {
				return fmt.Errorf("%s: line longer than %d bytes", topic, MaxLine)
			}
			continue
		}
		if len(partial) > 0 {
			line = append(partial, line...)
			partial = partial[:0:0]
		}
		if err != nil && err != io.EOF {
			return err
		}
		if err == io.EOF && follow && (len(line) == 0 || line[len(line)-1] != '\n') {
			// Incomplete last line: keep it and wait for more.
			partial = append(partial, line...)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		body := bytes.TrimRight(line, "\r\n")
		if len(body) > 0 {
			if len(slab) < len(body) {
				slab = make([]byte, max(64<<10, len(body)))
			}
			p := slab[:len(body):len(body)]
			slab = slab[len(body):]
			copy(p, body)
			if batching {
				batch = append(batch, pipeline.Envelope{Payload: p, Topic: topic, Time: now})
				// Hand over when the batch is full or the next line is not
				// in the buffer yet (reading on would wait).
				if len(batch) == cap(batch) || !lineBuffered(br) {
					if derr := flush(); derr != nil {
						return nil // stopping
					}
				}
			} else {
				env = pipeline.Envelope{Payload: p, Topic: topic, Time: now}
				if derr := d.Dispatch(ctx, &env); derr != nil {
					return nil // stopping
				}
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// openSource opens a file source; a followed file that does not exist yet
// is polled for until it appears or ctx ends (nil file, nil error).
func openSource(ctx context.Context, path string, follow bool) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if err == nil || !follow || !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dispatchBatch is the most lines a file source hands over at once.
const dispatchBatch = 64

// lineBuffered reports whether a complete line is already buffered.
func lineBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}
