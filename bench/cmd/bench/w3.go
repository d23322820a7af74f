package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/aimdb-dev/aimdb-flow/bench/w3kafka"
)

// runW3 starts an in-process kfake cluster (Kafka wire protocol on a
// loopback port), fills the input topic once, and alternates the
// hand-written kafka-go loop and the pipeline, each in a child process
// with a fresh consumer group and output topic.
func runW3(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(300_000, 30_000)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(listenLoopback))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	pass, err := w3kafka.Generate(ctx, c.ListenAddrs(), n)
	if err != nil {
		return nil, err
	}
	mk := func(v string) abRun {
		return abRun{v, func(ctx context.Context, round int) (childRun, error) {
			out := fmt.Sprintf("w3-out-%s-%d", v, round)
			if err := w3kafka.CreateTopic(ctx, c.ListenAddrs(), out, w3kafka.Partitions); err != nil {
				return childRun{}, err
			}
			cr, err := spawn(ctx, cfg, 0, v, "-brokers", brokers, "-group", fmt.Sprintf("w3-%s-%d", v, round),
				"-output", out, "-n", strconv.Itoa(n), "-expect", strconv.Itoa(pass))
			if err != nil {
				return cr, err
			}
			if cr.Records < pass {
				return cr, fmt.Errorf("%s produced %d records, want at least %d", v, cr.Records, pass)
			}
			cr.Records = pass // at-least-once: redeliveries may add duplicates
			// Throughput is measured until the output is complete (the
			// child's own clock), not process exit: both variants commit
			// every second, which would quantize the wall time.
			cr.Wall = secs(cr.Extra["work_s"])
			return cr, nil
		}}
	}
	variants := []abRun{mk("w3-baseline"), mk("w3-pipeline")}
	// alternate divides by Wall: give it the work time, keep the rest in Extra.
	extra := series{}
	wrapped := make([]abRun, len(variants))
	for i, v := range variants {
		wrapped[i] = abRun{v.name, func(ctx context.Context, round int) (childRun, error) {
			cr, err := v.run(ctx, round)
			if err == nil {
				extra.add(v.name+"/wall", cr.Extra["wall_s"])
				extra.add(v.name+"/lag", cr.Extra["commit_lag_ms"])
			}
			return cr, err
		}}
	}
	tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, wrapped)
	if err != nil {
		return nil, err
	}
	wl := fmt.Sprintf("W3 Kafka (kfake) consume→filter→produce, %d records", n)
	var res []result
	for _, v := range variants {
		var r result
		name := map[string]string{"w3-baseline": "hand-written kafka-go loop", "w3-pipeline": "aimdb-flow pipeline"}[v.name]
		if v.name == "w3-baseline" {
			r = summarize(wl, name, "", "rec/s", tput[v.name], nil, "", nil)
		} else {
			r = summarize(wl, name, "hand-written kafka-go loop", "rec/s", tput[v.name], ratios[v.name], "≥0.90×",
				func(x float64) bool { return x >= 0.9 })
			r.Goal = 0.9
		}
		r.Extra = map[string]float64{"cpu ns/rec": median(cpu[v.name]), "RSS MiB": median(rss[v.name]),
			"rec/s incl. final commit": float64(n) / median(extra[v.name+"/wall"]), "commit lag ms": median(extra[v.name+"/lag"])}
		res = append(res, r)
	}
	return res, nil
}
