//go:build linux

package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// loopDevice is the peer of the conformance suite: a pseudo-terminal
// whose master side echoes every byte back, like a device that loops its
// serial line. The connector opens the slave (a real tty, in raw mode),
// so what it publishes comes back to it as frames to serve. Unplug closes
// the master (the connector's reads fail, its reopen attempts too: the
// slave is gone) and Plug makes a new pty the device.
type loopDevice struct {
	t      *testing.T
	mu     sync.Mutex
	master *os.File
	slave  string
	echoes sync.WaitGroup
}

func newLoopDevice(t *testing.T) *loopDevice {
	d := &loopDevice{t: t}
	d.plug()
	t.Cleanup(func() { d.unplug(); d.echoes.Wait() })
	return d
}

func (d *loopDevice) plug() {
	m, slave := openPTY(d.t)
	d.mu.Lock()
	d.master, d.slave = m, slave
	d.mu.Unlock()
	d.echoes.Add(1)
	go func() {
		defer d.echoes.Done()
		_, _ = io.Copy(m, m) // ends with EIO when the master is closed
	}()
}

func (d *loopDevice) unplug() {
	d.mu.Lock()
	m := d.master
	d.master, d.slave = nil, ""
	d.mu.Unlock()
	if m != nil {
		m.Close()
	}
}

var errUnplugged = errors.New("device unplugged")

// open is the connector's Config.Open: the current slave, in raw mode.
func (d *loopDevice) open(ctx context.Context) (io.ReadCloser, error) {
	d.mu.Lock()
	slave := d.slave
	d.mu.Unlock()
	if slave == "" {
		return nil, errUnplugged
	}
	return OpenPath(slave, 115200)(ctx)
}

// TestConformance runs the connector conformance suite over a real pty
// (see loopDevice), with an outage: the device is unplugged (pty closed)
// and plugged in again (a new pty).
func TestConformance(t *testing.T) {
	var n atomic.Int32
	conntest.Run(t, conntest.Features{
		NoKey:        "a frame carries a topic and a payload only",
		NoHeaders:    "a frame carries a topic and a payload only",
		NoAck:        "a serial line has no acknowledgement",
		NoRedelivery: "a serial line has no acknowledgement, so nothing is redelivered",
		NoBlocking:   "Publish writes to the tty's kernel buffer; a write to a tty does not take a context, so the suite cannot stall it (it would block only once the line's buffers are full)",
		NotFinite:    "a tty never ends (a regular file is finite: TestRegularFileIsFiniteAndCorruptFramesAreSkipped)",
		BadLinks: []conntest.BadLink{
			{Name: "link setting", Dir: pipeline.Inbound, Address: "in", Params: pipeline.Params{"qos": "1"},
				Want: "qos: unknown inbound link setting (none are accepted here)"},
			{Name: "outbound link setting", Dir: pipeline.Outbound, Address: "out", Params: pipeline.Params{"baud": "9600"},
				Want: "baud: unknown outbound link setting (none are accepted here)"},
			{Name: "bad filter", Dir: pipeline.Inbound, Address: "a/#/b", Want: `serial link "a/#/b"`},
			{Name: "wildcard destination", Dir: pipeline.Outbound, Address: "a/+/b", Want: "wildcard"},
		},
		Timeout: 15 * time.Second,
	}, func(t *testing.T) conntest.Peer {
		d := newLoopDevice(t)
		b := New(Config{Open: d.open, Backoff: pipeline.Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond}})
		return conntest.Peer{
			Builder: b,
			Topic:   fmt.Sprintf("conntest/%d", n.Add(1)),
			Outage: func(t *testing.T) func() {
				d.unplug()
				return d.plug
			},
		}
	})
}
