package devgen

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	devexpr "github.com/aimdb-dev/aimdb-flow/device/expr"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// MaxRing is the largest ring buffer of a device record: a ring of N holds
// N+2 messages of flow.MaxMsg (192) bytes, allocated at start-up, so ring
// 32 is 6.5 KB of RAM.
const MaxRing = 32

// Device is a .flow graph inside the device subset, as Generate renders
// it. Every string is resolved (${ENV} expanded at build time).
type Device struct {
	// Files are the .flow files it was read from.
	Files []string
	// MQTT is the device's MQTT connector (nil when it has none).
	MQTT *MQTT
	// Serial names the serial:// connectors (framed uplinks).
	Serial []string
	// Sensors are the sensor:// sources, bound to the driver.
	Sensors   []*Sensor
	Records   []*Record
	Pipelines []*Pipeline
}

// MQTT is an mqtt:// connector.
type MQTT struct {
	Name string
	// Addr is the endpoint's host:port, for the record: the transport is
	// the board's (a UART, a modem socket, stdin/stdout on a host).
	Addr                         string
	ClientID, Username, Password string
	KeepAlive                    time.Duration
	CleanStart                   bool
	Pos                          pipeline.Pos
}

// Record is a record with a fixed-capacity buffer.
type Record struct {
	Name string
	// Ring is the ring buffer's size; 0 means a latest buffer.
	Ring int
	// Subs are the MQTT subscriptions that write it.
	Subs []Sub
	Pos  pipeline.Pos
}

// Sub is an MQTT subscription feeding a record.
type Sub struct {
	Topic string
	QoS   int
	Codec string // json or binflat: how payloads are decoded
	Pos   pipeline.Pos
}

// Sensor is a sensor://NAME source.
type Sensor struct {
	// Name is the link's address: what the driver's Read is asked for,
	// and the topic of the readings (as the gen connector gives them on
	// the server).
	Name   string
	Record string
	// Every is the reading period (from the link's rate; 0: every turn
	// of the main loop).
	Every time.Duration
	Pos   pipeline.Pos
}

// Pipeline is a device pipeline: filters and maps, one output.
type Pipeline struct {
	Name, From string
	Stages     []Stage
	// Into is the output record, or "" when Out is set.
	Into string
	Out  *Output
	Pos  pipeline.Pos
}

// Stage is a filter or a map.
type Stage struct {
	Map bool
	Src string
	Pos pipeline.Pos
}

// Output is a pipeline's (or a record's) outbound link.
type Output struct {
	// Kind is "mqtt" (a device/mqtt Sink) or "serial" (a framed writer).
	Kind   string
	Topic  string
	Codec  string // json or binflat
	QoS    int
	Retain bool
	Pos    pipeline.Pos
}

// Options configure Check.
type Options struct {
	// Getenv looks up ${NAME} (nil: nothing is set, defaults apply).
	Getenv func(string) (string, bool)
	// Errors, when set, is the list problems are added to: pass the one
	// dsl.Parse filled, so that its Pretty shows each source line.
	Errors *dsl.ErrorList
}

type conn struct {
	scheme string
	pos    pipeline.Pos
	ok     bool // inside the subset
}

type checker struct {
	opts  Options
	errs  *dsl.ErrorList
	dev   *Device
	conns map[string]*conn
}

// Check reads parsed files (valid ones: dsl.Load them first) and returns
// the device graph, or a *dsl.ErrorList with every construct outside the
// device subset at its position.
func Check(opts Options, files ...*dsl.File) (*Device, error) {
	if opts.Getenv == nil {
		opts.Getenv = func(string) (string, bool) { return "", false }
	}
	errs := opts.Errors
	if errs == nil {
		errs = &dsl.ErrorList{}
	}
	c := &checker{opts: opts, errs: errs, dev: &Device{}, conns: map[string]*conn{}}
	for _, f := range files {
		c.dev.Files = append(c.dev.Files, f.Name)
		for _, d := range f.Decls {
			if d.Kw.Text == "connector" {
				c.connector(d)
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d.Kw.Text {
			case "record":
				c.record(d)
			case "pipeline":
				c.pipeline(d)
			case "deadletter":
				c.errorf(d.Kw.Pos, "deadletter is not in the device build (a device counts failed records in its pipelines' Stats().Errors)")
			}
		}
	}
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	return c.dev, nil
}

func (c *checker) errorf(p pipeline.Pos, format string, args ...any) {
	c.errs.Add(p, format, args...)
}

// value returns a token's value: strings unquoted and ${ENV}-expanded,
// expressions without their backticks, anything else as written.
func (c *checker) value(t dsl.Token) string {
	raw := t.Text
	switch t.Kind {
	case dsl.String:
		s, err := strconv.Unquote(raw)
		if err != nil {
			return raw
		}
		raw = s
	case dsl.Expr:
		return strings.TrimSuffix(strings.TrimPrefix(raw, "`"), "`")
	case dsl.Var:
	default:
		return raw
	}
	v, err := dsl.Expand(raw, c.opts.Getenv)
	if err != nil {
		c.errorf(t.Pos, "%v", err)
	}
	return v
}

// setting is one `name value` pair of a statement.
type setting struct {
	name string
	pos  pipeline.Pos
	val  dsl.Token
	// cel is set for `key cel `...``.
	cel bool
}

// settings reads the name/value pairs in args.
func settings(args []dsl.Token) []setting {
	var out []setting
	for i := 0; i+1 < len(args); i += 2 {
		s := setting{name: args[i].Text, pos: args[i].Pos, val: args[i+1]}
		if s.val.Kind == dsl.Ident && s.val.Text == "cel" && i+2 < len(args) {
			s.cel, s.val = true, args[i+2]
			i++
		}
		out = append(out, s)
	}
	return out
}

var mqttSettings = []string{"client_id", "username", "password", "keepalive", "clean_start"}

func (c *checker) connector(d *dsl.Stmt) {
	if len(d.Args) < 2 {
		return
	}
	name := d.Args[0].Text
	url := c.value(d.Args[1])
	scheme, rest, _ := strings.Cut(url, "://")
	cn := &conn{scheme: scheme, pos: d.Kw.Pos}
	c.conns[name] = cn
	switch scheme {
	case "mqtt":
		if c.dev.MQTT != nil {
			c.errorf(d.Kw.Pos, "connector %s: a device build has one MQTT connector (%s, at %s)", name, c.dev.MQTT.Name, c.dev.MQTT.Pos)
			return
		}
		m := &MQTT{Name: name, Addr: hostPort(rest), KeepAlive: 60 * time.Second, Pos: d.Kw.Pos}
		cn.ok = true // its links are in the subset; a bad setting is reported once, here
		for _, s := range settings(d.Args[2:]) {
			v := c.value(s.val)
			switch s.name {
			case "client_id":
				m.ClientID = v
			case "username":
				m.Username = v
			case "password":
				m.Password = v
			case "keepalive":
				ka, err := parseSeconds(v)
				if err != nil || ka > math.MaxUint16*time.Second {
					c.errorf(s.pos, "connector %s: keepalive %q: want a duration of at most 65535s", name, v)
					continue
				}
				m.KeepAlive = ka
			case "clean_start":
				b, err := strconv.ParseBool(v)
				if err != nil {
					c.errorf(s.pos, "connector %s: clean_start %q: want true or false", name, v)
					continue
				}
				m.CleanStart = b
			default:
				c.errorf(s.pos, "connector %s: setting %s is not in the device build (device/mqtt takes %s)", name, s.name, strings.Join(mqttSettings, ", "))
			}
		}
		if m.ClientID == "" {
			c.errorf(d.Kw.Pos, "connector %s: a device build needs a client_id (device/mqtt does not take one assigned by the broker)", name)
		}
		c.dev.MQTT = m
	case "sensor":
		cn.ok = true
		for _, s := range settings(d.Args[2:]) {
			c.errorf(s.pos, "connector %s: sensor:// takes no settings (rate belongs to the link)", name)
		}
	case "serial":
		// The device end of the uplink: its settings (baud, max_frame)
		// describe the host's end, the board configures its UART.
		cn.ok = true
		c.dev.Serial = append(c.dev.Serial, name)
	case "mqtts":
		c.errorf(d.Args[1].Pos, "connector %s: mqtts:// (TLS) is not in the device build: the board's network driver provides TLS if it has any; write mqtt://", name)
	case "gen":
		c.errorf(d.Args[1].Pos, "connector %s: gen:// is not in the device build; for a sensor write connector %s \"sensor://\" (the server simulates it with the gen connector, a device build reads it from the --driver package)", name, name)
	default:
		c.errorf(d.Args[1].Pos, "connector %s: %s:// is not in the device build (device connectors: mqtt://, sensor://, serial://)", name, scheme)
	}
}

// hostPort returns the host:port of an endpoint's remainder
// ("user:pw@host:1883/x" -> "host:1883").
func hostPort(rest string) string {
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return rest
}

func parseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 {
			return 0, errors.New("negative")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	return d, err
}

// link resolves a link string to its connector; ok is false (and the
// problem reported) when the connector is outside the subset.
func (c *checker) link(kw string, t dsl.Token) (raw, connName, addr string, cn *conn, ok bool) {
	raw = c.value(t)
	l, err := pipeline.ParseLink(raw)
	if err != nil {
		return raw, "", "", nil, false // reported by dsl.Load
	}
	cn = c.conns[l.Connector]
	if cn == nil {
		return raw, l.Connector, l.Address, nil, false // reported by dsl.Load
	}
	if !cn.ok {
		c.errorf(t.Pos, "%s %q: connector %s (%s://, at %s) is not in the device build", kw, raw, l.Connector, cn.scheme, cn.pos)
		return raw, l.Connector, l.Address, cn, false
	}
	return raw, l.Connector, l.Address, cn, true
}

func (c *checker) record(d *dsl.Stmt) {
	if len(d.Args) == 0 || d.Block == nil {
		return
	}
	r := &Record{Name: d.Args[0].Text, Pos: d.Kw.Pos}
	sawBuffer := false
	for _, st := range d.Block.Stmts {
		switch st.Kw.Text {
		case "buffer":
			sawBuffer = true
			c.buffer(r, st)
		case "from":
			if len(st.Args) > 0 {
				c.recordSource(r, st)
			}
		case "to":
			if len(st.Args) == 0 {
				continue
			}
			// A record's publish link: a pipeline without stages.
			if out, ok := c.output(st); ok {
				c.dev.Pipelines = append(c.dev.Pipelines, &Pipeline{Name: r.Name + " to " + out.Topic, From: r.Name, Out: out, Pos: st.Kw.Pos})
			}
		case "schema":
			// Types for the server's checks; a device record is flat.
		}
	}
	if !sawBuffer {
		c.errorf(d.Kw.Pos, "record %s: a device build needs a fixed-capacity buffer: add buffer ring N (N <= %d) or buffer latest (the server default, queue 1024, is not in the device subset)", r.Name, MaxRing)
	}
	c.dev.Records = append(c.dev.Records, r)
}

func (c *checker) buffer(r *Record, st *dsl.Stmt) {
	if len(st.Args) == 0 {
		return
	}
	kind := st.Args[0]
	switch kind.Text {
	case "latest":
	case "ring":
		if len(st.Args) < 2 {
			return
		}
		n, err := strconv.Atoi(c.value(st.Args[1]))
		if err != nil || n <= 0 {
			return // reported by dsl.Load
		}
		if n > MaxRing {
			c.errorf(st.Args[1].Pos, "record %s: buffer ring %d is too large for a device: a ring of N holds N+2 messages of 192 bytes in RAM (at most ring %d)", r.Name, n, MaxRing)
			return
		}
		r.Ring = n
	case "queue":
		c.errorf(kind.Pos, "record %s: buffer queue is not in the device build: a full queue would block the device's main loop (use ring N or latest)", r.Name)
	case "mailbox":
		c.errorf(kind.Pos, "record %s: buffer mailbox is not in the device build (use latest: one slot, readers see the current value)", r.Name)
	default:
		c.errorf(kind.Pos, "record %s: buffer %s is not in the device build (use ring N or latest)", r.Name, kind.Text)
	}
}

func (c *checker) recordSource(r *Record, st *dsl.Stmt) {
	raw, _, addr, cn, ok := c.link("from", st.Args[0])
	if !ok {
		return
	}
	switch cn.scheme {
	case "sensor":
		s := &Sensor{Name: addr, Record: r.Name, Pos: st.Args[0].Pos}
		if addr == "" {
			c.errorf(st.Args[0].Pos, "from %q: name the sensor: from \"%s://NAME\" (the driver's Read is asked for NAME)", raw, strings.TrimSuffix(raw, "://"))
			return
		}
		for _, set := range settings(st.Args[1:]) {
			switch set.name {
			case "rate":
				v := c.value(set.val)
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 {
					return // reported by dsl.Load
				}
				if f > 0 {
					s.Every = time.Duration(float64(time.Second) / f)
				}
			case "decode", "template", "count", "seed":
				// The simulation's (the gen connector on the server): the
				// driver fills the record's fields itself.
			default:
				c.errorf(set.pos, "from %q: setting %s is not in the device build (a sensor link takes rate)", raw, set.name)
			}
		}
		c.dev.Sensors = append(c.dev.Sensors, s)
	case "mqtt":
		sub := Sub{Topic: addr, QoS: 1, Codec: "json", Pos: st.Args[0].Pos}
		for _, set := range settings(st.Args[1:]) {
			v := c.value(set.val)
			switch set.name {
			case "decode":
				if v != "json" && v != "binflat" {
					c.errorf(set.val.Pos, "from %q: decode %s is not in the device build (json or binflat)", raw, v)
				}
				sub.Codec = v
			case "qos":
				q, err := strconv.Atoi(v)
				if err != nil || q < 0 || q > 1 {
					c.errorf(set.val.Pos, "from %q: qos %s is not in the device build (device/mqtt subscribes at qos 0 or 1)", raw, v)
					continue
				}
				sub.QoS = q
			default:
				c.errorf(set.pos, "from %q: setting %s is not in the device build (an MQTT source takes decode and qos)", raw, set.name)
			}
		}
		r.Subs = append(r.Subs, sub)
	case "serial":
		c.errorf(st.Args[0].Pos, "from %q: a serial source is the edge host's side of the uplink: a device build writes frames (to \"%s\" in a pipeline) and reads none", raw, raw)
	}
}

// output checks an outbound link statement (`to LINK settings...`).
func (c *checker) output(st *dsl.Stmt) (*Output, bool) {
	raw, _, addr, cn, ok := c.link("to", st.Args[0])
	if !ok {
		return nil, false
	}
	out := &Output{Kind: cn.scheme, Topic: addr, Codec: "json", Pos: st.Args[0].Pos}
	if cn.scheme == "sensor" {
		c.errorf(st.Args[0].Pos, "to %q: sensor:// is a source only", raw)
		return nil, false
	}
	if strings.ContainsAny(addr, "{}") {
		c.errorf(st.Args[0].Pos, "to %q: a templated destination is not in the device build: the topic is fixed at build time", raw)
		ok = false
	} else if cn.scheme == "mqtt" && strings.ContainsAny(addr, "+#") {
		c.errorf(st.Args[0].Pos, "to %q: a topic to publish to has no wildcards", raw)
		ok = false
	}
	for _, set := range settings(st.Args[1:]) {
		v := c.value(set.val)
		switch {
		case set.name == "encode":
			if v != "json" && v != "binflat" {
				c.errorf(set.val.Pos, "to %q: encode %s is not in the device build (json or binflat)", raw, v)
				ok = false
			}
			out.Codec = v
		case set.name == "key":
			c.errorf(set.pos, "to %q: key is not in the device build (device links carry no message key)", raw)
			ok = false
		case set.name == "qos" && cn.scheme == "mqtt":
			q, err := strconv.Atoi(v)
			if err != nil || q < 0 || q > 1 {
				c.errorf(set.val.Pos, "to %q: qos %s is not in the device build (device/mqtt publishes at qos 0 or 1)", raw, v)
				ok = false
				continue
			}
			out.QoS = q
		case set.name == "retain" && cn.scheme == "mqtt":
			b, err := strconv.ParseBool(v)
			if err != nil {
				c.errorf(set.val.Pos, "to %q: retain %q: want true or false", raw, v)
				ok = false
				continue
			}
			out.Retain = b
		default:
			takes := "encode"
			if cn.scheme == "mqtt" {
				takes = "encode, qos and retain"
			}
			c.errorf(set.pos, "to %q: setting %s is not in the device build (this link takes %s)", raw, set.name, takes)
			ok = false
		}
	}
	return out, ok
}

// notInSubset gives the reason for each pipeline statement outside the
// device subset.
var notInSubset = map[string]string{
	"window":     "windows are not in the device build (they need timers and per-window state)",
	"batch":      "batch is not in the device build (records leave a device one by one)",
	"split":      "split is not in the device build (a device record is flat: no lists)",
	"set":        "set is not in the device build (write the fields in a map literal: map `{\"field\": expr, ...}`)",
	"dedupe":     "dedupe is not in the device build (it keeps a set of recent keys)",
	"throttle":   "throttle is not in the device build (a sensor's rate sets the pace)",
	"log":        "log is not in the device build (a device has no logger)",
	"parallel":   "parallel is not in the device build (device pipelines run in the main loop)",
	"decode":     "decode stages are not in the device build (records hold decoded flat values)",
	"encode":     "encode stages are not in the device build (the output link encodes)",
	"deadletter": "deadletter is not in the device build (a device counts failed records in its pipelines' Stats().Errors)",
}

func (c *checker) pipeline(d *dsl.Stmt) {
	if len(d.Args) == 0 || d.Block == nil {
		return
	}
	p := &Pipeline{Name: d.Args[0].Text, Pos: d.Kw.Pos}
	outputs := 0
	var first pipeline.Pos
	out := func(pos pipeline.Pos) bool {
		outputs++
		if outputs == 1 {
			first = pos
			return true
		}
		c.errorf(pos, "pipeline %s: a device pipeline has one output, into RECORD or one to (the first is at %s)", p.Name, first)
		return false
	}
	for _, st := range d.Block.Stmts {
		switch kw := st.Kw.Text; kw {
		case "from":
			if len(st.Args) > 0 {
				p.From = st.Args[0].Text
			}
		case "into":
			if len(st.Args) > 0 && out(st.Kw.Pos) {
				p.Into = st.Args[0].Text
			}
		case "to":
			if len(st.Args) == 0 {
				continue
			}
			o, ok := c.output(st)
			if out(st.Kw.Pos) && ok {
				p.Out = o
			}
		case "filter", "map":
			if s, ok := c.expr(kw, st); ok {
				p.Stages = append(p.Stages, s)
			}
		default:
			if why, known := notInSubset[kw]; known {
				c.errorf(st.Kw.Pos, "%s", why)
			}
		}
	}
	c.dev.Pipelines = append(c.dev.Pipelines, p)
}

// expr checks a filter or map expression with the device/expr parser and
// places its error at the expression.
func (c *checker) expr(kw string, st *dsl.Stmt) (Stage, bool) {
	if len(st.Args) == 0 {
		return Stage{}, false
	}
	t := st.Args[0]
	if t.Kind == dsl.Ident && t.Text == "cel" {
		c.errorf(t.Pos, "%s: CEL is not in the device build (write the expression in expr-lang: device/expr evaluates its common subset)", kw)
		return Stage{}, false
	}
	if t.Kind != dsl.Expr {
		return Stage{}, false
	}
	raw := c.value(t)
	src, err := dsl.Expand(raw, c.opts.Getenv)
	if err != nil {
		return Stage{}, false // reported by dsl.Load
	}
	p, err := devexpr.Compile(src)
	if err != nil {
		pos, msg := t.Pos, err.Error()
		var e *devexpr.Error
		if errors.As(err, &e) {
			msg = e.Msg
			if src == raw { // offsets are exact without ${ENV} in the text
				pos = offsetPos(t.Pos, raw, e.Offset)
			}
		}
		c.errorf(pos, "%s: device/expr: %s", kw, msg)
		return Stage{}, false
	}
	if kw == "map" && !p.IsMap() {
		c.errorf(t.Pos, "map: a device map is a map literal `{\"field\": expr, ...}`")
		return Stage{}, false
	}
	return Stage{Map: kw == "map", Src: src, Pos: t.Pos}, true
}

// offsetPos is the file position of byte off of an expression written at
// pos (after its backtick).
func offsetPos(pos pipeline.Pos, raw string, off int) pipeline.Pos {
	before := raw[:min(max(off, 0), len(raw))]
	if nl := strings.LastIndexByte(before, '\n'); nl >= 0 {
		pos.Line += strings.Count(before, "\n")
		pos.Col = utf8.RuneCountInString(before[nl+1:]) + 1
		return pos
	}
	pos.Col += 1 + utf8.RuneCountInString(before)
	return pos
}

// String renders a summary of the device graph (for -v output and tests).
func (d *Device) String() string {
	var b strings.Builder
	if d.MQTT != nil {
		fmt.Fprintf(&b, "mqtt %s client_id %s\n", d.MQTT.Addr, d.MQTT.ClientID)
	}
	for _, s := range d.Sensors {
		fmt.Fprintf(&b, "sensor %s -> %s every %s\n", s.Name, s.Record, s.Every)
	}
	for _, r := range d.Records {
		buf := "latest"
		if r.Ring > 0 {
			buf = fmt.Sprintf("ring %d", r.Ring)
		}
		fmt.Fprintf(&b, "record %s %s", r.Name, buf)
		for _, s := range r.Subs {
			fmt.Fprintf(&b, " <- mqtt %s qos %d %s", s.Topic, s.QoS, s.Codec)
		}
		b.WriteByte('\n')
	}
	for _, p := range d.Pipelines {
		fmt.Fprintf(&b, "pipeline %s from %s", p.Name, p.From)
		for _, s := range p.Stages {
			kind := "filter"
			if s.Map {
				kind = "map"
			}
			fmt.Fprintf(&b, " | %s %s", kind, s.Src)
		}
		if p.Into != "" {
			fmt.Fprintf(&b, " -> into %s", p.Into)
		}
		if o := p.Out; o != nil {
			fmt.Fprintf(&b, " -> %s %s %s qos %d", o.Kind, o.Topic, o.Codec, o.QoS)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
