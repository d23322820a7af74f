package modbus_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// hostile is a scripted Modbus/TCP peer that answers every read of
// holding registers according to its current mode: a malformed answer
// (a byte count that disagrees with the request), an exception code no
// standard defines, registers holding a NaN float and a huge integer,
// or garbage bytes.
type hostile struct {
	ln   net.Listener
	mode atomic.Int32
	wg   sync.WaitGroup
}

const (
	modeMalformed = iota
	modeOddException
	modeNaN
	modeGarbage
)

func startHostile(t *testing.T) *hostile {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{ln: ln}
	var conns sync.Map
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				defer c.Close()
				h.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		h.wg.Wait()
	})
	return h
}

func (h *hostile) serve(c net.Conn) {
	hdr := make([]byte, 7)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[4:6])) - 1
		if n < 1 || n > 253 {
			return
		}
		pdu := make([]byte, n)
		if _, err := io.ReadFull(c, pdu); err != nil {
			return
		}
		qty := int(binary.BigEndian.Uint16(pdu[3:5]))
		var resp []byte
		switch h.mode.Load() {
		case modeMalformed:
			resp = append([]byte{pdu[0], byte(2*qty + 2)}, make([]byte, 2*qty)...) // byte count too large
		case modeOddException:
			resp = []byte{pdu[0] | 0x80, 0x55}
		case modeNaN:
			resp = []byte{pdu[0], byte(2 * qty)}
			regs := []uint16{0x7FC0, 0x0000, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}
			for i := range qty {
				resp = binary.BigEndian.AppendUint16(resp, regs[i%len(regs)])
			}
		default:
			_, _ = c.Write([]byte("\xde\xad\xbe\xef garbage, not a frame \x00\x01"))
			continue
		}
		out := append(append([]byte(nil), hdr[:4]...), 0, 0, hdr[6])
		binary.BigEndian.PutUint16(out[4:6], uint16(len(resp)+1))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// TestHostilePeer: malformed answers, an unknown exception code, garbage
// bytes and values JSON cannot carry are each counted and reported with
// a reason; the connector reconnects where the stream is out of step and
// keeps polling, and the values it can read are dispatched.
func TestHostilePeer(t *testing.T) {
	h := startHostile(t)
	b := builder(t, "modbus://"+h.ln.Addr().String(), pipeline.Params{"timeout": "200ms", "reconnect_min": "5ms", "reconnect_max": "20ms"})
	c, rec := serve(t, b, "evil", pipeline.Params{"field.f": "holding 0 float32", "field.big": "holding 2 uint64", "interval": "10ms"})
	conn := c.(*modbus.Conn)
	if !waitFor(15*time.Second, func() bool { return conn.Stats().Malformed >= 3 }) {
		t.Fatalf("malformed answers not counted: %+v", conn.Stats())
	}
	t.Logf("malformed: %s", conn.Stats().LastError)
	h.mode.Store(modeOddException)
	if !waitFor(15*time.Second, func() bool { return conn.Stats().Exceptions >= 3 }) {
		t.Fatalf("odd exceptions not counted: %+v", conn.Stats())
	}
	h.mode.Store(modeGarbage)
	before := conn.Stats()
	if !waitFor(15*time.Second, func() bool {
		s := conn.Stats()
		return s.Malformed+s.Timeouts+s.Transport >= before.Malformed+before.Timeouts+before.Transport+3
	}) {
		t.Fatalf("garbage not counted: %+v", conn.Stats())
	}
	if len(rec.all()) != 0 {
		t.Fatalf("dispatched %q from broken answers", rec.last())
	}
	h.mode.Store(modeNaN)
	if !rec.waitPayload(15*time.Second, `{"f":null,"big":18446744073709551615}`) {
		t.Fatalf("no record with the NaN as null; got %q (%+v)", rec.last(), conn.Stats())
	}
	if st := conn.Stats(); st.BadValues == 0 {
		t.Fatalf("the NaN was not counted: %+v", st)
	}
}
