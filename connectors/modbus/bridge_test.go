package modbus_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// bridge is a test connector made of both sides of this package: its
// outbound links write through a modbus client (FC 16) into the
// registers of a modbus server's from link, and its inbound links serve
// that server, which turns each client write into one record. Unlike a
// polled register, a write is an event, so the whole conformance suite's
// publish-then-serve contract applies: the client's write path, the
// server's write handling and the JSON of the record are checked message
// by message.
type bridge struct{ srv, cli *modbus.Builder }

func (b bridge) Scheme() string      { return modbus.Scheme }
func (b bridge) Caps() pipeline.Caps { return b.srv.Caps() }
func (b bridge) opts(dir pipeline.Direction) *modbus.Builder {
	if dir == pipeline.Inbound {
		return b.srv
	}
	return b.cli
}

func (b bridge) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	return b.opts(dir).ParseLinkOptions(dir, addr, p)
}

func (b bridge) ValidateLinkOptions(dir pipeline.Direction, addr string, o any) error {
	return b.opts(dir).ValidateLinkOptions(dir, addr, o)
}

// Build builds the server only for an instance with inbound links (a
// publishing instance is the client alone, writing to the serving one).
func (b bridge) Build(ctx context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	cli, err := b.cli.Build(ctx, pipeline.BuildEnv{Name: env.Name, Logger: env.Logger})
	if err != nil {
		return nil, err
	}
	bc := &bridgeConn{cli: cli}
	if len(env.Inbound) > 0 {
		srv, err := b.srv.Build(ctx, env)
		if err != nil {
			return nil, err
		}
		bc.srv = srv.(*modbus.ServerConn)
	}
	return bc, nil
}

type bridgeConn struct {
	cli pipeline.Connector
	srv *modbus.ServerConn
}

func (c *bridgeConn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	return c.cli.Publish(ctx, dest, opts, env)
}

func (c *bridgeConn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	return c.srv.Serve(ctx, subs, d)
}

func (c *bridgeConn) Ready() error {
	if c.srv != nil {
		if err := c.srv.Ready(); err != nil {
			return err
		}
	}
	return c.cli.(pipeline.Readiness).Ready()
}

func (c *bridgeConn) Close(ctx context.Context) error {
	err := c.cli.Close(ctx)
	if c.srv != nil {
		err = errors.Join(err, c.srv.Close(ctx))
	}
	return err
}

// TestConformanceClientToServer runs the whole suite over the bridge:
// every message is one FC 16 write of 11 registers (a uint32 and a
// 9-register string holding the suite's non-ASCII, quoted text) that
// the server dispatches as one record.
func TestConformanceClientToServer(t *testing.T) {
	fields := pipeline.Params{"field.seq": "holding 0 uint32", "field.text": "holding 2 string 9"}
	conntest.Run(t, conntest.Features{
		NoKey: noKey, NoHeaders: noHeaders, NoAck: "a client write is acknowledged by the server's answer, not by the pipeline's ack",
		NoRedelivery: "nothing to redeliver: a write the pipeline cannot take is answered with exception 6 and the client's publish fails (retried by the runner)",
		NoOutage:     "both ends run in the test process; ReadinessDuringOutage runs in TestConformanceSource against pymodbus killed and restarted",
		NotFinite:    notFinite,
		BadLinks:     badLinks[1:3],
		Timeout:      20 * time.Second,
	}, func(t *testing.T) conntest.Peer {
		addr := "modbus://127.0.0.1:" + strconv.Itoa(freePort(t))
		return conntest.Peer{
			Builder: bridge{
				srv: builder(t, addr, pipeline.Params{"mode": "server"}),
				cli: builder(t, addr, pipeline.Params{"timeout": "300ms", "reconnect_min": "5ms", "reconnect_max": "50ms"}),
			},
			Topic:     "panel-" + strconv.Itoa(int(nPeer.Add(1))),
			InParams:  fields,
			OutParams: fields,
		}
	})
}
