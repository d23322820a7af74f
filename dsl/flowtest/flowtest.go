// Package flowtest runs pipeline tests: a test file names a .flow file,
// gives input messages per source link and expects output messages per
// sink link and dead letters. The pipeline runs for real (same graph, same
// stages, same codecs) with every connector swapped for an in-process one
// that feeds the given inputs and captures what is published, so a test
// needs no broker and finishes as soon as the inputs are processed.
//
// A test file is JSON (NAME.test.json):
//
//	{
//	  "pipeline": "demo.flow",
//	  "env": {"THRESHOLD": "25"},
//	  "cases": [{
//	    "name": "hot readings raise alerts",
//	    "input": {"mqtt://sensors/d-1/temp": [{"value": {"device": "d-1", "temp": 31.5}}]},
//	    "expect": {"stdio://stdout": [{"value": {"device": "d-1", "temp": 31.5, "alert": true}}]},
//	    "deadletters": []
//	  }]
//	}
//
// Input links are concrete ("connector://topic"); each connector's inputs
// are fed in link order, each link's messages in order. A message is
// {"value": JSON} (sent as its JSON encoding) or {"raw": "text"}, with
// optional "key". Expect keys are sink links; MQTT wildcards match
// templated destinations ("mqtt://alerts/+"). An expected message checks
// any of "value" (equal after JSON decoding), "contains" (a subset of the
// decoded object), "raw" (exact payload), "key" and "topic". The outputs of
// a listed link must match in number and order ("unordered": true in a case
// relaxes the order, for links written by several pipelines). Every output
// must be expected: a message published to a link that no expect key
// matches fails the case, unless the case lists the link in "ignore"
// (["stdio://stdout"], wildcards allowed), which skips its outputs. An
// expect or ignore key must name a link the pipeline file can publish to
// (an output, a record's publish link or a dead-letter destination), so a
// typo fails instead of passing vacuously. "deadletters" lists the
// expected dead letters in order, each checking any of "pipeline", "stage",
// "record", "error" (a substring) and "payload"; when it is absent, no dead
// letter may occur (dead letters are matched in any order).
package flowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Suite is one test file.
type Suite struct {
	// Pipeline is the .flow file under test, relative to the test file.
	Pipeline string `json:"pipeline"`
	// Env sets ${NAME} values (over the process environment).
	Env   map[string]string `json:"env,omitempty"`
	Cases []Case            `json:"cases"`
	// Path is the test file's path (set by LoadSuite).
	Path string `json:"-"`
}

// Case is one test: inputs and expectations.
type Case struct {
	Name        string                `json:"name"`
	Input       map[string][]Message  `json:"input"`
	Expect      map[string][]Expected `json:"expect"`
	DeadLetters *[]DeadLetter         `json:"deadletters,omitempty"`
	// Unordered matches each link's outputs in any order (for links
	// written by several pipelines).
	Unordered bool `json:"unordered,omitempty"`
	// Ignore lists sink links whose outputs the case does not check;
	// output to any other link not in Expect fails the case.
	Ignore []string `json:"ignore,omitempty"`
	// Timeout bounds the run (default 10s).
	Timeout string `json:"timeout,omitempty"`
}

// Message is one input message.
type Message struct {
	Value json.RawMessage `json:"value,omitempty"`
	Raw   *string         `json:"raw,omitempty"`
	Key   string          `json:"key,omitempty"`
}

// Expected describes one expected output message.
type Expected struct {
	Value    json.RawMessage `json:"value,omitempty"`
	Contains json.RawMessage `json:"contains,omitempty"`
	Raw      *string         `json:"raw,omitempty"`
	Key      *string         `json:"key,omitempty"`
	Topic    *string         `json:"topic,omitempty"`
}

// DeadLetter describes one expected dead letter.
type DeadLetter struct {
	Pipeline string  `json:"pipeline,omitempty"`
	Stage    string  `json:"stage,omitempty"`
	Record   string  `json:"record,omitempty"`
	Error    string  `json:"error,omitempty"`
	Payload  *string `json:"payload,omitempty"`
}

// LoadSuite reads a test file.
func LoadSuite(path string) (*Suite, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Suite
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Pipeline == "" {
		return nil, fmt.Errorf("%s: missing \"pipeline\" (the .flow file under test)", path)
	}
	if len(s.Cases) == 0 {
		return nil, fmt.Errorf("%s: no \"cases\"", path)
	}
	s.Path = path
	return &s, nil
}

// Find returns the test files (*.test.json) named by args: files as
// given, directories searched recursively. No args means ".".
func Find(args ...string) ([]string, error) {
	if len(args) == 0 {
		args = []string{"."}
	}
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".test.json") {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// Result is the outcome of one case.
type Result struct {
	Suite, Case string
	// Failures lists what did not match; empty means the case passed.
	Failures []string
	Duration time.Duration
}

// Passed reports whether the case passed.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Run runs every case of s.
func (s *Suite) Run(ctx context.Context, log *slog.Logger) []Result {
	var out []Result
	for _, c := range s.Cases {
		start := time.Now()
		fails := s.runCase(ctx, log, c)
		out = append(out, Result{Suite: s.Path, Case: c.Name, Failures: fails, Duration: time.Since(start)})
	}
	return out
}

// dlConnector is the connector capturing dead letters of graphs that
// declare no dead-letter destination of their own.
const dlConnector = "flowtest-deadletters"

type output struct {
	conn, dest string
	payload    []byte
	key        []byte
}

// harness is one case's run: the swapped connectors and what they saw.
type harness struct {
	inputs   map[string][]pipeline.Envelope // by connector name
	mu       sync.Mutex
	outs     []output
	inflight atomic.Int64
	feeding  atomic.Int64 // sources still feeding their inputs
	last     atomic.Int64 // unix nanos of the last publish
	loopConn map[string]bool
}

func (s *Suite) runCase(ctx context.Context, log *slog.Logger, c Case) (fails []string) {
	failf := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }
	timeout := 10 * time.Second
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil {
			failf("timeout: %v", err)
			return
		}
		timeout = d
	}
	h := &harness{inputs: map[string][]pipeline.Envelope{}, loopConn: map[string]bool{}}
	// Inputs, in link order.
	links := make([]string, 0, len(c.Input))
	for l := range c.Input {
		links = append(links, l)
	}
	sort.Strings(links)
	for _, raw := range links {
		l, err := pipeline.ParseLink(raw)
		if err != nil {
			failf("input %s: %v", raw, err)
			continue
		}
		for i, m := range c.Input[raw] {
			var p []byte
			switch {
			case m.Raw != nil && m.Value != nil:
				failf("input %s #%d: give value or raw, not both", raw, i+1)
			case m.Raw != nil:
				p = []byte(*m.Raw)
			case m.Value != nil:
				p = compactJSON(m.Value)
			default:
				failf("input %s #%d: missing value or raw", raw, i+1)
			}
			env := pipeline.Envelope{Payload: p, Topic: l.Address}
			if m.Key != "" {
				env.Key = []byte(m.Key)
			}
			h.inputs[l.Connector] = append(h.inputs[l.Connector], env)
		}
	}
	if len(fails) > 0 {
		return fails
	}

	flowPath := s.Pipeline
	if !filepath.IsAbs(flowPath) {
		flowPath = filepath.Join(filepath.Dir(s.Path), flowPath)
	}
	getenv := func(name string) (string, bool) {
		if v, ok := s.Env[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
	opts := dsl.Options{Getenv: getenv, Logger: log, WrapConnector: func(name, _ string, b pipeline.Builder) pipeline.Builder {
		return &testBuilder{h: h, name: name, orig: b}
	}}
	src, err := os.ReadFile(flowPath)
	if err != nil {
		failf("%v", err)
		return
	}
	errs := &dsl.ErrorList{}
	f := dsl.Parse(flowPath, src, errs)
	g := dsl.Compile(opts, errs, f)
	dlLinks := map[string]bool{}
	if g.DeadLetter() == nil {
		g.Connector(dlConnector, &testBuilder{h: h, name: dlConnector})
		g.DeadLetterTo(dlConnector+"://all", codec.JSON{})
	} else if d := g.DeadLetter(); d.Dest.Static() {
		dlLinks[d.Link.Connector+"://"+d.Dest.String()] = true
	}
	for _, p := range g.Pipelines() {
		if d := p.DeadLetter; d != nil && d.Dest != nil && d.Dest.Static() {
			dlLinks[d.Link.Connector+"://"+d.Dest.String()] = true
		}
	}
	// Loopback: a connector that is published to and also serves inbound
	// links behaves like a broker (what it publishes, it delivers).
	published := map[string]bool{}
	for _, p := range g.Pipelines() {
		for _, o := range p.Outputs {
			published[o.Link.Connector] = true
		}
	}
	for _, r := range g.Records() {
		for _, o := range r.Outbound {
			published[o.Link.Connector] = true
		}
	}
	inbound := map[string][]string{}
	for _, r := range g.Records() {
		for _, l := range r.Inbound {
			inbound[l.Link.Connector] = append(inbound[l.Link.Connector], l.Link.Address)
			if published[l.Link.Connector] {
				h.loopConn[l.Link.Connector] = true
			}
		}
	}
	for conn, envs := range h.inputs {
		for _, e := range envs {
			if !matchesAny(inbound[conn], e.Topic) {
				failf("input %s://%s matches no record's from link (inbound links on %s: %v)", conn, e.Topic, conn, inbound[conn])
			}
		}
	}
	if err := errs.Err(); err != nil {
		failf("%s", err)
		return
	}
	// Every serving connector counts itself down once its inputs are fed.
	h.feeding.Store(int64(len(inbound)))
	h.last.Store(time.Now().UnixNano())
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: log, DrainTimeout: timeout})
	if err != nil {
		failf("%v", err)
		return
	}
	if len(fails) > 0 {
		return fails
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.Run(rctx); err != nil {
		failf("run: %v", err)
	}
	if rctx.Err() != nil && ctx.Err() == nil {
		failf("timed out after %s", timeout)
	}
	return append(fails, h.check(c, dlLinks, g.ConnectorNames(), sinkLinks(g, dlLinks))...)
}

// sink is a link the graph can publish to: its connector and its
// destination as a topic filter (template placeholders become "+").
type sink struct{ conn, filter string }

// sinkLinks lists every destination the graph can publish to.
func sinkLinks(g *pipeline.Graph, dlLinks map[string]bool) []sink {
	var out []sink
	add := func(l *pipeline.OutLink) {
		if l == nil {
			return
		}
		dest := l.Link.Address
		if l.Dest != nil {
			dest = l.Dest.String()
		}
		out = append(out, sink{conn: l.Link.Connector, filter: templateFilter(dest)})
	}
	for _, p := range g.Pipelines() {
		for _, o := range p.Outputs {
			add(o)
		}
		add(p.DeadLetter)
	}
	for _, r := range g.Records() {
		for _, o := range r.Outbound {
			add(o)
		}
	}
	add(g.DeadLetter())
	for l := range dlLinks {
		if pl, err := pipeline.ParseLink(l); err == nil {
			out = append(out, sink{conn: pl.Connector, filter: pl.Address})
		}
	}
	return out
}

// templateFilter turns a destination template into a topic filter: a
// segment holding a placeholder matches any segment.
func templateFilter(t string) string {
	segs := strings.Split(t, "/")
	for i, s := range segs {
		if strings.Contains(s, "{") {
			segs[i] = "+"
		}
	}
	return strings.Join(segs, "/")
}

// filtersOverlap reports whether some topic matches both MQTT-style
// filters a and b.
func filtersOverlap(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; ; i++ {
		switch {
		case i < len(as) && as[i] == "#", i < len(bs) && bs[i] == "#":
			return true
		case i == len(as) || i == len(bs):
			return len(as) == len(bs)
		case as[i] != "+" && bs[i] != "+" && as[i] != bs[i]:
			return false
		}
	}
}

// knownSink checks an expect or ignore key against the graph: it returns
// the parsed link, or a failure message.
func knownSink(key string, conns map[string]string, sinks []sink) (*pipeline.Link, string) {
	l, err := pipeline.ParseLink(key)
	if err != nil {
		return nil, fmt.Sprintf("%v", err)
	}
	if _, ok := conns[l.Connector]; !ok {
		return nil, fmt.Sprintf("the pipeline file declares no connector %q", l.Connector)
	}
	var on []string
	for _, s := range sinks {
		if s.conn != l.Connector {
			continue
		}
		if filtersOverlap(l.Address, s.filter) {
			return &l, ""
		}
		on = append(on, s.conn+"://"+s.filter)
	}
	sort.Strings(on)
	return nil, fmt.Sprintf("no link of the pipeline file publishes there (sink links on %s: %v)", l.Connector, on)
}

// publishedTo reports whether output o went to link l.
func publishedTo(l *pipeline.Link, o output) bool {
	return o.conn == l.Connector && (o.dest == l.Address || topic.Match(l.Address, o.dest))
}

func matchesAny(filters []string, t string) bool {
	for _, f := range filters {
		if f == t || topic.Match(f, t) {
			return true
		}
	}
	return false
}

func compactJSON(raw json.RawMessage) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	b, _ := json.Marshal(v)
	return b
}

func (h *harness) check(c Case, dlLinks map[string]bool, conns map[string]string, sinks []sink) []string {
	var fails []string
	failf := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }
	h.mu.Lock()
	outs := append([]output(nil), h.outs...)
	h.mu.Unlock()

	var dls, data []output
	for _, o := range outs {
		if o.conn == dlConnector || dlLinks[o.conn+"://"+o.dest] {
			dls = append(dls, o)
		} else {
			data = append(data, o)
		}
	}
	// covered: links whose outputs are checked or deliberately skipped.
	// An unknown key is still counted as covering, so that a typo is
	// reported once, as the typo.
	var covered []*pipeline.Link
	for _, k := range c.Ignore {
		l, msg := knownSink(k, conns, sinks)
		if l == nil {
			failf("ignore %s: %s", k, msg)
			if pl, err := pipeline.ParseLink(k); err == nil {
				covered = append(covered, &pl)
			}
			continue
		}
		covered = append(covered, l)
	}
	keys := make([]string, 0, len(c.Expect))
	for k := range c.Expect {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want := c.Expect[k]
		l, msg := knownSink(k, conns, sinks)
		if l == nil {
			failf("expect %s: %s", k, msg)
			continue
		}
		covered = append(covered, l)
		var got []output
		for _, o := range outs {
			if publishedTo(l, o) {
				got = append(got, o)
			}
		}
		if len(got) != len(want) {
			failf("%s: got %d messages, want %d%s", k, len(got), len(want), listOutputs(got))
			continue
		}
		if c.Unordered {
			used := make([]bool, len(got))
			for i := range want {
				found := false
				for j := range got {
					if !used[j] && matchOutput(want[i], got[j]) == "" {
						used[j], found = true, true
						break
					}
				}
				if !found {
					failf("%s: no message matches expected #%d%s", k, i+1, listOutputs(got))
				}
			}
			continue
		}
		for i := range want {
			if msg := matchOutput(want[i], got[i]); msg != "" {
				failf("%s message #%d: %s", k, i+1, msg)
			}
		}
	}
	var unexpected []output
	for _, o := range data {
		if !slices.ContainsFunc(covered, func(l *pipeline.Link) bool { return publishedTo(l, o) }) {
			unexpected = append(unexpected, o)
		}
	}
	if len(unexpected) > 0 {
		failf("unexpected output (list its link in \"expect\", or in \"ignore\" to skip it):%s", listOutputs(unexpected))
	}
	if c.DeadLetters == nil {
		if len(dls) > 0 {
			failf("unexpected dead letters (add \"deadletters\" to expect them):%s", listOutputs(dls))
		}
		return fails
	}
	want := *c.DeadLetters
	if len(dls) != len(want) {
		failf("dead letters: got %d, want %d%s", len(dls), len(want), listOutputs(dls))
		return fails
	}
	got := make([]*pipeline.DeadLetter, len(dls))
	for i := range dls {
		var d pipeline.DeadLetter
		if err := json.Unmarshal(dls[i].payload, &d); err != nil {
			failf("dead letter #%d: not a dead letter: %s", i+1, dls[i].payload)
			return fails
		}
		got[i] = &d
	}
	// Dead letters come from several goroutines (decoding at the source,
	// stages in each pipeline), so they are matched in any order.
	for i, w := range want {
		found := false
		for j, d := range got {
			if d != nil && w.matches(d) {
				got[j], found = nil, true
				break
			}
		}
		if !found {
			failf("dead letter #%d: no dead letter matches %s%s", i+1, w, listOutputs(dls))
		}
	}
	return fails
}

func (w DeadLetter) matches(d *pipeline.DeadLetter) bool {
	return (w.Pipeline == "" || w.Pipeline == d.Pipeline) && (w.Stage == "" || w.Stage == d.Stage) &&
		(w.Record == "" || w.Record == d.Record) && strings.Contains(d.Error, w.Error) &&
		(w.Payload == nil || *w.Payload == d.Payload)
}

func (w DeadLetter) String() string {
	b, _ := json.Marshal(w)
	return string(b)
}

func listOutputs(os []output) string {
	var b strings.Builder
	for i, o := range os {
		if i == 10 {
			fmt.Fprintf(&b, "\n      ... %d more", len(os)-10)
			break
		}
		fmt.Fprintf(&b, "\n      %s://%s %s", o.conn, o.dest, o.payload)
	}
	return b.String()
}

func matchOutput(w Expected, o output) string {
	if w.Topic != nil && *w.Topic != o.dest {
		return fmt.Sprintf("topic %q, want %q", o.dest, *w.Topic)
	}
	if w.Key != nil && *w.Key != string(o.key) {
		return fmt.Sprintf("key %q, want %q", o.key, *w.Key)
	}
	if w.Raw != nil && *w.Raw != string(o.payload) {
		return fmt.Sprintf("payload %s, want %s", o.payload, *w.Raw)
	}
	if w.Value == nil && w.Contains == nil {
		return ""
	}
	var got any
	if err := json.Unmarshal(o.payload, &got); err != nil {
		return fmt.Sprintf("payload %s is not JSON: %v", o.payload, err)
	}
	if w.Value != nil {
		var want any
		if err := json.Unmarshal(w.Value, &want); err != nil {
			return fmt.Sprintf("bad expected value: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("got %s, want %s", o.payload, compactJSON(w.Value))
		}
	}
	if w.Contains != nil {
		var want any
		if err := json.Unmarshal(w.Contains, &want); err != nil {
			return fmt.Sprintf("bad expected contains: %v", err)
		}
		if !subset(want, got) {
			return fmt.Sprintf("got %s, want it to contain %s", o.payload, compactJSON(w.Contains))
		}
	}
	return ""
}

// subset reports whether every field of want is in got with an equal
// value (recursively for objects).
func subset(want, got any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(want, got)
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, wv := range wm {
		gv, ok := gm[k]
		if !ok || !subset(wv, gv) {
			return false
		}
	}
	return true
}

// ---- the swapped connectors ----

type testBuilder struct {
	h    *harness
	name string
	orig pipeline.Builder
}

func (b *testBuilder) Scheme() string {
	if b.orig == nil {
		return "flowtest"
	}
	return b.orig.Scheme()
}

// Caps forwards the real connector's declaration (directions, topic
// routing).
func (b *testBuilder) Caps() pipeline.Caps {
	if b.orig == nil {
		return pipeline.AllDirections
	}
	return pipeline.CapsOf(b.orig)
}

// ParseLinkOptions validates link settings with the real connector, so a
// test also catches a wrong setting.
func (b *testBuilder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	if lp, ok := b.orig.(pipeline.LinkOptionParser); ok {
		return lp.ParseLinkOptions(dir, addr, p)
	}
	if len(p) > 0 {
		return nil, fmt.Errorf("connector %q takes no link options", b.name)
	}
	return nil, nil
}

func (b *testBuilder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	c := &testConn{b: b, loop: make(chan pipeline.Envelope, 1<<16)}
	for _, s := range env.Inbound {
		c.filters = append(c.filters, s.Filter)
	}
	return c, nil
}

type testConn struct {
	b *testBuilder
	// filters are the inbound links' addresses, known at build time so
	// that a publish before Serve started is looped back too.
	filters []string
	loop    chan pipeline.Envelope
}

func (c *testConn) Publish(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	h := c.b.h
	o := output{conn: c.b.name, dest: dest, payload: append([]byte(nil), env.Payload...), key: append([]byte(nil), env.Key...)}
	h.mu.Lock()
	h.outs = append(h.outs, o)
	h.mu.Unlock()
	h.last.Store(time.Now().UnixNano())
	if h.loopConn[c.b.name] {
		if matchesAny(c.filters, dest) {
			h.inflight.Add(1)
			select {
			case c.loop <- pipeline.Envelope{Payload: o.payload, Key: o.key, Topic: dest}:
			case <-ctx.Done():
				h.inflight.Add(-1)
				return ctx.Err()
			}
		}
	}
	return nil
}

func (c *testConn) Close(context.Context) error { return nil }

// Finite implements pipeline.FiniteSource: a test source ends when its
// inputs (and, for a loopback connector, what it was sent) are processed.
func (c *testConn) Finite([]pipeline.Subscription) bool { return true }

// dispatch feeds one message; its in-flight count is released when every
// part of the graph it reached is done with it. counted says the caller
// already added it to the count (loopback messages are counted when
// published, so the count never drops to zero in between).
func (c *testConn) dispatch(ctx context.Context, d pipeline.Dispatcher, env pipeline.Envelope, counted bool) error {
	h := c.b.h
	if !counted {
		h.inflight.Add(1)
	}
	env.Ack = pipeline.NewAck(func(error) { h.inflight.Add(-1) })
	env.Time = time.Now()
	return d.Dispatch(ctx, &env)
}

// quiet is how long a loopback source waits without publishes before it
// decides that nothing more will arrive.
const quiet = 100 * time.Millisecond

func (c *testConn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	h := c.b.h
	for _, env := range h.inputs[c.b.name] {
		if c.dispatch(ctx, d, env, false) != nil {
			h.feeding.Add(-1)
			return nil
		}
	}
	h.feeding.Add(-1)
	if !h.loopConn[c.b.name] {
		return nil
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case env := <-c.loop:
			if c.dispatch(ctx, d, env, true) != nil {
				return nil
			}
		case <-tick.C:
			if len(c.loop) == 0 && h.feeding.Load() == 0 && h.inflight.Load() == 0 &&
				time.Since(time.Unix(0, h.last.Load())) > quiet {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}
