package pipeline

import "errors"

// ErrNotRunning is the readiness of a connector while its graph is not
// running (before Run built it, or after the graph stopped).
var ErrNotRunning = errors.New("not running")

// ConnectorStatus is one connector's state, for health endpoints and
// metrics.
type ConnectorStatus struct {
	Name   string
	Scheme string
	// Reports is true when the connector implements Readiness (otherwise
	// Ready is nil while the graph runs: the connector cannot tell).
	Reports bool
	// Ready is nil when the connector is connected, ErrNotRunning when the
	// graph is not running, or the connector's own reason.
	Ready error
}

// Connectors reports every connector's state, in declaration order. It is
// safe to call at any time, concurrently with Run.
func (r *Runner) Connectors() []ConnectorStatus {
	running := r.running.Load()
	out := make([]ConnectorStatus, 0, len(r.connList))
	for _, c := range r.connList {
		st := ConnectorStatus{Name: c.name, Scheme: c.spec.b.Scheme(), Ready: ErrNotRunning}
		if running {
			// c.conn was set before running was stored: safe to read.
			st.Ready = nil
			if rd, ok := c.conn.(Readiness); ok {
				st.Reports = true
				st.Ready = rd.Ready()
			}
		}
		out = append(out, st)
	}
	return out
}

// Running reports whether Run is running the graph (sources started and
// not yet stopping).
func (r *Runner) Running() bool { return r.running.Load() }
