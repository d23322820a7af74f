package mqtt

import (
	"context"
	"errors"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Serve implements pipeline.Source.
func (c *Conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	c.srvMu.Lock()
	if c.disp != nil {
		c.srvMu.Unlock()
		return errors.New("mqtt: Serve called twice")
	}
	if len(subs) > 0 {
		c.inbound = subs
	}
	c.plan = makePlan(c.inbound)
	c.disp, c.serveCtx = d, ctx
	close(c.serving)
	c.srvMu.Unlock()
	if c.in != nil && c.in.up.Load() {
		go c.subscribe(c.in, c.in.gen.Load())
	}
	<-ctx.Done()
	return nil
}

// onPublish is paho's handler for inbound PUBLISH packets. It runs on
// paho's single router goroutine; blocking here (Dispatch applying
// backpressure) stops reading from the broker, whose flow control (receive
// maximum) then holds further QoS>0 messages.
func (c *Conn) onPublish(pr paho.PublishReceived) (bool, error) {
	select {
	case <-c.serving:
	case <-c.ctx.Done():
		return false, nil
	}
	ctx := c.serveCtx
	if ctx.Err() != nil {
		// The source is stopping: leave the message unacknowledged; the
		// broker redelivers it to the resumed session.
		return false, nil
	}
	p := pr.Packet
	if p.Properties != nil && p.Properties.SubscriptionIdentifier != nil && c.duplicate(*p.Properties.SubscriptionIdentifier, p.Topic) {
		if p.QoS > 0 && c.manualAck {
			_ = pr.Client.Ack(p)
		}
		return true, nil
	}
	env := pipeline.Envelope{Payload: p.Payload, Topic: p.Topic, Partition: -1}
	if pp := p.Properties; pp != nil {
		env.Headers = inHeaders(pp)
	}
	if p.QoS > 0 && c.manualAck {
		cli := pr.Client
		env.Ack = pipeline.NewAck(func(err error) { c.settle(cli, p, err) })
	}
	c.received.Add(1)
	_ = c.disp.Dispatch(ctx, &env) // consumes the ack share; a ctx error is the shutdown
	return true, nil
}

// inHeaders maps an inbound message's user properties to envelope
// headers, in order, followed by its content type as the content-type
// header. It allocates once when there is anything to map, else not at all.
func inHeaders(pp *paho.PublishProperties) pipeline.Headers {
	extra := 0
	if pp.ContentType != "" {
		extra = 1
	}
	hs := kit.FromPairs(pp.User, extra, userPair)
	if extra > 0 {
		hs = append(hs, pipeline.Header{Key: kit.ContentTypeHeader, Value: pp.ContentType})
	}
	return hs
}

func userPair(u paho.UserProperty) (key, value string) { return u.Key, u.Value }

// settle acknowledges an inbound message once every sink finished with it.
//
// paho sends acknowledgements strictly in the order the messages arrived
// (as MQTT requires): an ack is held until every earlier message was acked
// too. A rejected message is never acknowledged, which also holds back the
// acks of the messages after it. The broker redelivers unacknowledged
// messages only when the session is resumed on a new connection, so a
// rejection (outside shutdown) makes the connector drop the connection
// after a backoff delay; autopaho reconnects with the same session and the
// broker resends the rejected message and every later one whose ack had
// not been sent yet (duplicates are possible: at-least-once).
func (c *Conn) settle(cli *paho.Client, p *paho.Publish, err error) {
	if err == nil {
		// ErrPacketNotFound means the connection that received the message
		// is gone; the broker will redeliver it.
		if cli.Ack(p) == nil {
			c.acked.Add(1)
		}
		if c.nacked.Load() {
			c.nackMu.Lock()
			c.nackBO.Reset()
			c.nackMu.Unlock()
			c.nacked.Store(false)
		}
		return
	}
	n := c.nacks.Add(1)
	if c.ctx.Err() != nil || (c.serveCtx != nil && c.serveCtx.Err() != nil) {
		return // shutting down: the session keeps the message for the next run
	}
	c.nacked.Store(true)
	c.nackMu.Lock()
	defer c.nackMu.Unlock()
	if c.nackTimer != nil {
		return // a reconnect is already scheduled
	}
	delay := c.nackBO.Next()
	if n <= 10 || n%1000 == 0 {
		c.log.Warn("mqtt message rejected by the pipeline; reconnecting for redelivery",
			"topic", p.Topic, "error", err, "after", delay, "rejected", n)
	}
	c.nackTimer = time.AfterFunc(delay, func() {
		c.nackMu.Lock()
		c.nackTimer = nil
		c.nackMu.Unlock()
		if c.ctx.Err() == nil {
			c.dropConnection()
		}
	})
}
