package mcpflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/observability/api"
)

// Bounds of watch_record.
const (
	MaxWatchSeconds = 60
	MaxWatchValues  = 1000
	defaultValues   = 100
)

// Options configure the MCP server.
type Options struct {
	// AllowSet offers the set_record tool (read-only otherwise).
	AllowSet bool
	// Version is reported to clients.
	Version string
}

// New returns an MCP server whose tools read (and, with AllowSet, set)
// the instance c talks to.
func New(c *api.Client, opts Options) *mcp.Server {
	v := opts.Version
	if v == "" {
		v = "devel"
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "aimdb-flow", Version: v}, nil)
	t := &tools{c: c}
	mcp.AddTool(s, &mcp.Tool{Name: "list_records", Description: "List every record of the running aimdb-flow graph: buffer and occupancy, writer, readers, writes, drops, rates, last update."}, t.listRecords)
	mcp.AddTool(s, &mcp.Tool{Name: "read_record", Description: "Read one record: its description and latest value."}, t.readRecord)
	mcp.AddTool(s, &mcp.Tool{Name: "watch_record", Description: fmt.Sprintf("Watch the values written to the records matching a name or pattern (sensor.* one level, sensor.** any) for some seconds (at most %d) or until max values (at most %d).", MaxWatchSeconds, MaxWatchValues)}, t.watchRecord)
	mcp.AddTool(s, &mcp.Tool{Name: "read_graph", Description: "Read the running graph: connectors and their readiness, records, pipelines with per-stage counters, links with counters."}, t.readGraph)
	mcp.AddTool(s, &mcp.Tool{Name: "read_stats", Description: "Read the counters and per-hop timings (timings need run --hop-latency), plus the open watches."}, t.readStats)
	mcp.AddTool(s, &mcp.Tool{Name: "explain_record", Description: "Explain why a record is or is not flowing: its writer and the writer's readiness, writes and rates, drops and lag, dead letters and errors on its links and pipelines."}, t.explainRecord)
	mcp.AddTool(s, &mcp.Tool{Name: "validate_flow", Description: "Validate .flow text (the aimdb-flow DSL) without running it; returns every problem as file:line:col: message."}, t.validateFlow)
	if opts.AllowSet {
		mcp.AddTool(s, &mcp.Tool{Name: "set_record", Description: "Set a value (JSON) into a record declared settable."}, t.setRecord)
	}
	return s
}

type tools struct{ c *api.Client }

// text is a tool result holding v as indented JSON.
func text(v any) (*mcp.CallToolResult, any, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil, nil
}

type noArgs struct{}

func (t *tools) listRecords(ctx context.Context, _ *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, any, error) {
	recs, err := t.c.Records(ctx)
	if err != nil {
		return nil, nil, err
	}
	return text(recs)
}

type nameArgs struct {
	Name string `json:"name" jsonschema:"the record name, e.g. sensor.temp"`
}

func (t *tools) readRecord(ctx context.Context, _ *mcp.CallToolRequest, in nameArgs) (*mcp.CallToolResult, any, error) {
	rec, err := t.c.Record(ctx, in.Name)
	if err != nil {
		return nil, nil, err
	}
	out := struct {
		Record api.Record `json:"record"`
		Value  *api.Value `json:"value,omitempty"`
		Note   string     `json:"note,omitempty"`
	}{Record: rec}
	v, err := t.c.Value(ctx, in.Name)
	var se *api.StatusError
	switch {
	case err == nil:
		out.Value = &v
	case errors.As(err, &se) && se.Code == "no_value":
		out.Note = "no value written yet"
	default:
		return nil, nil, err
	}
	return text(out)
}

type watchArgs struct {
	Pattern string `json:"pattern" jsonschema:"a record name or pattern, e.g. sensor.temp or sensor.*"`
	Seconds int    `json:"seconds,omitempty" jsonschema:"how long to watch, 1 to 60 (default 5)"`
	Max     int    `json:"max,omitempty" jsonschema:"stop after this many values, 1 to 1000 (default 100)"`
}

type watchResult struct {
	Records []string    `json:"records"`
	Values  []api.Event `json:"values"`
	Dropped uint64      `json:"dropped"`
	Stopped string      `json:"stopped"`
}

func (t *tools) watchRecord(ctx context.Context, _ *mcp.CallToolRequest, in watchArgs) (*mcp.CallToolResult, any, error) {
	secs := in.Seconds
	if secs <= 0 {
		secs = 5
	}
	secs = min(secs, MaxWatchSeconds)
	limit := in.Max
	if limit <= 0 {
		limit = defaultValues
	}
	limit = min(limit, MaxWatchValues)
	wctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second)
	defer cancel()
	res := watchResult{Values: []api.Event{}, Stopped: fmt.Sprintf("after %d s", secs)}
	err := t.c.Watch(wctx, []string{in.Pattern}, api.WatchOptions{OnHello: func(h api.Hello) { res.Records = h.Records }}, func(ev api.Event) error {
		res.Values = append(res.Values, ev)
		res.Dropped = ev.Dropped
		if len(res.Values) >= limit {
			res.Stopped = fmt.Sprintf("after %d values", limit)
			return api.ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return text(res)
}

func (t *tools) readGraph(ctx context.Context, _ *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, any, error) {
	g, err := t.c.Graph(ctx)
	if err != nil {
		return nil, nil, err
	}
	return text(g)
}

func (t *tools) readStats(ctx context.Context, _ *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, any, error) {
	g, err := t.c.Graph(ctx)
	if err != nil {
		return nil, nil, err
	}
	tm, err := t.c.Timings(ctx)
	if err != nil {
		return nil, nil, err
	}
	ws, err := t.c.Watchers(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := struct {
		Unrouted    uint64         `json:"unrouted"`
		DeadLetters uint64         `json:"dead_letters"`
		Records     []api.Record   `json:"records"`
		Pipelines   []api.Pipeline `json:"pipelines"`
		Links       []api.Link     `json:"links"`
		Timings     api.Timings    `json:"timings"`
		Watchers    []api.Watcher  `json:"watchers"`
	}{g.Unrouted, g.DeadLetters, g.Records, g.Pipelines, g.Links, tm, ws}
	return text(out)
}

type flowArgs struct {
	Text string `json:"text" jsonschema:"the .flow source text"`
	Name string `json:"name,omitempty" jsonschema:"a file name for messages (default pipeline.flow)"`
}

type validation struct {
	Valid    bool     `json:"valid"`
	Problems []string `json:"problems"`
}

func (t *tools) validateFlow(_ context.Context, _ *mcp.CallToolRequest, in flowArgs) (*mcp.CallToolResult, any, error) {
	name := in.Name
	if name == "" {
		name = "pipeline.flow"
	}
	// Validated as aimdb-flow validate does, without the environment: an
	// unset ${NAME} stays as written and no input file needs to exist.
	opts := dsl.Options{NoLinkChecks: true, Placeholders: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	_, err := dsl.Load(opts, dsl.Source{Name: name, Src: []byte(in.Text)})
	res := validation{Valid: err == nil, Problems: []string{}}
	if err != nil {
		var el *dsl.ErrorList
		if errors.As(err, &el) {
			for _, e := range el.Errors {
				res.Problems = append(res.Problems, e.Error())
			}
		} else {
			res.Problems = append(res.Problems, err.Error())
		}
	}
	return text(res)
}

type setArgs struct {
	Name  string `json:"name" jsonschema:"a settable record"`
	Value any    `json:"value" jsonschema:"the JSON value to set"`
}

func (t *tools) setRecord(ctx context.Context, _ *mcp.CallToolRequest, in setArgs) (*mcp.CallToolResult, any, error) {
	b, err := json.Marshal(in.Value)
	if err != nil {
		return nil, nil, fmt.Errorf("value: %w", err)
	}
	v, err := t.c.Set(ctx, in.Name, b)
	if err != nil {
		return nil, nil, err
	}
	return text(v)
}
