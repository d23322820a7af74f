package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// setTimeout bounds how long a set waits for room in a full queue buffer.
const setTimeout = 5 * time.Second

// records describes every record of the graph, in declaration order.
func (s *Server) records(snap pipeline.Snapshot) []Record {
	g := s.r.Graph()
	s.rates.sample(time.Now(), false)
	rates := s.rates.rates()
	watching := s.watchCounts()
	writers := map[string]Endpoint{}
	readers := map[string][]Endpoint{}
	for _, p := range g.Pipelines() {
		if p.IntoRecord != "" {
			writers[p.IntoRecord] = Endpoint{Kind: "pipeline", Name: p.Name}
		}
		if p.Input != "" {
			readers[p.Input] = append(readers[p.Input], Endpoint{Kind: "pipeline", Name: p.Name})
		}
	}
	specs := g.Records()
	out := make([]Record, 0, len(specs))
	for _, spec := range specs {
		st := snap.Records[spec.Name]
		rec := Record{Name: spec.Name, Settable: spec.Settable, Writes: st.Writes,
			Buffer:    Buffer{Kind: spec.Buffer.Kind.String(), Occupancy: st.Buffer.Occupancy, Readers: st.Buffer.Readers},
			Delivered: st.Buffer.Delivered, Dropped: st.Buffer.Dropped, Lagged: st.Buffer.Lagged,
			Rates: rates[spec.Name], Watchers: watching[spec.Name], Readers: readers[spec.Name]}
		if spec.Buffer.Kind == buffer.Ring || spec.Buffer.Kind == buffer.Queue {
			rec.Buffer.Capacity = spec.Buffer.Size
		}
		switch w, ok := writers[spec.Name]; {
		case len(spec.Inbound) > 0:
			links := make([]string, len(spec.Inbound))
			for i, l := range spec.Inbound {
				links[i] = l.Raw
			}
			rec.Writer = Endpoint{Kind: "link", Name: strings.Join(links, ", ")}
		case ok:
			rec.Writer = w
		case spec.Settable:
			rec.Writer = Endpoint{Kind: "set"}
		case st.Writes > 0:
			rec.Writer = Endpoint{Kind: "go"}
		default:
			rec.Writer = Endpoint{Kind: "none"}
		}
		for _, l := range spec.Outbound {
			rec.Readers = append(rec.Readers, Endpoint{Kind: "link", Name: l.Raw})
		}
		if rec.Readers == nil {
			rec.Readers = []Endpoint{}
		}
		if env, ok := s.r.Latest(spec.Name); ok && !env.Time.IsZero() {
			t := env.Time
			rec.LastUpdate = &t
		}
		out = append(out, rec)
	}
	return out
}

// spec returns the declaration of the record named in the request's path,
// answering 404 itself when there is none.
func (s *Server) spec(w http.ResponseWriter, req *http.Request) (*pipeline.RecordSpec, bool) {
	name := req.PathValue("name")
	for _, r := range s.r.Graph().Records() {
		if r.Name == name {
			return r, true
		}
	}
	writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("unknown record %q", name))
	return nil, false
}

func (s *Server) listRecords(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.records(s.r.Stats()))
}

func (s *Server) getRecord(w http.ResponseWriter, req *http.Request) {
	spec, ok := s.spec(w, req)
	if !ok {
		return
	}
	for _, r := range s.records(s.r.Stats()) {
		if r.Name == spec.Name {
			writeJSON(w, http.StatusOK, r)
			return
		}
	}
}

func (s *Server) getValue(w http.ResponseWriter, req *http.Request) {
	spec, ok := s.spec(w, req)
	if !ok {
		return
	}
	env, ok := s.r.Latest(spec.Name)
	if !ok {
		writeError(w, http.StatusNotFound, "no_value", fmt.Sprintf("record %q has no value yet", spec.Name))
		return
	}
	writeJSON(w, http.StatusOK, renderValue(spec.Name, env))
}

func (s *Server) setValue(w http.ResponseWriter, req *http.Request) {
	if !s.mayWrite(w) {
		return
	}
	spec, ok := s.spec(w, req)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, s.opts.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over %d bytes", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "reading the body: "+err.Error())
		return
	}
	v, status, apiErr := s.set(req.Context(), spec, body)
	if apiErr != nil {
		writeJSON(w, status, apiErr)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// set writes body (one JSON value) into the record of spec, for PUT/POST
// and for WebSocket clients. A failure is an Error with its HTTP status.
func (s *Server) set(ctx context.Context, spec *pipeline.RecordSpec, body []byte) (Value, int, *Error) {
	if !spec.Settable {
		return Value{}, http.StatusForbidden, &Error{Code: "not_settable", Message: notSettable(s.r.Graph(), spec)}
	}
	if !json.Valid(body) {
		return Value{}, http.StatusBadRequest, &Error{Code: "bad_request", Message: "the body must be one JSON value"}
	}
	v, err := codec.LazyJSON{}.Decode(body)
	if err != nil {
		return Value{}, http.StatusBadRequest, &Error{Code: "bad_request", Message: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, setTimeout)
	defer cancel()
	env := pipeline.Envelope{Value: v, Payload: body, Time: time.Now()}
	switch err := s.r.Set(ctx, spec.Name, env); {
	case err == nil:
	case errors.Is(err, pipeline.ErrNotSettable):
		return Value{}, http.StatusForbidden, &Error{Code: "not_settable", Message: notSettable(s.r.Graph(), spec)}
	case errors.Is(err, buffer.ErrClosed):
		return Value{}, http.StatusServiceUnavailable, &Error{Code: "unavailable", Message: "the graph has stopped"}
	case errors.Is(err, context.DeadlineExceeded):
		return Value{}, http.StatusServiceUnavailable, &Error{Code: "unavailable", Message: "the record's queue stayed full: its readers do not keep up"}
	default:
		return Value{}, http.StatusServiceUnavailable, &Error{Code: "unavailable", Message: err.Error()}
	}
	return renderValue(spec.Name, env), http.StatusOK, nil
}

// notSettable explains why a record cannot be set.
func notSettable(g *pipeline.Graph, spec *pipeline.RecordSpec) string {
	writer := ""
	if len(spec.Inbound) > 0 {
		writer = "; it is written by its inbound link " + spec.Inbound[0].Raw
	}
	for _, p := range g.Pipelines() {
		if p.IntoRecord == spec.Name {
			writer = "; it is written by pipeline " + p.Name
		}
	}
	return fmt.Sprintf("record %q is not settable%s (a record with no other writer can be declared settable: add the statement settable to its record block)", spec.Name, writer)
}
