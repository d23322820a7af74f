package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
)

// This file: -against REV, the same run's before/after comparison. The
// CLI and this harness are built from REV (a git worktree in the scratch
// directory) and run as extra variants of W1 (CLI) and W3 (.flow),
// alternating with this build's in the same rounds, so a change's cost is
// measured on the same machine state, not across reports.

// before holds the binaries built from -against's revision.
type before struct {
	rev  string // as given
	cli  string // aimdb-flow CLI
	self string // this harness (its -child variants)
}

// buildBefore checks out rev into the scratch directory and builds the
// CLI and the harness there. The worktree is removed again; the binaries
// stay in cfg.dir/bin.
func buildBefore(ctx context.Context, cfg *config, rev string) (*before, error) {
	wt := filepath.Join(cfg.dir, "against")
	if out, err := exec.CommandContext(ctx, "git", "-C", cfg.root, "worktree", "add", "--detach", wt, rev).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("-against %s: git worktree add: %w\n%s", rev, err, out)
	}
	defer func() {
		exec.Command("git", "-C", cfg.root, "worktree", "remove", "--force", wt).Run()
	}()
	b := &before{rev: rev}
	for _, t := range []struct {
		pkg string
		out *string
	}{{"./cmd/aimdb-flow", &b.cli}, {"./bench/cmd/bench", &b.self}} {
		*t.out = filepath.Join(cfg.dir, "bin", "before-"+filepath.Base(t.pkg))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *t.out, t.pkg)
		cmd.Dir = wt
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("-against %s: go build %s: %w\n%s", rev, t.pkg, err, out)
		}
	}
	return b, nil
}

// beforeName names a variant run with the -against build.
func (b *before) name(variant string) string { return variant + " @" + b.rev }

// regressionRow reports this build against the -against build: the
// median of per-round throughput ratios, met at >= 0.97.
func regressionRow(workload, variant string, b *before, tput series) result {
	r := summarize(workload+": this build vs "+b.rev, variant, b.name(variant), "rec/s", tput[variant],
		perRound(tput, variant, b.name(variant)), "≥0.97× the build at "+b.rev, func(x float64) bool { return x >= 0.97 })
	r.Note = "same run, alternating rounds"
	return r
}

// perRound divides a's samples by b's, round by round.
func perRound(s series, a, b string) []float64 {
	out := make([]float64, len(s[a]))
	for i := range out {
		out[i] = s[a][i] / s[b][i]
	}
	return out
}
