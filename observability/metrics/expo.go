package metrics

import (
	"bufio"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// expo writes the Prometheus text exposition format (version 0.0.4):
// families are written whole (HELP, TYPE, samples) and in a stable order.
type expo struct {
	w   *bufio.Writer
	err error
}

type label struct{ name, value string }

type sample struct {
	labels []label
	value  float64
}

type family struct {
	name, help, typ string
	samples         []sample
}

func (f *family) add(v float64, labels ...label) {
	f.samples = append(f.samples, sample{labels: labels, value: v})
}

func (e *expo) family(f *family) {
	if len(f.samples) == 0 {
		return
	}
	sort.SliceStable(f.samples, func(i, j int) bool { return labelKey(f.samples[i].labels) < labelKey(f.samples[j].labels) })
	e.str("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
	e.str("# TYPE " + f.name + " " + f.typ + "\n")
	for _, s := range f.samples {
		e.sample(f.name, s.labels, s.value)
	}
}

func (e *expo) sample(name string, labels []label, v float64) {
	e.str(name)
	if len(labels) > 0 {
		e.str("{")
		for i, l := range labels {
			if i > 0 {
				e.str(",")
			}
			e.str(l.name + `="` + escapeValue(l.value) + `"`)
		}
		e.str("}")
	}
	e.str(" " + formatFloat(v) + "\n")
}

func (e *expo) str(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *expo) flush() error {
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

func newExpo(w io.Writer) *expo { return &expo{w: bufio.NewWriter(w)} }

func labelKey(ls []label) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.name)
		b.WriteByte(0)
		b.WriteString(l.value)
		b.WriteByte(0)
	}
	return b.String()
}

var valueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeValue(s string) string { return valueEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
