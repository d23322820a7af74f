package opcua

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Defaults of the link settings.
const (
	DefaultPublishingInterval = 100 * time.Millisecond
	DefaultQueueSize          = 10
	DefaultMaxValue           = 1 << 20
)

// In are the options of an inbound link (one subscription with one
// monitored item).
type In struct {
	// PublishingInterval is the subscription's publishing interval
	// (default 100ms); SamplingInterval the item's (0: as fast as the
	// server can, event-driven on servers that support it).
	PublishingInterval, SamplingInterval time.Duration
	// QueueSize is the item's queue on the server (default 10; the
	// oldest change is discarded when it overflows).
	QueueSize uint32
	// Deadband, when > 0, filters changes smaller than it: absolute
	// (DeadbandPercent false) or in percent of the EU range.
	Deadband        float64
	DeadbandPercent bool
	// ValueOnly makes the record the value alone (a String as its text,
	// a ByteString as its bytes, anything else as JSON) instead of the
	// JSON envelope.
	ValueOnly bool
	// DispatchBad dispatches data changes with a Bad status instead of
	// dead-lettering them.
	DispatchBad bool
	// SkipInitial drops the first data change of every session: the
	// node's current value, which the server sends when the item is
	// created (again after each reconnect).
	SkipInitial bool
	// MaxValue is the largest String/ByteString value dispatched (default
	// 1 MiB); a larger one is dead-lettered.
	MaxValue int64
}

// Out are the options of an outbound link.
type Out struct {
	// Type forces the data type written (a ua type name: Double, Int32,
	// String, ...) instead of reading the node's DataType attribute.
	Type string
	// Method, when set, calls this method node (on Object) with the
	// record's value as input arguments (a JSON array: one argument per
	// element) instead of writing the node's Value.
	Method string
}

func (o *In) defaults() {
	if o.PublishingInterval <= 0 {
		o.PublishingInterval = DefaultPublishingInterval
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxValue <= 0 {
		o.MaxValue = DefaultMaxValue
	}
}

// checkAddress checks a link address: a node id or a browse path.
func checkAddress(addr string) error {
	if addr == "" {
		return errors.New("opcua link needs a node id (ns=2;s=Machine/Temp) or a browse path (/2:Machine/2:Temp)")
	}
	if strings.HasPrefix(addr, "/") {
		_, err := parseBrowsePath(addr)
		return err
	}
	if k, _, _ := strings.Cut(addr, "="); !slices.Contains([]string{"ns", "nsu", "i", "s", "g", "b"}, k) {
		return fmt.Errorf("opcua link %q: not a node id (want ns=2;s=Name, ns=2;i=42, i=85 ...) or a browse path (/2:Machine/2:Temp)", addr)
	}
	if _, err := ua.ParseNodeID(addr); err != nil {
		return fmt.Errorf("opcua link %q: not a node id (want ns=2;s=Name, ns=2;i=42, i=85 ...): %v", addr, err)
	}
	return nil
}

// parseBrowsePath reads "/2:Machine/2:Temp" (a name without "N:" is in
// namespace 0).
func parseBrowsePath(p string) ([]*ua.QualifiedName, error) {
	var out []*ua.QualifiedName
	for _, seg := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if seg == "" {
			return nil, fmt.Errorf("opcua browse path %q: empty element", p)
		}
		qn := &ua.QualifiedName{Name: seg}
		if ns, name, ok := strings.Cut(seg, ":"); ok {
			n, err := strconv.ParseUint(ns, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("opcua browse path %q: element %q: namespace %q is not a number", p, seg, ns)
			}
			qn = &ua.QualifiedName{NamespaceIndex: uint16(n), Name: name}
		}
		out = append(out, qn)
	}
	return out, nil
}

// parseLink reads a link's settings for its direction.
func parseLink(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	var errs []error
	if err := checkAddress(addr); err != nil {
		errs = append(errs, err)
	}
	s := kit.ReadLink(dir, p)
	var opts any
	switch dir {
	case pipeline.Inbound:
		in := In{
			PublishingInterval: s.DurationIn("publishing_interval", DefaultPublishingInterval, time.Millisecond, time.Hour),
			SamplingInterval:   s.DurationIn("sampling_interval", 0, 0, time.Hour),
			QueueSize:          uint32(s.Int("queue_size", DefaultQueueSize, 1, 1<<20)),
			Deadband:           s.Float("deadband", 0, 0, 1e300),
			DeadbandPercent:    s.Enum("deadband_type", "absolute", "absolute", "percent") == "percent",
			ValueOnly:          s.Enum("payload", "envelope", "envelope", "value") == "value",
			DispatchBad:        s.Enum("bad_status", "reject", "reject", "dispatch") == "dispatch",
			SkipInitial:        s.Enum("initial_value", "dispatch", "dispatch", "skip") == "skip",
			MaxValue:           s.SizeIn("max_value", DefaultMaxValue, 1, 1<<30),
		}
		if in.DeadbandPercent && in.Deadband > 100 {
			s.Errorf("deadband", "a percent deadband is at most 100")
		}
		opts = in
	default:
		out := Out{Type: s.String("type", ""), Method: s.String("method", "")}
		if out.Type != "" {
			if _, ok := typeByName(out.Type); !ok {
				s.Errorf("type", "unknown OPC UA type (want one of %s)", strings.Join(typeNames(), ", "))
			}
		}
		if out.Method != "" {
			if _, err := ua.ParseNodeID(out.Method); err != nil {
				s.Errorf("method", "not a node id: %v", err)
			}
		}
		opts = out
	}
	if err := errors.Join(append(errs, s.Err())...); err != nil {
		return nil, err
	}
	return opts, nil
}

// validate checks options given in Go for the link's direction.
func validate(dir pipeline.Direction, addr string, opts any) error {
	if err := checkAddress(addr); err != nil {
		return err
	}
	switch o := opts.(type) {
	case nil:
		return nil
	case In, *In:
		if dir == pipeline.Inbound {
			return nil
		}
	case Out:
		if dir == pipeline.Outbound {
			return checkOut(o)
		}
	case *Out:
		if dir == pipeline.Outbound && o != nil {
			return checkOut(*o)
		}
	}
	want := "opcua.Out"
	if dir == pipeline.Inbound {
		want = "opcua.In"
	}
	return fmt.Errorf("opcua %s link %q: options are %T, want %s", dir, addr, opts, want)
}

func checkOut(o Out) error {
	if o.Type != "" {
		if _, ok := typeByName(o.Type); !ok {
			return fmt.Errorf("opcua: type %q: unknown OPC UA type", o.Type)
		}
	}
	if o.Method != "" {
		if _, err := ua.ParseNodeID(o.Method); err != nil {
			return fmt.Errorf("opcua: method %q: %w", o.Method, err)
		}
	}
	return nil
}

func optsIn(o any) In {
	var in In
	switch v := o.(type) {
	case In:
		in = v
	case *In:
		if v != nil {
			in = *v
		}
	}
	in.defaults()
	return in
}

func optsOut(o any) Out {
	switch v := o.(type) {
	case Out:
		return v
	case *Out:
		if v != nil {
			return *v
		}
	}
	return Out{}
}
