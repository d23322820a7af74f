package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// keepAlive is how often an idle watch stream gets a comment line, so
// proxies and clients see the connection alive.
const keepAlive = 15 * time.Second

// watcher is one open watch stream.
type watcher struct {
	id       uint64
	patterns []string
	w        *pipeline.Watch
	since    time.Time
	sent     atomic.Uint64
}

// watchCounts is the number of open watches per record.
func (s *Server) watchCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, wt := range s.watchers {
		for _, n := range wt.w.Records() {
			out[n]++
		}
	}
	return out
}

func (s *Server) listWatchers(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make([]Watcher, 0, len(s.watchers))
	for _, wt := range s.watchers {
		// Read sent before dropped and queued: a value moves from queued
		// to sent, never back.
		sent := wt.sent.Load()
		out = append(out, Watcher{ID: wt.id, Patterns: wt.patterns, Records: wt.w.Records(), Since: wt.since,
			Sent: sent, Dropped: wt.w.Dropped(), Queued: len(wt.w.C())})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Watcher) int { return int(a.ID) - int(b.ID) })
	writeJSON(w, http.StatusOK, out)
}

// watchPatterns reads ?records=P,Q&records=R.
func watchPatterns(req *http.Request) ([]string, error) {
	return checkPatterns(queryPatterns(req), "?records=sensor.temp or ?records=sensor.*")
}

// queryPatterns returns the patterns of ?records=P,Q&records=R, unchecked.
func queryPatterns(req *http.Request) []string {
	var pats []string
	for _, v := range req.URL.Query()["records"] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				pats = append(pats, p)
			}
		}
	}
	return pats
}

// checkPatterns refuses no patterns (how to name them: example), too many
// and malformed ones.
func checkPatterns(pats []string, example string) ([]string, error) {
	if len(pats) == 0 {
		return nil, fmt.Errorf("name the records to watch: %s", example)
	}
	if len(pats) > maxPatterns {
		return nil, fmt.Errorf("at most %d patterns per watch", maxPatterns)
	}
	for _, p := range pats {
		if err := checkPattern(p); err != nil {
			return nil, err
		}
	}
	return pats, nil
}

// openFor opens the watch of a request on pats (their error, when
// reading them failed), answering the request itself when it cannot: a
// bad ?buffer or pattern (400), no record matched (404), too many watches
// (503). The caller closes the watch.
func (s *Server) openFor(w http.ResponseWriter, req *http.Request, pats []string, patErr error) (wt *watcher, names []string, capacity int, ok bool) {
	if patErr != nil {
		writeError(w, http.StatusBadRequest, "bad_request", patErr.Error())
		return nil, nil, 0, false
	}
	capacity, err := s.watchCapacity(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return nil, nil, 0, false
	}
	names = s.matching(pats)
	if len(names) == 0 {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no record matches %s", strings.Join(pats, ", ")))
		return nil, nil, 0, false
	}
	wt, ok = s.openWatch(pats, names, capacity)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "too_many_watchers", fmt.Sprintf("at most %d watches may be open", s.opts.MaxWatchers))
		return nil, nil, 0, false
	}
	return wt, names, capacity, true
}

func (s *Server) watch(w http.ResponseWriter, req *http.Request) {
	pats, err := watchPatterns(req)
	wt, names, capacity, ok := s.openFor(w, req, pats, err)
	if !ok {
		return
	}
	defer s.closeWatch(wt)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(event string, id uint64, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		if id > 0 {
			_, err = fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", event, id, data)
		} else {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		}
		if err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send("hello", 0, Hello{Records: names, Buffer: capacity}); err != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	var seq uint64
	for {
		select {
		case <-req.Context().Done():
			return
		case <-tick.C:
			_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case ev := <-wt.w.C():
			wt.sent.Add(1)
			seq++
			if err := send("value", seq, Event{Value: renderValue(ev.Record, ev.Env), Seq: seq, Dropped: wt.w.Dropped()}); err != nil {
				s.log.Debug("watch stream ended", "error", err)
				return
			}
		}
	}
}

// openWatch registers a watch unless MaxWatchers are open.
func (s *Server) openWatch(pats, names []string, capacity int) (*watcher, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.watchers) >= s.opts.MaxWatchers {
		return nil, false
	}
	pw, err := s.r.Watch(capacity, names...)
	if err != nil {
		return nil, false // names come from the graph: cannot happen
	}
	s.nextID++
	wt := &watcher{id: s.nextID, patterns: pats, w: pw, since: time.Now()}
	s.watchers[wt.id] = wt
	return wt, true
}

func (s *Server) closeWatch(wt *watcher) {
	wt.w.Close()
	s.mu.Lock()
	delete(s.watchers, wt.id)
	s.mu.Unlock()
}
