package file_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

type collect struct {
	mu   sync.Mutex
	msgs []string
}

func (c *collect) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, string(env.Payload))
	return nil
}

func (c *collect) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", 300<<10) // longer than the reader's buffer
	in := "a\r\n\nb\n" + long + "\nlast-without-newline"
	var c collect
	if err := file.ReadLines(context.Background(), strings.NewReader(in), "t", false, &c); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", long, "last-without-newline"}
	if len(c.msgs) != len(want) {
		t.Fatalf("got %d lines, want %d", len(c.msgs), len(want))
	}
	for i := range want {
		if c.msgs[i] != want[i] {
			t.Fatalf("line %d differs", i)
		}
	}
}

func TestFollowReadsAppendedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(path, []byte("1\n"), 0o644)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var c collect
	done := make(chan error)
	go func() { done <- file.ReadLines(ctx, f, path, true, &c) }()
	w, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	w.WriteString("2\n3") // the partial line waits for its newline
	deadline := time.Now().Add(5 * time.Second)
	for c.len() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.WriteString("\n")
	w.Close()
	for c.len() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.msgs, ",") != "1,2,3" {
		t.Fatalf("got %v", c.msgs)
	}
}

func TestStdioPublish(t *testing.T) {
	var out bytes.Buffer
	b := file.NewStdio(strings.NewReader(""), &out, nil)
	conn, err := b.Build(context.Background(), pipeline.BuildEnv{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := conn.Publish(ctx, "stdout", nil, &pipeline.Envelope{Payload: []byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Publish(ctx, "stdout", nil, &pipeline.Envelope{Payload: []byte("two\nlines")}); err == nil {
		t.Fatal("a payload with a newline must be refused by a line sink")
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if out.String() != "{\"a\":1}\n" {
		t.Fatalf("stdout = %q", out.String())
	}
}

func TestLinkOptions(t *testing.T) {
	tests := []struct {
		b       *file.Builder
		dir     pipeline.Direction
		addr    string
		p       pipeline.Params
		want    file.Options
		wantErr string
	}{
		{b: file.New(), dir: pipeline.Inbound, addr: "/tmp/x", p: pipeline.Params{"follow": "true"}, want: file.Options{Follow: true}},
		{b: file.New(), dir: pipeline.Inbound, addr: "/tmp/x", p: pipeline.Params{"follow": "yes"}, want: file.Options{Follow: true}},
		{b: file.New(), dir: pipeline.Inbound, addr: "/tmp/x", p: pipeline.Params{"follow": "often"},
			wantErr: `follow "often": want true or false`},
		{b: file.New(), dir: pipeline.Outbound, addr: "/tmp/x", p: pipeline.Params{"follow": "true"},
			wantErr: `follow: unknown outbound link setting (known: truncate)`},
		{b: file.New(), dir: pipeline.Outbound, addr: "/tmp/x", p: pipeline.Params{"truncate": "true"}, want: file.Options{Truncate: true}},
		{b: file.New(), dir: pipeline.Inbound, addr: "", wantErr: "file link needs a path: file:///path/to/file"},
		{b: file.New(), dir: pipeline.Inbound, addr: "/tmp/x", p: pipeline.Params{"folow": "1"},
			wantErr: `folow: unknown inbound link setting (did you mean "follow"?)`},
		{b: file.New(), dir: pipeline.Inbound, addr: "", p: pipeline.Params{"follow": "x"},
			wantErr: "file link needs a path: file:///path/to/file\n" + `follow "x": want true or false`},
		{b: file.NewStdio(nil, nil, nil), dir: pipeline.Outbound, addr: "stdout"},
		{b: file.NewStdio(nil, nil, nil), dir: pipeline.Outbound, addr: "stdin",
			wantErr: `stdio outbound link must be stdio://stdout or stdio://stderr, got "stdin"`},
		{b: file.NewStdio(nil, nil, nil), dir: pipeline.Inbound, addr: "stdin"},
	}
	for _, tt := range tests {
		o, err := tt.b.ParseLinkOptions(tt.dir, tt.addr, tt.p)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s %s %q %v: err %v, want %q", tt.b.Scheme(), tt.dir, tt.addr, tt.p, err, tt.wantErr)
			}
		case err != nil || o != tt.want:
			t.Errorf("%s %s %q %v: %+v, %v", tt.b.Scheme(), tt.dir, tt.addr, tt.p, o, err)
		}
	}
}

func TestFactoriesTakeNoSettings(t *testing.T) {
	for _, f := range []pipeline.Factory{file.Factory, file.StdioFactory} {
		if b, err := f("file://", nil); err != nil || b == nil {
			t.Fatalf("no settings: %v", err)
		}
		_, err := f("file://", pipeline.Params{"follow": "true"})
		if err == nil || err.Error() != "follow: unknown setting (none are accepted here)" {
			t.Errorf("err = %v", err)
		}
	}
}

func TestCheckLink(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(present, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "none.jsonl")
	b := file.New()
	tests := []struct {
		addr    string
		opts    file.Options
		dir     pipeline.Direction
		wantErr string
	}{
		{present, file.Options{}, pipeline.Inbound, ""},
		{missing, file.Options{}, pipeline.Inbound, "file " + missing + " does not exist (add follow true to wait for it to appear)"},
		{missing, file.Options{Follow: true}, pipeline.Inbound, ""},
		{missing, file.Options{}, pipeline.Outbound, ""},
	}
	for _, tc := range tests {
		err := b.CheckLink(tc.dir, tc.addr, tc.opts)
		if (err == nil) != (tc.wantErr == "") || err != nil && err.Error() != tc.wantErr {
			t.Errorf("CheckLink(%s, %s, %+v) = %v, want %q", tc.dir, tc.addr, tc.opts, err, tc.wantErr)
		}
	}
}

// truncate empties the sink file once per run; the default appends.
func TestTruncate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	for _, tc := range []struct {
		truncate bool
		want     string
	}{{false, "old\nnew-1\nnew-2\n"}, {true, "new-1\nnew-2\n"}} {
		if err := os.WriteFile(out, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		b := file.New()
		c, err := b.Build(context.Background(), pipeline.BuildEnv{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"new-1", "new-2"} {
			if err := c.Publish(context.Background(), out, file.Options{Truncate: tc.truncate}, &pipeline.Envelope{Payload: []byte(p)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(out)
		if string(got) != tc.want {
			t.Fatalf("truncate %v: file %q, want %q", tc.truncate, got, tc.want)
		}
	}
}

type chanDispatcher chan string

func (d chanDispatcher) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	d <- string(env.Payload)
	env.Ack.Done()
	return nil
}

// A followed source whose file does not exist yet waits for it.
func TestFollowWaitsForTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.jsonl")
	c, err := file.New().Build(context.Background(), pipeline.BuildEnv{})
	if err != nil {
		t.Fatal(err)
	}
	src := c.(pipeline.Source)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chanDispatcher, 1)
	done := make(chan error, 1)
	go func() {
		done <- src.Serve(ctx, []pipeline.Subscription{{Filter: path, Options: file.Options{Follow: true}}}, got)
	}()
	select {
	case err := <-done:
		t.Fatalf("Serve ended before the file appeared: %v", err)
	default:
	}
	if err := os.WriteFile(path, []byte("{\"a\":1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-got:
		if line != `{"a":1}` {
			t.Fatalf("got %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the line written after Serve started never arrived")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
}
