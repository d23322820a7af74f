package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// EmbeddedBroker is an in-process MQTT 5 broker (mochi-mqtt) listening on
// a TCP address. It accepts every client (no authentication): bind it to
// loopback, as the default address does.
type EmbeddedBroker struct {
	srv  *mochi.Server
	addr string
	once sync.Once
}

// StartEmbedded starts a broker on addr ("127.0.0.1:0" picks a free
// loopback port) and returns once it accepts connections. log receives the
// broker's errors (nil: slog.Default()); its warnings are mostly clients
// closing their connections and are not logged.
func StartEmbedded(addr string, log *slog.Logger) (*EmbeddedBroker, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if log == nil {
		log = slog.Default()
	}
	caps := mochi.NewDefaultServerCapabilities()
	// mochi silently drops QoS 0 messages for a subscriber with more than
	// this many pending writes; the default (8192) loses bursts.
	caps.MaximumClientWritesPending = 1 << 20
	srv := mochi.New(&mochi.Options{
		Capabilities: caps,
		Logger:       slog.New(minLevel{h: log.With("component", "embedded-broker").Handler(), min: slog.LevelError}),
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	b := &EmbeddedBroker{srv: srv, addr: tcp.Address()}
	if _, _, err := net.SplitHostPort(b.addr); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("mqtt: embedded broker: address %q: %w", b.addr, err)
	}
	log.Info("embedded MQTT broker listening", "addr", b.addr)
	return b, nil
}

// Addr is the broker's "host:port".
func (b *EmbeddedBroker) Addr() string { return b.addr }

// URL is "mqtt://host:port".
func (b *EmbeddedBroker) URL() string { return "mqtt://" + b.addr }

// Close disconnects every client and stops the broker.
func (b *EmbeddedBroker) Close() error {
	var err error
	b.once.Do(func() { err = b.srv.Close() })
	return err
}

// minLevel filters a slog handler to records at or above min.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(a), min: m.min}
}
func (m minLevel) WithGroup(n string) slog.Handler { return minLevel{h: m.h.WithGroup(n), min: m.min} }
