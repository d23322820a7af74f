package flowbench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText prints the report as aligned tables.
func (r *Report) WriteText(w io.Writer) error {
	pace := "unpaced (as fast as the pipelines take them)"
	if r.Rate > 0 {
		pace = fmt.Sprintf("paced at %s/s per source", num(r.Rate))
	}
	fmt.Fprintf(w, "aimdb-flow bench %s: %d records per source, %s, %s\n",
		strings.Join(r.Files, " "), r.Records, pace, r.Duration.Round(time.Millisecond))
	if r.TimedOut {
		fmt.Fprintf(w, "warning: the run timed out; figures cover what was processed until then\n")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nSOURCES\tRECORD\tGENERATED\tRECEIVED\tDECODE ERRORS\tREC/S\n")
	for _, s := range r.Sources {
		gen := fmt.Sprint(s.Generated)
		if s.Loopback {
			gen = "(loopback)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", s.Link, s.Record, gen, s.Messages, s.Errors, num(s.PerSec))
	}
	fmt.Fprintf(tw, "\nPIPELINE / STAGE\tIN\tERRORS\tREC/S\tP50\tP99\tMAX\tMEAN\n")
	for _, p := range r.Pipelines {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\t\t\t(out %d)\n", p.Name, p.In, p.Errors, num(p.PerSec), p.Out)
		for _, s := range p.Stages {
			l := s.Latency
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.In, s.Errors, num(s.PerSec), dur(l.P50), dur(l.P99), dur(l.Max), dur(l.Mean))
		}
	}
	fmt.Fprintf(tw, "\nSINKS (discarded)\tFROM\tMESSAGES\tERRORS\tREC/S\tPUBLISH P50\tEND-TO-END P50\tP99\tMAX\n")
	for _, s := range r.Sinks {
		link := s.Link
		if s.Loopback {
			link += " (looped back)"
		}
		e := s.EndToEnd
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", link, s.Owner, s.Messages, s.Errors, num(s.PerSec), dur(s.Publish.P50), dur(e.P50), dur(e.P99), dur(e.Max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\ndead letters %d, unrouted %d, dropped by buffers %d\n"+
		"Stage latency is the stage's hop; fused stages run inside the one before, so a stage's figure includes the stages after it.\n"+
		"End-to-end is from generation to the publish call, including time waiting in buffers.\n",
		r.DeadLetters, r.Unrouted, r.Dropped)
	return err
}

func num(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}
