package dsl

import (
	"fmt"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Render draws a graph as Graphviz dot ("dot") or a Mermaid flowchart
// ("mermaid"): inbound links feed records, records feed pipelines (whose
// stages are listed), pipelines write records and outbound links.
func Render(g *pipeline.Graph, format string) (string, error) {
	var nodes []gnode
	var edges [][3]string // from, to, label
	ids := map[string]string{}
	id := func(kind, name, label, shape string) string {
		key := kind + ":" + name
		if v, ok := ids[key]; ok {
			return v
		}
		v := fmt.Sprintf("n%d", len(ids))
		ids[key] = v
		nodes = append(nodes, gnode{id: v, label: label, shape: shape})
		return v
	}
	for _, r := range g.Records() {
		label := r.Name + "\n" + r.Buffer.String()
		if r.Settable {
			label += "\nsettable"
		}
		rid := id("record", r.Name, label, "record")
		for _, l := range r.Inbound {
			edges = append(edges, [3]string{id("link", l.Raw, l.Raw, "link"), rid, codecName(l.Decoder)})
		}
		for _, l := range r.Outbound {
			edges = append(edges, [3]string{rid, id("link", l.Raw, l.Raw, "link"), codecName(l.Encoder)})
		}
	}
	for _, p := range g.Pipelines() {
		lines := []string{"pipeline " + p.Name}
		for _, s := range p.Stages {
			if st, ok := s.(fmt.Stringer); ok {
				lines = append(lines, st.String())
			} else if s != nil {
				lines = append(lines, s.Kind())
			}
		}
		if p.Workers > 1 {
			lines = append(lines, fmt.Sprintf("parallel %d", p.Workers))
		}
		pid := id("pipeline", p.Name, strings.Join(lines, "\n"), "pipeline")
		if p.Input != "" {
			edges = append(edges, [3]string{id("record", p.Input, p.Input, "record"), pid, ""})
		}
		if p.IntoRecord != "" {
			edges = append(edges, [3]string{pid, id("record", p.IntoRecord, p.IntoRecord, "record"), ""})
		}
		for _, l := range p.Outputs {
			edges = append(edges, [3]string{pid, id("link", l.Raw, l.Raw, "link"), codecName(l.Encoder)})
		}
		if l := p.DeadLetter; l != nil {
			edges = append(edges, [3]string{pid, id("link", l.Raw, l.Raw, "deadletter"), "dead letters"})
		}
	}
	if l := g.DeadLetter(); l != nil {
		id("link", l.Raw, "dead letters: "+l.Raw, "deadletter")
	}
	var b strings.Builder
	switch format {
	case "dot", "":
		b.WriteString("digraph aimdbflow {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n")
		for _, n := range nodes {
			shape := map[string]string{"record": "cylinder", "link": "box", "pipeline": "box", "deadletter": "note"}[n.shape]
			style := ""
			if n.shape == "pipeline" {
				style = ", style=rounded"
			}
			fmt.Fprintf(&b, "  %s [label=%s, shape=%s%s];\n", n.id, dotQuote(n.label), shape, style)
		}
		for _, e := range edges {
			if e[2] != "" {
				fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", e[0], e[1], dotQuote(e[2]))
			} else {
				fmt.Fprintf(&b, "  %s -> %s;\n", e[0], e[1])
			}
		}
		b.WriteString("}\n")
	case "mermaid":
		b.WriteString("flowchart LR\n")
		for _, n := range nodes {
			l := mermaidQuote(n.label)
			switch n.shape {
			case "record":
				fmt.Fprintf(&b, "  %s[(%s)]\n", n.id, l)
			case "pipeline":
				fmt.Fprintf(&b, "  %s(%s)\n", n.id, l)
			default:
				fmt.Fprintf(&b, "  %s[%s]\n", n.id, l)
			}
		}
		for _, e := range edges {
			if e[2] != "" {
				fmt.Fprintf(&b, "  %s -->|%s| %s\n", e[0], e[2], e[1])
			} else {
				fmt.Fprintf(&b, "  %s --> %s\n", e[0], e[1])
			}
		}
	default:
		return "", fmt.Errorf("unknown graph format %q (want dot or mermaid)", format)
	}
	return b.String(), nil
}

type gnode struct{ id, label, shape string }

func codecName(v any) string {
	if c, ok := v.(interface{ Name() string }); ok {
		return c.Name()
	}
	return ""
}

func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func mermaidQuote(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "\n", "<br/>", "`", "#96;")
	return `"` + r.Replace(s) + `"`
}
