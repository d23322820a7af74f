package pipeline

import "strings"

// Caps declares what a connector's links can do. The graph checks links
// against it at validation (a `to` on a source-only connector, a wildcard
// on a connector that does not route by topic), and tracers read it from
// HopInfo instead of switching on scheme names.
//
// A Builder declares its capabilities by implementing CapsDeclarer; one
// that does not is taken to have both directions and nothing else
// (AllDirections). A Builder that wraps another (a test probe, a
// decorator) should forward it: Caps() { return CapsOf(inner) }.
type Caps struct {
	// Inbound: the connector serves inbound links (it is a Source).
	Inbound bool
	// Outbound: the connector publishes (links in `to` lines).
	Outbound bool
	// Topics: link addresses are MQTT-style topic names; an inbound
	// address is a topic filter the router matches with the wildcards +
	// and #, and an outbound destination must not contain them. Without
	// it, an address level "+" or "#" is a mistake reported at load.
	Topics bool
	// Key: records carry a key on the wire (Kafka's message key).
	Key bool
	// Headers: headers travel on the wire (MQTT 5 user properties, Kafka
	// and HTTP headers), so trace context crosses the hop.
	Headers bool
	// Partitions: inbound records carry a partition and an offset
	// (Envelope.Partition and Offset are meaningful).
	Partitions bool
}

// AllDirections is what a Builder that declares nothing is taken to have.
var AllDirections = Caps{Inbound: true, Outbound: true}

// CapsDeclarer is optionally implemented by a Builder to declare its
// connector's capabilities (see Caps).
type CapsDeclarer interface {
	Caps() Caps
}

// CapsOf returns what b declares, or AllDirections.
func CapsOf(b Builder) Caps {
	if d, ok := b.(CapsDeclarer); ok {
		return d.Caps()
	}
	return AllDirections
}

// directionError is the message for a link on the side a connector does
// not have ("gen is a source only"), or "" when the direction is fine.
func (c Caps) directionError(dir Direction, name, scheme string) string {
	who := scheme
	if name != scheme {
		who = name + " (" + scheme + ")"
	}
	switch {
	case dir == Outbound && !c.Outbound && c.Inbound:
		return who + " is a source only: it cannot be a `to` destination"
	case dir == Inbound && !c.Inbound && c.Outbound:
		return who + " is a sink only: it cannot be a `from` source"
	case dir == Outbound && !c.Outbound, dir == Inbound && !c.Inbound:
		return who + " has no " + dir.String() + " links"
	}
	return ""
}

// wildcardLevel returns the first address level that is exactly "+" or
// "#" (an MQTT wildcard), or "".
func wildcardLevel(addr string) string {
	for _, lv := range strings.Split(addr, "/") {
		if lv == "+" || lv == "#" {
			return lv
		}
	}
	return ""
}
