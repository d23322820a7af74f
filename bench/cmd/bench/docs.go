package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The README and bench/README.md carry a summary of the latest committed
// report between these markers. It is generated from the report's JSON by
// `bench -docs REPORT.json` (and at the end of every full run), never
// written by hand: TestDocsMatchLatestReport fails when the text between
// the markers differs from what the newest report in bench/results renders.
const (
	docsBegin = "<!-- bench:summary begin: generated from the report named below by `go run ./bench/cmd/bench -docs`; do not edit by hand -->"
	docsEnd   = "<!-- bench:summary end -->"
)

// docTarget is a file that carries a summary block.
type docTarget struct {
	path    string // relative to the module root
	resDir  string // link prefix from that file to bench/results
	verdict bool   // only rows with a verdict (met / not met), else every compared row
}

var docTargets = []docTarget{
	{path: "README.md", resDir: "bench/results/", verdict: true},
	{path: filepath.Join("bench", "README.md"), resDir: "results/"},
}

// summary renders the block for one file: the report's name and machine
// line, then its rows verbatim (the same mdRow the report uses).
func (r report) summary(stamp string, t docTarget) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Latest committed report: [`%s.md`](%s%s.md) (%s, %s, %s cores, GOMAXPROCS %s, load at start %s; medians of %d alternating rounds%s).",
		stamp, t.resDir, stamp, r.Date, r.Machine["cpu"], r.Machine["cores"], r.Machine["gomaxprocs"], r.Machine["loadavg_at_start"], r.Rounds,
		map[bool]string{true: ", quick run", false: ""}[r.Quick])
	if t.verdict {
		b.WriteString(" Rows with a target; every row of the run is in the report and in [bench/README.md](bench/README.md#latest-results).")
	} else {
		b.WriteString(" Every row compared with a baseline or a target.")
	}
	b.WriteString("\n\n")
	b.WriteString(mdHeader)
	for _, w := range r.Workloads {
		if t.verdict && w.Met == nil {
			continue
		}
		if !t.verdict && w.Met == nil && w.Baseline == "" {
			continue
		}
		b.WriteString(w.mdRow())
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\nSkipped in that run: %s\n", s)
	}
	return b.String()
}

// replaceBlock puts body between the markers of doc.
func replaceBlock(doc []byte, body string) ([]byte, error) {
	i := bytes.Index(doc, []byte(docsBegin))
	j := bytes.Index(doc, []byte(docsEnd))
	if i < 0 || j < 0 || j < i {
		return nil, errors.New("summary markers missing or out of order")
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(docsBegin)])
	out.WriteString("\n")
	out.WriteString(body)
	out.Write(doc[j:])
	return out.Bytes(), nil
}

// readReport loads a JSON report and returns it with its stamp (file name
// without extension).
func readReport(path string) (report, string, error) {
	var rep report
	b, err := os.ReadFile(path)
	if err != nil {
		return rep, "", err
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, "", fmt.Errorf("%s: %w", path, err)
	}
	return rep, strings.TrimSuffix(filepath.Base(path), ".json"), nil
}

// latestReport is the newest JSON report in dir (names are UTC stamps, so
// the last name in order is the newest).
func latestReport(dir string) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no report in %s", dir)
	}
	sort.Strings(names)
	return names[len(names)-1], nil
}

// updateDocs rewrites the summary blocks under root from the report.
func updateDocs(root, reportPath string) error {
	rep, stamp, err := readReport(reportPath)
	if err != nil {
		return err
	}
	for _, t := range docTargets {
		p := filepath.Join(root, t.path)
		doc, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out, err := replaceBlock(doc, rep.summary(stamp, t))
		if err != nil {
			return fmt.Errorf("%s: %w", t.path, err)
		}
		if err := os.WriteFile(p, out, 0o644); err != nil {
			return err
		}
		fmt.Printf("updated %s from %s\n", t.path, reportPath)
	}
	return nil
}
