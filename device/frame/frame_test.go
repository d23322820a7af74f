package frame_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
)

func TestCRC16KnownValue(t *testing.T) {
	if got := frame.CRC16([]byte("123456789")); got != 0x29B1 {
		t.Fatalf("CRC16 = %#04x, want 0x29b1 (CRC-16/CCITT-FALSE check value)", got)
	}
}

func TestRoundTrip(t *testing.T) {
	var msgs [][]byte
	msgs = append(msgs, []byte{}, []byte{0}, []byte{0, 0, 0}, []byte("hello"))
	for _, n := range []int{252, 253, 254, 255, 256, 508, 509, 600} {
		m := make([]byte, n)
		for i := range m {
			m[i] = byte(i%255 + 1) // no zeros: exercises the 0xFF block code
		}
		msgs = append(msgs, m)
		z := make([]byte, n)
		for i := range z {
			z[i] = byte(i * 7)
		}
		msgs = append(msgs, z)
	}
	var stream bytes.Buffer
	w := frame.NewWriter(&stream, 600)
	for _, m := range msgs {
		if err := w.WriteFrame(m); err != nil {
			t.Fatal(err)
		}
	}
	if bytes.IndexByte(stream.Bytes()[:len(stream.Bytes())-1], 0) < 0 {
		t.Fatal("no delimiters")
	}
	r := frame.NewReader(&stream, 600)
	for i, m := range msgs {
		got, err := r.ReadFrame()
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("frame %d (len %d): got len %d, %v", i, len(m), len(got), err)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	for _, m := range msgs {
		enc := frame.AppendEncode(nil, m)
		if len(enc) > len(m)+frame.Overhead(len(m)) {
			t.Fatalf("len %d: frame %d exceeds overhead bound", len(m), len(enc))
		}
		if bytes.IndexByte(enc[:len(enc)-1], 0) >= 0 {
			t.Fatal("zero inside a frame")
		}
	}
}

// oneByteReader returns data one byte per Read, as a slow UART would.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestResyncAfterNoiseAndCorruption(t *testing.T) {
	var stream bytes.Buffer
	stream.Write([]byte{0x41, 0x42, 0x43}) // tail of a frame we joined mid-way
	stream.WriteByte(0)
	w := frame.NewWriter(&stream, 64)
	w.WriteRecord("a", []byte("one"))
	good := frame.AppendEncode(nil, frame.AppendRecord(nil, "b", []byte("two")))
	bad := append([]byte(nil), good...)
	bad[3] ^= 0x20 // flip a bit: CRC must catch it
	stream.Write(bad)
	stream.Write(bytes.Repeat([]byte{7}, 200)) // overlong garbage
	stream.WriteByte(0)
	w.WriteRecord("c", []byte("three"))
	stream.Write(good[:4]) // truncated at the end

	r := frame.NewReader(oneByteReader{&stream}, 64)
	var got []string
	for {
		topic, payload, err := r.ReadRecord()
		if err != nil {
			got = append(got, "err:"+errName(err))
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			continue
		}
		got = append(got, string(topic)+"="+string(payload))
	}
	want := "[err:corrupt a=one err:corrupt err:toolong c=three err:unexpectedEOF]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v\nwant %s", got, want)
	}
}

func errName(err error) string {
	switch {
	case errors.Is(err, frame.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, frame.ErrTooLong):
		return "toolong"
	case errors.Is(err, frame.ErrRecord):
		return "record"
	case err == io.ErrUnexpectedEOF:
		return "unexpectedEOF"
	}
	return err.Error()
}

func TestWriterRejectsOversize(t *testing.T) {
	w := frame.NewWriter(io.Discard, 8)
	if err := w.WriteFrame(make([]byte, 9)); !errors.Is(err, frame.ErrTooLong) {
		t.Fatal(err)
	}
	if err := w.WriteRecord("topic", make([]byte, 4)); !errors.Is(err, frame.ErrTooLong) {
		t.Fatal(err)
	}
	if _, _, err := frame.SplitRecord([]byte{5, 'a'}); !errors.Is(err, frame.ErrRecord) {
		t.Fatal(err)
	}
}

func TestNoAllocations(t *testing.T) {
	var stream bytes.Buffer
	stream.Grow(1024)
	w := frame.NewWriter(&stream, 128)
	r := frame.NewReader(&stream, 128)
	payload := []byte(`{"device":"d-1","temp":21.5}`)
	allocs := alloctest.PerRun(500, func() {
		if err := w.WriteRecord("sensors/d-1/temp", payload); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.ReadRecord(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocs per frame", allocs)
	}
}

func ExampleWriter() {
	var uart bytes.Buffer // any io.Writer: a UART, a pipe, a TCP bridge
	w := frame.NewWriter(&uart, 128)
	w.WriteRecord("sensors/d-1/temp", []byte(`{"temp":21.5}`))

	r := frame.NewReader(&uart, 128)
	topic, payload, err := r.ReadRecord()
	fmt.Println(string(topic), string(payload), err)
	// Output: sensors/d-1/temp {"temp":21.5} <nil>
}

func TestRecordTopicLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300} {
		topic := strings.Repeat("t", n)
		msg := frame.AppendRecord(nil, topic, []byte("p"))
		gt, gp, err := frame.SplitRecord(msg)
		if err != nil || string(gt) != topic || string(gp) != "p" {
			t.Fatalf("topic len %d: %q %q %v", n, gt, gp, err)
		}
		if _, _, err := frame.SplitRecord(msg[:len(msg)-2]); n > 0 && err == nil {
			t.Fatalf("topic len %d: truncated message accepted", n)
		}
	}
}
