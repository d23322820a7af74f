// Package chart draws a benchmark report as a self-contained SVG image
// (hand-written SVG, no dependencies): a panel of ratios against their
// targets, a panel of latency percentiles on a log scale, and the scaling
// curve of throughput and memory against the number of pipelines.
package chart

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// Bar is one row of the ratio panel: a candidate's ratio to its baseline
// (or a value divided by its absolute target) with the target drawn as a
// tick across the row.
type Bar struct {
	Label    string
	Value    float64 // the ratio (median of per-round ratios)
	Min, Max float64 // spread of the per-round ratios (0, 0: none)
	Target   float64 // 0: no target
	Lower    bool    // lower is better (e.g. CPU per message)
	Met      *bool   // nil: no verdict
	Caption  string  // printed right of the bar
}

// Latency is one row of the latency panel, in microseconds.
type Latency struct {
	Label    string
	P50, P99 float64
}

// Point is one point of the scaling curve.
type Point struct {
	X          float64 // pipelines in the process
	Throughput float64 // records/s
	RSSMiB     float64
}

// Report is everything drawn.
type Report struct {
	Title, Subtitle string
	Bars            []Bar
	Latencies       []Latency
	Scaling         []Point
}

const (
	width  = 1100
	labelW = 380 // left column for row labels
	plotX0 = labelW + 10
	plotX1 = width - 190
	laneH  = 22
)

var (
	green = "#2e9d4f"
	red   = "#d0433a"
	grey  = "#8a8f98"
	blue  = "#3a6fd0"
	amber = "#d08a1c"
)

// SVG renders the report.
func (r Report) SVG() []byte {
	var body bytes.Buffer
	y := 20.0
	text(&body, 16, y+12, 18, "bold", "start", r.Title)
	y += 22
	text(&body, 16, y+12, 12, "normal", "start", r.Subtitle)
	y += 30
	if len(r.Bars) > 0 {
		y = r.barPanel(&body, y)
	}
	if len(r.Latencies) > 0 {
		y = r.latencyPanel(&body, y+20)
	}
	if len(r.Scaling) > 1 {
		y = r.scalingPanel(&body, y+20)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`+"\n",
		width, y+20, width, y+20)
	fmt.Fprintf(&out, `<rect x="0" y="0" width="%d" height="%.0f" fill="#ffffff"/>`+"\n", width, y+20)
	out.Write(body.Bytes())
	out.WriteString("</svg>\n")
	return out.Bytes()
}

func (r Report) barPanel(b *bytes.Buffer, y float64) float64 {
	text(b, 16, y+12, 14, "bold", "start", "Ratio to the baseline named in the report (bar: median of per-round ratios, whisker: min–max; black tick: target)")
	y += 24
	xmax := 1.2
	for _, bar := range r.Bars {
		// Whiskers do not stretch the axis (one noisy round would squash
		// every bar); they are clipped at its end.
		xmax = max(xmax, bar.Value*1.1, bar.Target*1.15)
	}
	xmax = math.Min(xmax, 5)
	xmax = niceCeil(xmax)
	sx := func(v float64) float64 { return plotX0 + (plotX1-plotX0)*math.Min(v, xmax)/xmax }
	top := y
	h := float64(len(r.Bars)) * laneH
	// Grid.
	step := niceStep(xmax / 6)
	for v := 0.0; v <= xmax+1e-9; v += step {
		x := sx(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e5e8"/>`+"\n", x, top, x, top+h)
		text(b, x, top+h+14, 11, "normal", "middle", trimFloat(v)+"×")
	}
	x1 := sx(1)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="4 3"/>`+"\n", x1, top-4, x1, top+h)
	for i, bar := range r.Bars {
		ly := top + float64(i)*laneH
		if i%2 == 1 {
			fmt.Fprintf(b, `<rect x="8" y="%.1f" width="%d" height="%d" fill="#f6f7f9"/>`+"\n", ly, width-16, laneH)
		}
		text(b, labelW, ly+15, 11, "normal", "end", shorten(bar.Label, 62))
		color := grey
		if bar.Met != nil {
			color = map[bool]string{true: green, false: red}[*bar.Met]
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s" opacity="0.85"><title>%s</title></rect>`+"\n",
			float64(plotX0), ly+4, math.Max(sx(bar.Value)-plotX0, 1), laneH-8, color, esc(bar.Label+": "+bar.Caption))
		if bar.Max > 0 {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222" stroke-width="1"/>`+"\n", sx(bar.Min), ly+laneH/2, sx(bar.Max), ly+laneH/2)
		}
		if bar.Target > 0 {
			tx := sx(bar.Target)
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="3"/>`+"\n", tx, ly+1, tx, ly+laneH-1)
		}
		caption := bar.Caption
		if bar.Target > 0 {
			op := "≥"
			if bar.Lower {
				op = "≤"
			}
			caption += fmt.Sprintf(" (target %s%s)", op, trimFloat(bar.Target))
		}
		text(b, plotX1+8, ly+15, 11, "normal", "start", shorten(caption, 30))
	}
	y = top + h + 22
	legend(b, 16, y, []string{green, red, grey}, []string{"target met", "target missed", "no target"})
	return y + 16
}

func (r Report) latencyPanel(b *bytes.Buffer, y float64) float64 {
	text(b, 16, y+12, 14, "bold", "start", "Latency percentiles, microseconds (log scale): ● p50  ◆ p99")
	y += 24
	lo, hi := math.Inf(1), 0.0
	for _, l := range r.Latencies {
		for _, v := range []float64{l.P50, l.P99} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		return y
	}
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1 <= d0 {
		d1 = d0 + 1
	}
	sx := func(v float64) float64 {
		if v <= 0 {
			return plotX0
		}
		return plotX0 + (plotX1-plotX0)*(math.Log10(v)-d0)/(d1-d0)
	}
	top := y
	h := float64(len(r.Latencies)) * laneH
	for d := d0; d <= d1; d++ {
		x := sx(math.Pow(10, d))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e5e8"/>`+"\n", x, top, x, top+h)
		text(b, x, top+h+14, 11, "normal", "middle", fmtMicros(math.Pow(10, d)))
	}
	for i, l := range r.Latencies {
		ly := top + float64(i)*laneH
		if i%2 == 1 {
			fmt.Fprintf(b, `<rect x="8" y="%.1f" width="%d" height="%d" fill="#f6f7f9"/>`+"\n", ly, width-16, laneH)
		}
		text(b, labelW, ly+15, 11, "normal", "end", shorten(l.Label, 62))
		cy := ly + laneH/2
		if l.P50 > 0 && l.P99 > 0 {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-width="2"/>`+"\n", sx(l.P50), cy, sx(l.P99), cy)
		}
		if l.P50 > 0 {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"><title>p50 %s</title></circle>`+"\n", sx(l.P50), cy, blue, esc(fmtMicros(l.P50)))
		}
		if l.P99 > 0 {
			x := sx(l.P99)
			fmt.Fprintf(b, `<path d="M %.1f %.1f l 6 6 l -6 6 l -6 -6 z" fill="%s"><title>p99 %s</title></path>`+"\n", x, cy-6, amber, esc(fmtMicros(l.P99)))
		}
		text(b, plotX1+8, ly+15, 11, "normal", "start", fmt.Sprintf("p50 %s, p99 %s", fmtMicros(l.P50), fmtMicros(l.P99)))
	}
	return top + h + 24
}

func (r Report) scalingPanel(b *bytes.Buffer, y float64) float64 {
	text(b, 16, y+12, 14, "bold", "start", "W1 with N pipelines in one process: total throughput (blue, left axis) and peak RSS (amber, right axis)")
	y += 24
	const ph = 220.0
	top, bottom := y+6, y+6+ph
	x0, x1 := float64(plotX0), float64(plotX1)
	xs := make([]float64, len(r.Scaling))
	maxT, maxR := 0.0, 0.0
	for i, p := range r.Scaling {
		xs[i] = math.Log2(math.Max(p.X, 1))
		maxT, maxR = math.Max(maxT, p.Throughput), math.Max(maxR, p.RSSMiB)
	}
	lx, hx := xs[0], xs[0]
	for _, v := range xs {
		lx, hx = math.Min(lx, v), math.Max(hx, v)
	}
	if hx == lx {
		hx = lx + 1
	}
	// Four grid divisions with round labels on both axes.
	maxT, maxR = 4*niceStep(maxT*1.05/4), 4*niceStep(maxR*1.05/4)
	px := func(v float64) float64 { return x0 + (x1-x0)*(v-lx)/(hx-lx) }
	pyT := func(v float64) float64 { return bottom - ph*v/maxT }
	pyR := func(v float64) float64 { return bottom - ph*v/maxR }
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#ccc"/>`+"\n", x0, top, x1-x0, ph)
	for i := 0; i <= 4; i++ {
		v := maxT * float64(i) / 4
		yy := pyT(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x0, yy, x1, yy)
		text(b, x0-6, yy+4, 11, "normal", "end", fmtRate(v))
		text(b, x1+6, yy+4, 11, "normal", "start", fmt.Sprintf("%.0f MiB", maxR*float64(i)/4))
	}
	for i, p := range r.Scaling {
		text(b, px(xs[i]), bottom+14, 11, "normal", "middle", trimFloat(p.X))
	}
	text(b, (x0+x1)/2, bottom+30, 11, "normal", "middle", "pipelines in the process (log scale)")
	var pt, pr []string
	for i, p := range r.Scaling {
		pt = append(pt, fmt.Sprintf("%.1f,%.1f", px(xs[i]), pyT(p.Throughput)))
		pr = append(pr, fmt.Sprintf("%.1f,%.1f", px(xs[i]), pyR(p.RSSMiB)))
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"/>`+"\n", strings.Join(pt, " "), blue)
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5" stroke-dasharray="6 3"/>`+"\n", strings.Join(pr, " "), amber)
	for i, p := range r.Scaling {
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s pipelines: %s rec/s</title></circle>`+"\n", px(xs[i]), pyT(p.Throughput), blue, trimFloat(p.X), fmtRate(p.Throughput))
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s pipelines: %.1f MiB</title></circle>`+"\n", px(xs[i]), pyR(p.RSSMiB), amber, trimFloat(p.X), p.RSSMiB)
	}
	return bottom + 40
}

func legend(b *bytes.Buffer, x, y float64, colors, labels []string) {
	for i := range colors {
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", x, y, colors[i])
		text(b, x+16, y+10, 11, "normal", "start", labels[i])
		x += 130
	}
}

func text(b *bytes.Buffer, x, y float64, size int, weight, anchor, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%d" font-weight="%s" text-anchor="%s" fill="#222">%s</text>`+"\n", x, y, size, weight, anchor, esc(s))
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// niceStep rounds a grid step up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// niceCeil rounds v up to a multiple of a nice step.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	s := niceStep(v / 5)
	return math.Ceil(v/s) * s
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func fmtMicros(us float64) string {
	switch {
	case us <= 0:
		return "–"
	case us >= 1e6:
		return trimFloat(us/1e6) + " s"
	case us >= 1e3:
		return trimFloat(us/1e3) + " ms"
	case us >= 1:
		return trimFloat(us) + " µs"
	default:
		return trimFloat(us*1e3) + " ns"
	}
}

func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(v/1e6) + "M/s"
	case v >= 1e3:
		return trimFloat(v/1e3) + "k/s"
	default:
		return trimFloat(v) + "/s"
	}
}
