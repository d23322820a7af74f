package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/aimdb-dev/aimdb-flow/bench/w3kafka"
)

// W3 variants, in the order they alternate within a round.
const (
	w3KafkaGo  = "w3-kafkago"
	w3Flow     = "w3-flow"
	w3Pipeline = "w3-pipeline"
	w3Franz    = "w3-franz"
)

var w3Names = map[string]string{
	w3KafkaGo:  "kafka-go loop (async writer, watermark commits)",
	w3Flow:     "aimdb-flow pipeline as a .flow writes it",
	w3Pipeline: "aimdb-flow pipeline, Go API on raw bytes",
	w3Franz:    "franz-go loop (async produce, marked commits)",
}

// w3Compare is how each variant's output is verified: the .flow pipeline
// re-encodes values, the others forward their bytes.
var w3Compare = map[string]w3kafka.Compare{w3Flow: w3kafka.CompareJSON}

// runW3 starts an in-process kfake cluster (Kafka wire protocol on a
// loopback port), fills the input topic once, and alternates the
// hand-written kafka-go loop, the .flow pipeline (w3kafka.Flow), the
// Go-API pipeline on raw bytes and the hand-written franz-go loop, each in
// a child process with a fresh consumer group and output topic. After
// every run the harness verifies the output topic record by record and the
// group's commits (w3kafka.Verify; the .flow pipeline's values as JSON).
func runW3(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(1_000_000, 100_000)
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
	extra := series{}
	var mkWith func(bin, name, v string) abRun
	mk := func(v string) abRun { return mkWith(cfg.self, v, v) }
	mkWith = func(bin, name, v string) abRun {
		return abRun{name, func(ctx context.Context, round int) (childRun, error) {
			tag := strings.NewReplacer(" ", "-", "@", "").Replace(name)
			job := w3kafka.Job{Brokers: c.ListenAddrs(), Group: fmt.Sprintf("w3-%s-%d", tag, round),
				Output: fmt.Sprintf("w3-out-%s-%d", tag, round), Records: n, Expect: pass, Compare: w3Compare[v]}
			if err := w3kafka.CreateTopic(ctx, job.Brokers, job.Output, w3kafka.Partitions); err != nil {
				return childRun{}, err
			}
			cr, err := spawnBin(ctx, cfg, bin, 0, v, "-brokers", brokers, "-group", job.Group,
				"-output", job.Output, "-n", strconv.Itoa(n), "-expect", strconv.Itoa(pass))
			if err != nil {
				return cr, err
			}
			ck, err := w3kafka.Verify(ctx, job)
			if err != nil {
				return cr, fmt.Errorf("%s round %d: %w", v, round+1, err)
			}
			if err := w3kafka.DeleteTopic(ctx, job.Brokers, job.Output); err != nil {
				return cr, fmt.Errorf("delete %s: %w", job.Output, err)
			}
			// Verify found every passing record once, and nothing else
			// beyond at-least-once repeats, which are reported.
			cr.Records = ck.Out - ck.Duplicates
			extra.add(name+"/dups", float64(ck.Duplicates))
			extra.add(name+"/wall", cr.Extra["wall_s"])
			extra.add(name+"/lag", cr.Extra["commit_lag_ms"])
			// Throughput is measured until the output is complete (the
			// child's own clock), not until process exit, which adds the
			// last commit interval, the group leave and process start.
			cr.Wall = secs(cr.Extra["work_s"])
			return cr, nil
		}}
	}
	variants := []abRun{mk(w3KafkaGo), mk(w3Flow), mk(w3Pipeline), mk(w3Franz)}
	if b := cfg.before; b != nil {
		variants = append(variants, mkWith(b.self, b.name(w3Flow), w3Flow))
	}
	tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, variants)
	if err != nil {
		return nil, err
	}
	wl := fmt.Sprintf("W3 Kafka (kfake) consume→filter→produce, %d records", n)
	details := func(v string) map[string]float64 {
		var dups float64
		for _, d := range extra[v+"/dups"] {
			dups += d
		}
		return map[string]float64{"cpu ns/rec": median(cpu[v]), "RSS MiB": median(rss[v]),
			"rec/s incl. final commit": float64(n) / median(extra[v+"/wall"]),
			"commit lag ms":            median(extra[v+"/lag"]), "duplicates (all rounds)": dups}
	}
	// perRound divides a's samples by b's, round by round.
	base := summarize(wl, w3Names[w3KafkaGo], "", "rec/s", tput[w3KafkaGo], nil, "", nil)
	base.Extra = details(w3KafkaGo)
	base.Note = "primary baseline"

	cpuRatio := median(perRound(cpu, w3Flow, w3KafkaGo))
	flow := summarize(wl, w3Names[w3Flow], w3Names[w3KafkaGo], "rec/s", tput[w3Flow], ratios[w3Flow],
		"≥1.0× rec/s and ≤1.2× CPU/rec", func(x float64) bool { return x >= 1.0 && cpuRatio <= 1.2 })
	flow.Goal = 1.0
	flow.Extra = details(w3Flow)
	flow.Extra["cpu/rec vs kafka-go loop"] = cpuRatio
	flow.Note = "candidate: bench/w3kafka/w3.flow loaded with dsl.Load (brokers, group, topics via ${...}): " +
		"decode json, filter `temp > 25.0` (expr-lang), encode json; output verified as JSON (fields and values)"

	raw := summarize(wl, w3Names[w3Pipeline], w3Names[w3KafkaGo], "rec/s", tput[w3Pipeline], ratios[w3Pipeline], "", nil)
	raw.Extra = details(w3Pipeline)
	raw.Extra["cpu/rec vs kafka-go loop"] = median(perRound(cpu, w3Pipeline, w3KafkaGo))
	raw.Note = "Go API, raw bytes and a fastjson filter stage: the connector path alone"

	franz := summarize(wl, w3Names[w3Franz], w3Names[w3KafkaGo], "rec/s", tput[w3Franz], ratios[w3Franz], "", nil)
	franz.Extra = details(w3Franz)
	franz.Extra["cpu/rec vs kafka-go loop"] = median(perRound(cpu, w3Franz, w3KafkaGo))
	franz.Note = "reference: the practical limit, no target"

	vsFranz := summarize(wl, w3Names[w3Flow], w3Names[w3Franz], "rec/s", tput[w3Flow], perRound(tput, w3Flow, w3Franz), "", nil)
	vsFranz.Extra = map[string]float64{"cpu/rec vs franz-go loop": median(perRound(cpu, w3Flow, w3Franz))}
	vsFranz.Note = "reference, no target"
	res := []result{base, flow, raw, franz, vsFranz}
	if b := cfg.before; b != nil {
		res = append(res, regressionRow(wl, w3Flow, b, tput))
	}
	return res, nil
}
