package mcpflow

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
)

// Explanation is the answer of explain_record.
type Explanation struct {
	Record string `json:"record"`
	// Flowing is true when the record has been written; Findings say what
	// stands in the way or what is lost.
	Flowing  bool       `json:"flowing"`
	Summary  string     `json:"summary"`
	Findings []string   `json:"findings"`
	Details  api.Record `json:"details"`
}

func (t *tools) explainRecord(ctx context.Context, _ *mcp.CallToolRequest, in nameArgs) (*mcp.CallToolResult, any, error) {
	g, err := t.c.Graph(ctx)
	if err != nil {
		return nil, nil, err
	}
	ex, err := Explain(g, in.Name, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return text(ex)
}

// Explain says why the record name of g is or is not flowing.
func Explain(g api.Graph, name string, now time.Time) (Explanation, error) {
	var rec *api.Record
	for i := range g.Records {
		if g.Records[i].Name == name {
			rec = &g.Records[i]
		}
	}
	if rec == nil {
		var names []string
		for _, r := range g.Records {
			names = append(names, r.Name)
		}
		return Explanation{}, fmt.Errorf("unknown record %q (records: %s)", name, strings.Join(names, ", "))
	}
	ex := Explanation{Record: name, Details: *rec, Flowing: rec.Writes > 0, Findings: []string{}}
	add := func(format string, args ...any) { ex.Findings = append(ex.Findings, fmt.Sprintf(format, args...)) }
	if !g.Running {
		add("the graph is not running")
	}
	conns := map[string]api.Connector{}
	for _, c := range g.Connectors {
		conns[c.Name] = c
	}
	pipes := map[string]api.Pipeline{}
	for _, p := range g.Pipelines {
		pipes[p.Name] = p
	}

	// The writer side.
	switch rec.Writer.Kind {
	case "link":
		for _, l := range g.Links {
			if l.Direction != "in" || l.Record != name {
				continue
			}
			if c, ok := conns[l.Connector]; ok && !c.Ready {
				add("its inbound link %s cannot receive: connector %s is not ready (%s)", l.Link, c.Name, c.NotReady)
			}
			if l.Messages == 0 {
				add("its inbound link %s has received nothing yet: is anything published to that address?", l.Link)
			}
			if l.Errors > 0 {
				add("its inbound link %s failed to decode %d of %d messages (%d dead-lettered): check the payloads and the decode codec", l.Link, l.Errors, l.Messages, l.DeadLettered)
			}
		}
	case "pipeline":
		p := pipes[rec.Writer.Name]
		explainPipeline(add, g, p, name)
	case "set":
		if rec.Writes == 0 {
			add("it is settable and nobody has set it yet (aimdb-flow records set, or PUT /api/v1/records/%s/value)", name)
		}
	case "none":
		add("it has no writer: no inbound link, no pipeline writing into it, not settable")
	}
	if g.Unrouted > 0 && rec.Writer.Kind == "link" {
		add("%d inbound messages in the graph matched no record (a topic that differs from every link's address?)", g.Unrouted)
	}

	// Flow rate and staleness.
	if rec.Writes > 0 && rec.Rates != nil && rec.Rates.Writes == 0 {
		add("no writes in the last sampling interval: the flow has stalled")
	}
	if rec.LastUpdate != nil && rec.Writes > 0 {
		if age := now.Sub(*rec.LastUpdate); age > 10*time.Second {
			add("its latest value is %s old", age.Round(time.Second))
		}
	}

	// Losses and backpressure.
	if rec.Dropped > 0 {
		add("its %s buffer dropped %d values (collapsed or overwritten before a reader took them)", rec.Buffer.Kind, rec.Dropped)
	}
	if rec.Lagged > 0 {
		add("readers of its ring buffer lagged and missed %d values: a reader is slower than the writer (a larger ring, or a queue for lossless hand-off)", rec.Lagged)
	}
	if rec.Buffer.Kind == "queue" && rec.Buffer.Capacity > 0 && rec.Buffer.Occupancy >= rec.Buffer.Capacity {
		add("its queue is full (%d/%d): the writer is held back by its slowest reader", rec.Buffer.Occupancy, rec.Buffer.Capacity)
	}
	if len(rec.Readers) == 0 && rec.Buffer.Readers == 0 {
		add("nothing reads it (no pipeline, no outbound link)")
	}

	// The reader side.
	for _, rd := range rec.Readers {
		if rd.Kind == "pipeline" {
			p := pipes[rd.Name]
			if p.Errors > 0 {
				add("pipeline %s reading it failed on %d records", p.Name, p.Errors)
			}
		}
	}
	for _, l := range g.Links {
		if l.Direction == "out" && l.Record == name && (l.Errors > 0 || l.DeadLettered > 0) {
			add("its outbound link %s failed %d publishes (%d dead-lettered)", l.Link, l.Errors, l.DeadLettered)
		}
	}
	if g.DeadLetters > 0 {
		add("the graph produced %d dead letters in all", g.DeadLetters)
	}

	switch {
	case !ex.Flowing:
		ex.Summary = fmt.Sprintf("%s is not flowing: nothing has been written to it", name)
	case len(ex.Findings) == 0:
		ex.Summary = fmt.Sprintf("%s is flowing: %d writes, nothing lost", name, rec.Writes)
	default:
		ex.Summary = fmt.Sprintf("%s is flowing (%d writes), with findings", name, rec.Writes)
	}
	return ex, nil
}

// explainPipeline reports why pipeline p writes few or no records into
// its output record.
func explainPipeline(add func(string, ...any), g api.Graph, p api.Pipeline, out string) {
	var input *api.Record
	for i := range g.Records {
		if g.Records[i].Name == p.From {
			input = &g.Records[i]
		}
	}
	if input != nil && input.Writes == 0 {
		add("its writer, pipeline %s, reads record %s, which has not been written yet (explain_record %s)", p.Name, p.From, p.From)
		return
	}
	if p.In == 0 {
		add("its writer, pipeline %s, has read nothing from %s yet", p.Name, p.From)
		return
	}
	prev := p.In
	for _, st := range p.Stages {
		if st.In < prev {
			add("in pipeline %s, %d of %d records passed the stages before %s", p.Name, st.In, prev, st.Name)
		}
		if st.Errors > 0 {
			add("in pipeline %s, stage %s failed on %d records (dead-lettered)", p.Name, st.Name, st.Errors)
		}
		prev = st.In
	}
	if p.Out < prev {
		add("pipeline %s wrote %d of the %d records its last stage saw into %s (the others were filtered out or failed)", p.Name, p.Out, prev, out)
	}
}
