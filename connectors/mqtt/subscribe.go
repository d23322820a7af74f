package mqtt

import (
	"context"
	"fmt"
	"strings"

	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
)

// planned is one subscription sent to the broker: links with the same
// filter share it (at the highest QoS they ask for). Its id is sent as the
// MQTT 5 subscription identifier.
type planned struct {
	id     int
	filter string // as sent, with any $share prefix
	match  string // the filter topics are matched against
	shared bool
	opts   In
}

// makePlan merges the inbound links into the subscriptions to send.
func makePlan(subs []pipeline.Subscription) []planned {
	var plan []planned
	idx := map[string]int{}
	for _, s := range subs {
		o := kit.LinkOptions(s.Options, In{QoS: 1})
		f := subscribeFilter(s.Filter, o)
		if i, ok := idx[f]; ok {
			plan[i].opts.QoS = max(plan[i].opts.QoS, o.QoS)
			plan[i].opts.NoLocal = plan[i].opts.NoLocal && o.NoLocal
			plan[i].opts.RetainAsPublished = plan[i].opts.RetainAsPublished || o.RetainAsPublished
			continue
		}
		m, group := topic.Filter(f)
		idx[f] = len(plan)
		plan = append(plan, planned{id: len(plan) + 1, filter: f, match: m, shared: group != "", opts: o})
	}
	return plan
}

// duplicate reports whether a message that arrived through subscription
// sid is a second copy: brokers such as mosquitto deliver one copy per
// matching subscription, while the router already hands one message to
// every matching record. Among the plain (not shared) subscriptions
// matching the topic, only the copy of the one with the highest QoS
// (lowest id on ties) is dispatched. Copies through shared subscriptions
// are always dispatched (the other copy may have gone to another member).
func (c *Conn) duplicate(sid int, topicName string) bool {
	if len(c.plan) < 2 || sid < 1 || sid > len(c.plan) {
		return false
	}
	me := c.plan[sid-1]
	if me.shared {
		return false
	}
	for _, o := range c.plan {
		if o.id == sid || o.shared || !topic.Match(o.match, topicName) {
			continue
		}
		if o.opts.QoS > me.opts.QoS || (o.opts.QoS == me.opts.QoS && o.id < me.id) {
			return true
		}
	}
	return false
}

// subscribe sends one SUBSCRIBE per planned subscription (after every
// connect).
func (c *Conn) subscribe(cl *client, gen uint64) {
	cm := cl.cm
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.ConnectTimeout)
	defer cancel()
	if cl.noSubIDs.Load() && len(c.plan) > 1 {
		c.log.Warn("mqtt broker does not support subscription identifiers: messages matching several subscriptions may be dispatched more than once")
	}
	for _, s := range c.plan {
		sub := &paho.Subscribe{
			Subscriptions: []paho.SubscribeOptions{{Topic: s.filter, QoS: s.opts.QoS, NoLocal: s.opts.NoLocal, RetainAsPublished: s.opts.RetainAsPublished}},
		}
		if !cl.noSubIDs.Load() {
			id := s.id
			sub.Properties = &paho.SubscribeProperties{SubscriptionIdentifier: &id}
		}
		sa, err := cm.Subscribe(ctx, sub)
		if err == nil && len(sa.Reasons) > 0 && sa.Reasons[0] >= 0x80 {
			err = fmt.Errorf("broker rejected the subscription (reason 0x%02x)", sa.Reasons[0])
		}
		if err != nil {
			if cl.gen.Load() != gen || c.ctx.Err() != nil {
				return // the connection went away meanwhile; the next connect resubscribes
			}
			msg := fmt.Sprintf("subscribe %s: %v", s.filter, err)
			c.subErr.Store(&msg)
			c.log.Error("mqtt subscribe failed", "filter", s.filter, "error", err)
			return
		}
		c.log.Debug("mqtt subscribed", "filter", s.filter, "qos", s.opts.QoS)
	}
	if cl.gen.Load() == gen {
		c.subErr.Store(nil)
		c.subsOK.Store(true)
	}
}

// subscribeFilter is the filter sent to the broker for a link address.
func subscribeFilter(address string, o In) string {
	if o.Share != "" && !strings.HasPrefix(address, "$share/") {
		return "$share/" + o.Share + "/" + address
	}
	return address
}
