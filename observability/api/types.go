package api

import (
	"encoding/json"
	"time"
)

// Record describes one record of a running graph.
type Record struct {
	Name   string `json:"name"`
	Buffer Buffer `json:"buffer"`
	// Writer is what writes the record; Kind "none" when nothing does.
	Writer Endpoint `json:"writer"`
	// Readers are the pipelines and outbound links reading the record
	// (Go subscribers are counted in Buffer.Readers only).
	Readers  []Endpoint `json:"readers"`
	Settable bool       `json:"settable"`
	// Writes, Delivered, Dropped and Lagged are the buffer's counters
	// since the start (Delivered and Lagged summed over readers).
	Writes    uint64 `json:"writes"`
	Delivered uint64 `json:"delivered"`
	Dropped   uint64 `json:"dropped"`
	Lagged    uint64 `json:"lagged"`
	// Rates are per second over the last sampling interval (about one
	// second); nil until two samples exist.
	Rates *Rates `json:"rates,omitempty"`
	// LastUpdate is the event time of the latest value, nil before the
	// first write.
	LastUpdate *time.Time `json:"last_update,omitempty"`
	// Watchers is the number of open watches on the record.
	Watchers int `json:"watchers"`
}

// Buffer is a record's buffer and how full it is.
type Buffer struct {
	Kind     string `json:"kind"`
	Capacity int    `json:"capacity,omitempty"`
	// Occupancy is the number of values held and not yet read by the
	// slowest reader.
	Occupancy int `json:"occupancy"`
	Readers   int `json:"readers"`
}

// Endpoint names a writer or reader of a record.
type Endpoint struct {
	// Kind is "link" (an inbound or outbound link), "pipeline", "set"
	// (a settable record: the records API or Runner.Set), "go" (Go code
	// through Runner.Writer) or "none".
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
}

// Rates are per-second rates of a record's counters.
type Rates struct {
	Writes    float64 `json:"writes"`
	Delivered float64 `json:"delivered"`
	Dropped   float64 `json:"dropped"`
}

// Value is a record's value as the API shows it.
type Value struct {
	Record string    `json:"record"`
	Time   time.Time `json:"time"`
	Topic  string    `json:"topic,omitempty"`
	// Key is the record's key, when it is valid UTF-8.
	Key     string   `json:"key,omitempty"`
	Headers []Header `json:"headers,omitempty"`
	// Value is the value as JSON; absent when the record carries only a
	// payload that is not JSON, which Payload then holds (base64).
	Value   json.RawMessage `json:"value,omitempty"`
	Payload []byte          `json:"payload,omitempty"`
}

// Header is a transport header; values of credential-like names are
// redacted.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Event is one value of a watch stream (SSE event "value").
type Event struct {
	Value
	// Seq numbers the events of one stream from 1.
	Seq uint64 `json:"seq"`
	// Dropped is how many values this stream lost so far because it did
	// not keep up.
	Dropped uint64 `json:"dropped"`
}

// Hello is the first event of a watch stream (SSE event "hello"): the
// watch is open and every value written from now on is sent or counted.
type Hello struct {
	Records []string `json:"records"`
	Buffer  int      `json:"buffer"`
}

// Watcher is one open watch (GET /api/v1/watchers).
type Watcher struct {
	ID       uint64    `json:"id"`
	Patterns []string  `json:"patterns"`
	Records  []string  `json:"records"`
	Since    time.Time `json:"since"`
	// Sent counts the values taken for the stream, Dropped those lost,
	// Queued those waiting: every value written to a watched record since
	// the watch opened is in exactly one of them.
	Sent    uint64 `json:"sent"`
	Dropped uint64 `json:"dropped"`
	Queued  int    `json:"queued"`
}

// Graph is the running graph with its live counters.
type Graph struct {
	Running    bool        `json:"running"`
	Ready      bool        `json:"ready"`
	NotReady   string      `json:"not_ready,omitempty"`
	Connectors []Connector `json:"connectors"`
	Records    []Record    `json:"records"`
	Pipelines  []Pipeline  `json:"pipelines"`
	Links      []Link      `json:"links"`
	// Unrouted counts inbound messages that matched no record.
	Unrouted    uint64 `json:"unrouted"`
	DeadLetters uint64 `json:"dead_letters"`
	// DeadLetter is the graph-wide dead-letter link, if any.
	DeadLetter string `json:"dead_letter,omitempty"`
}

// Connector is one connector and its state.
type Connector struct {
	Name   string `json:"name"`
	Scheme string `json:"scheme"`
	// Endpoint is the connector's URL with credentials redacted (empty
	// when the graph was built in Go).
	Endpoint string `json:"endpoint,omitempty"`
	// Ready is true when the connector is connected, or cannot tell while
	// the graph runs; NotReady is the reason otherwise.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
}

// Pipeline is one pipeline with its counters.
type Pipeline struct {
	Name       string   `json:"name"`
	From       string   `json:"from"`
	Into       string   `json:"into,omitempty"`
	To         []string `json:"to,omitempty"`
	DeadLetter string   `json:"dead_letter,omitempty"`
	Parallel   int      `json:"parallel,omitempty"`
	In         uint64   `json:"in"`
	Out        uint64   `json:"out"`
	Errors     uint64   `json:"errors"`
	Stages     []Stage  `json:"stages"`
}

// Stage is one stage of a pipeline with its counters and, with
// --hop-latency, its timing.
type Stage struct {
	Name   string  `json:"name"`
	In     uint64  `json:"in"`
	Errors uint64  `json:"errors"`
	Timing *Timing `json:"timing,omitempty"`
}

// Link is one link (inbound: connector to record; outbound: record or
// pipeline to connector) with its counters.
type Link struct {
	// Direction is "in" or "out".
	Direction string `json:"direction"`
	// Record (inbound links and record publishers) or Pipeline (pipeline
	// outputs) owns the link.
	Record       string `json:"record,omitempty"`
	Pipeline     string `json:"pipeline,omitempty"`
	Link         string `json:"link"`
	Connector    string `json:"connector"`
	Messages     uint64 `json:"messages"`
	Errors       uint64 `json:"errors"`
	DeadLettered uint64 `json:"dead_lettered"`
}

// Timing is the latency of one hop (GET /api/v1/timings).
type Timing struct {
	Hop       string `json:"hop"`
	Pipeline  string `json:"pipeline,omitempty"`
	Stage     string `json:"stage,omitempty"`
	Record    string `json:"record,omitempty"`
	Link      string `json:"link,omitempty"`
	Connector string `json:"connector,omitempty"`
	Count     uint64 `json:"count"`
	// MeanSeconds is the mean duration; P50/P90/P99Seconds are upper
	// bounds of the histogram bucket holding that quantile (0 when the
	// quantile is above the largest bucket bound).
	MeanSeconds float64 `json:"mean_seconds"`
	P50Seconds  float64 `json:"p50_seconds"`
	P90Seconds  float64 `json:"p90_seconds"`
	P99Seconds  float64 `json:"p99_seconds"`
}

// Timings is the answer of GET /api/v1/timings.
type Timings struct {
	// Enabled is false when the instance was started without
	// --hop-latency: no timings are recorded.
	Enabled bool     `json:"enabled"`
	Hops    []Timing `json:"hops"`
}

// Error is the body of every error response.
type Error struct {
	// Code is a stable machine-readable reason: bad_request,
	// unauthorized, read_only, not_settable, set_needs_token,
	// not_found, no_value, too_large, unavailable, too_many_watchers.
	Code    string `json:"code"`
	Message string `json:"error"`
}
