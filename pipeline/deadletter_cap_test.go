package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// lockedBuffer is a log destination safe for the runner's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestHostilePayloadStaysSmall: a 10 MB JSON number neither becomes a
// 10 MB log line nor a 20 MB dead letter. The dead letter keeps the first
// DeadLetterPayload bytes and records the original size; error texts are
// cut to MaxErrorText.
func TestHostilePayloadStaysSmall(t *testing.T) {
	huge := []byte(`{"temp":` + strings.Repeat("9", 10<<20) + `}`)
	for _, c := range []struct {
		name string
		keep int // RunOptions.DeadLetterPayload
		want int // bytes of payload kept
		dlq  bool
	}{
		{"default keep, to a destination", 0, pipeline.DefaultDeadLetterPayload, true},
		{"keep 64, to a destination", 64, 64, true},
		{"no destination: logged", 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			bus := mem.NewBus()
			g := pipeline.New().Connector("", mem.New(bus))
			g.Record("in").From("mem://in", codec.JSON{})
			g.Pipeline("p").From("in").To("mem://out", codec.JSON{})
			if c.dlq {
				g.DeadLetterTo("mem://dlq", codec.Raw{})
			}
			var logs lockedBuffer
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{DeadLetterPayload: c.keep,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			out, c1 := bus.Subscribe("out", 10)
			defer c1()
			dlq, c2 := bus.Subscribe("dlq", 10)
			defer c2()
			ctx, stop := runMem(t, r)
			publishMem(t, ctx, bus, "in", string(huge), `{"temp":1}`)
			recv(t, out) // the record after the hostile one flows
			if c.dlq {
				raw := recv(t, dlq).Payload
				var dl pipeline.DeadLetter
				if err := json.Unmarshal(raw, &dl); err != nil {
					t.Fatal(err)
				}
				if len(dl.Payload) != c.want || !dl.PayloadTruncated || dl.PayloadSize != len(huge) {
					t.Errorf("dead letter kept %d bytes (truncated %v) of %d, want %d of %d", len(dl.Payload), dl.PayloadTruncated, dl.PayloadSize, c.want, len(huge))
				}
				if len(dl.Error) > pipeline.MaxErrorText+32 || !strings.Contains(dl.Error, "bytes)") {
					t.Errorf("dead-letter error is %d bytes: %.300s", len(dl.Error), dl.Error)
				}
				if len(raw) > c.want+1024 {
					t.Errorf("dead letter is %d bytes", len(raw))
				}
			}
			_ = stop()
			if c.dlq {
				return
			}
			text := logs.String()
			if !strings.Contains(text, "record dropped") {
				t.Fatalf("no drop logged:\n%.500s", text)
			}
			for _, line := range strings.Split(text, "\n") {
				if len(line) > 1024 {
					t.Errorf("log line of %d bytes: %.300s…", len(line), line)
				}
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"short", "short"},
		{strings.Repeat("a", pipeline.MaxErrorText), strings.Repeat("a", pipeline.MaxErrorText)},
		{strings.Repeat("a", pipeline.MaxErrorText+1), strings.Repeat("a", pipeline.MaxErrorText) + "… (201 bytes)"},
		// A cut never splits a rune.
		{strings.Repeat("a", pipeline.MaxErrorText-1) + "é" + "b", strings.Repeat("a", pipeline.MaxErrorText-1) + "… (202 bytes)"},
	} {
		if got := pipeline.ErrorText(errString(c.in)); got != c.want {
			t.Errorf("ErrorText(%d bytes) = %q, want %q", len(c.in), got, c.want)
		}
	}
	if pipeline.ErrorText(nil) != "" {
		t.Error("ErrorText(nil) not empty")
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestDeadLetterNotHTMLEscaped(t *testing.T) {
	env := pipeline.Envelope{Payload: []byte(`{"a":"<b>&"}`)}
	got := string(pipeline.NewDeadLetter(&env, "p", "1:filter", "r", "l", errString("invalid operation: <nil> > int")).Marshal())
	for _, want := range []string{`"error":"invalid operation: <nil> > int"`, `"payload":"{\"a\":\"<b>&\"}"`} {
		if !strings.Contains(got, want) {
			t.Errorf("dead letter %s lacks %s", got, want)
		}
	}
	if strings.HasSuffix(got, "\n") {
		t.Error("dead letter ends in a newline")
	}
}

// A payload over the kept size is cut at the size exactly when it is
// binary, and at most 3 bytes earlier, at a rune boundary, when it is
// text (found by FuzzPipelineAccountsForEveryPayload: a binary payload of
// continuation bytes was cut to 1 byte).
func TestDeadLetterCutKeepsBinaryAndRunes(t *testing.T) {
	binary := append([]byte("r\x04"), bytes.Repeat([]byte{0xa5}, 2000)...)
	text := append(bytes.Repeat([]byte("a"), 1023), []byte("€€€")...) // € is 3 bytes: byte 1024 is inside one
	for _, tc := range []struct {
		name    string
		payload []byte
		wantLen int
		base64  bool
	}{
		{"binary", binary, 1024, true},
		{"text", text, 1023, false},
		{"ascii", bytes.Repeat([]byte("x"), 3000), 1024, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pipeline.NewDeadLetter(&pipeline.Envelope{Payload: tc.payload}, "p", "receive", "r", "l", errors.New("too large"))
			got := []byte(d.Payload)
			if tc.base64 {
				got = d.PayloadBase64
			}
			if len(got) != tc.wantLen || (d.PayloadBase64 != nil) != tc.base64 || !d.PayloadTruncated || !bytes.HasPrefix(tc.payload, got) {
				t.Fatalf("kept %d bytes (base64 %v, truncated %v), want %d (base64 %v)", len(got), d.PayloadBase64 != nil, d.PayloadTruncated, tc.wantLen, tc.base64)
			}
		})
	}
}
