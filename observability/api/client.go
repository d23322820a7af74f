package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// TokenEnv is the environment variable the CLI reads the token from when
// --token is not given (server and client side).
const TokenEnv = "AIMDB_FLOW_TOKEN"

// maxResponse bounds a response the client reads (not a watch stream).
const maxResponse = 64 << 20

// Client talks to the records API of a running instance.
type Client struct {
	// BaseURL is the instance's --http address ("http://127.0.0.1:8080").
	BaseURL string
	// Token is sent as Authorization: Bearer TOKEN when set.
	Token string
	// HTTP is the client used (default http.DefaultClient).
	HTTP *http.Client
}

// StatusError is an error response of the API.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Code and Message are the body's (see Error).
	Code, Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

func (c *Client) url(path string, q url.Values) (string, error) {
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		return "", errors.New("api: no instance URL given")
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u, nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte) (*http.Response, error) {
	u, err := c.url(path, q)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		se := &StatusError{Status: resp.StatusCode}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e Error
		if json.Unmarshal(b, &e) == nil {
			se.Code, se.Message = e.Code, e.Message
		} else {
			se.Message = strings.TrimSpace(string(b))
		}
		return nil, se
	}
	return resp, nil
}

// get decodes the JSON answer of a GET into v.
func (c *Client) get(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(v); err != nil {
		return fmt.Errorf("api: decoding %s: %w", path, err)
	}
	return nil
}

func recordPath(name string) string { return "/api/v1/records/" + url.PathEscape(name) }

// Records lists every record.
func (c *Client) Records(ctx context.Context) ([]Record, error) {
	var out []Record
	return out, c.get(ctx, "/api/v1/records", &out)
}

// Record describes one record.
func (c *Client) Record(ctx context.Context, name string) (Record, error) {
	var out Record
	return out, c.get(ctx, recordPath(name), &out)
}

// Value returns a record's latest value.
func (c *Client) Value(ctx context.Context, name string) (Value, error) {
	var out Value
	return out, c.get(ctx, recordPath(name)+"/value", &out)
}

// Set sets a settable record to value (one JSON value) and returns the
// value as set.
func (c *Client) Set(ctx context.Context, name string, value json.RawMessage) (Value, error) {
	var out Value
	resp, err := c.do(ctx, http.MethodPut, recordPath(name)+"/value", nil, value)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&out); err != nil {
		return out, fmt.Errorf("api: decoding the answer: %w", err)
	}
	return out, nil
}

// Graph returns the running graph with its counters.
func (c *Client) Graph(ctx context.Context) (Graph, error) {
	var out Graph
	return out, c.get(ctx, "/api/v1/graph", &out)
}

// Timings returns the per-hop latencies.
func (c *Client) Timings(ctx context.Context) (Timings, error) {
	var out Timings
	return out, c.get(ctx, "/api/v1/timings", &out)
}

// Watchers lists the open watches.
func (c *Client) Watchers(ctx context.Context) ([]Watcher, error) {
	var out []Watcher
	return out, c.get(ctx, "/api/v1/watchers", &out)
}

// WatchOptions configure Client.Watch.
type WatchOptions struct {
	// Buffer asks for the watch's buffer size (0: the server's default).
	Buffer int
	// OnHello, when set, is called once the watch is open.
	OnHello func(Hello)
}

// ErrStop may be returned by a Watch callback to end the watch without
// an error.
var ErrStop = errors.New("api: stop watching")

// Watch streams the values of the records matching patterns, calling fn
// for each, until ctx ends, fn returns an error (ErrStop: none) or the
// server ends the stream. It returns nil when ctx ended or fn stopped.
func (c *Client) Watch(ctx context.Context, patterns []string, opts WatchOptions, fn func(Event) error) error {
	q := url.Values{"records": {strings.Join(patterns, ",")}}
	if opts.Buffer > 0 {
		q.Set("buffer", fmt.Sprint(opts.Buffer))
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/watch", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readSSE(resp.Body, func(event string, data []byte) error {
		switch event {
		case "hello":
			var h Hello
			if err := json.Unmarshal(data, &h); err != nil {
				return fmt.Errorf("api: bad hello event: %w", err)
			}
			if opts.OnHello != nil {
				opts.OnHello(h)
			}
		case "value":
			var ev Event
			if err := json.Unmarshal(data, &ev); err != nil {
				return fmt.Errorf("api: bad value event: %w", err)
			}
			return fn(ev)
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrStop), ctx.Err() != nil:
		return nil
	}
	return err
}

// readSSE calls fn for each event of a text/event-stream.
func readSSE(r io.Reader, fn func(event string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxResponse)
	var event string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data != nil {
				if err := fn(cmpOr(event, "message"), data); err != nil {
					return err
				}
			}
			event, data = "", nil
		case line[0] == ':':
		default:
			k, v, _ := bytes.Cut(line, []byte(":"))
			v = bytes.TrimPrefix(v, []byte(" "))
			switch string(k) {
			case "event":
				event = string(v)
			case "data":
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, v...)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("api: watch stream: %w", err)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
