package dsl

import (
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/expr"
)

// This file: the statements a pipeline block may hold, one table entry
// each. A new stage is one entry here (and its documentation in
// docs/dsl.md).

// pipelineStmt is one pipeline statement.
type pipelineStmt struct {
	// reshapes: after this statement the value's shape is unknown, so
	// schema checks of later expressions stop.
	reshapes bool
	// compile reads the statement's arguments and adds to the pipeline.
	compile func(pc *pipeCtx, b *args, st *Stmt)
}

// pipeCtx is the state of one pipeline block being compiled.
type pipeCtx struct {
	c    *compiler
	ps   *pipeline.PipelineSpec
	name string
	seen map[string]pipeline.Pos // statements allowed once: where first
	// pending holds the assignments of the last set stage, which a
	// following set joins (one copy of the value); pendingAt is that
	// stage's index + 1.
	pending   []expr.Assignment
	pendingAt int
}

// once reports whether st is the first of its kind, reporting it if not.
func (pc *pipeCtx) once(st *Stmt) bool {
	if prev, dup := pc.seen[st.Kw.Text]; dup {
		pc.c.errorf(st.Kw.Pos, "pipeline %s: %s given twice (first at %s)", pc.name, st.Kw.Text, prev)
		return false
	}
	pc.seen[st.Kw.Text] = st.Kw.Pos
	return true
}

// add appends a stage placed at st.
func (pc *pipeCtx) add(s pipeline.Stage, st *Stmt) { pc.ps.Add(s, pipeline.At(st.Kw.Pos)) }

// pipelineKeywords are pipelineStatements' keys, in the order messages
// list them.
var pipelineKeywords = []string{"from", "filter", "map", "set", "log", "dedupe", "batch", "window", "split", "throttle",
	"parallel", "decode", "encode", "into", "to", "deadletter"}

var pipelineStatements = map[string]pipelineStmt{
	"from": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		if r, rpos, ok := b.ident("an input record, e.g. from sensor.temp"); ok && pc.once(st) {
			pc.ps.From(r, pipeline.At(rpos))
		}
		b.end()
	}},
	"into": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		if r, rpos, ok := b.ident("an output record, e.g. into alerts.hot"); ok && pc.once(st) {
			pc.ps.Into(r, pipeline.At(rpos))
		}
		b.end()
	}},
	"filter": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		if p, ok := b.expr(expr.Bool); ok {
			pc.add(expr.Filter(p), st)
		}
		b.end()
	}},
	"map": {reshapes: true, compile: func(pc *pipeCtx, b *args, st *Stmt) {
		if p, ok := b.expr(expr.Any); ok {
			pc.add(expr.Map(p), st)
		}
		b.end()
	}},
	"set": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		field, _, ok1 := b.ident("a field name, e.g. set alert `true`")
		p, ok2 := b.expr(expr.Any)
		b.end()
		if !ok1 || !ok2 {
			return
		}
		as := expr.Assignment{Field: field, Expr: p}
		if len(pc.pending) > 0 && pc.pendingAt == len(pc.ps.Stages) {
			pc.pending = append(pc.pending, as)
			pc.ps.Stages[len(pc.ps.Stages)-1] = expr.Set(pc.pending...)
			return
		}
		pc.pending = []expr.Assignment{as}
		pc.add(expr.Set(as), st)
		pc.pendingAt = len(pc.ps.Stages)
	}},
	"log": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		msg := "record"
		if b.more() {
			if m, _, ok := b.str("a log message"); ok {
				msg = m
			}
		}
		b.end()
		pc.add(stages.Log(pc.c.opts.Logger, pc.name, msg), st)
	}},
	"dedupe": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		p, ok := b.expr(expr.Any)
		n := 1024
		if b.more() {
			n, _ = b.positive("the number of recent keys remembered")
		}
		b.end()
		if ok {
			pc.add(stages.Dedupe(expr.Key(p), n), st)
		}
	}},
	"batch": {reshapes: true, compile: func(pc *pipeCtx, b *args, st *Stmt) {
		n, ok := b.positive("a batch size, e.g. batch 100 every 1s")
		var every time.Duration
		if b.more() && b.keyword("every") {
			every, _ = b.duration("a flush interval, e.g. every 1s")
		}
		b.end()
		if ok {
			pc.add(stages.Batch(n, every), st)
		}
	}},
	"window": {reshapes: true, compile: func(pc *pipeCtx, b *args, st *Stmt) {
		key, win := pc.c.window(b)
		if key != nil {
			pc.add(key, st)
		}
		if win != nil {
			pc.add(win, st)
		}
	}},
	"split": {reshapes: true, compile: func(pc *pipeCtx, b *args, st *Stmt) {
		var list func(env *pipeline.Envelope) (any, error)
		if b.more() {
			if p, ok := b.expr(expr.Any); ok {
				list = p.Eval
			}
		}
		b.end()
		pc.add(stages.Split(list), st)
	}},
	"throttle": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		n, ok1 := b.positive("a count, e.g. throttle 100 per 1s")
		ok2 := b.keyword("per")
		var per time.Duration
		ok3 := false
		if ok2 {
			per, ok3 = b.duration("a period, e.g. throttle 100 per 1s")
		}
		b.end()
		if ok1 && ok2 && ok3 {
			pc.add(stages.Throttle(n, per), st)
		}
	}},
	"parallel": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		if n, ok := b.positive("a worker count, e.g. parallel 4"); ok && pc.once(st) {
			pc.ps.Parallel(n)
		}
		b.end()
	}},
	"decode": {reshapes: true, compile: func(pc *pipeCtx, b *args, st *Stmt) {
		if cd, ok := b.codecEnd(); ok {
			pc.add(stages.Decode(cd), st)
		}
	}},
	"encode": {reshapes: true, compile: func(pc *pipeCtx, b *args, st *Stmt) {
		if cd, ok := b.codecEnd(); ok {
			pc.add(stages.Encode(cd), st)
		}
	}},
	"to": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		link, lpos, ok := b.str("an outbound link, e.g. to \"mqtt://alerts/{device}\" encode json")
		if !ok {
			return
		}
		ls := b.linkSettings(false, false)
		pc.ps.To(link, ls.enc, ls.outOpts(lpos)...)
	}},
	"deadletter": {compile: func(pc *pipeCtx, b *args, st *Stmt) {
		link, lpos, ok := b.str("a dead-letter link, e.g. deadletter \"file:///tmp/dead.jsonl\"")
		if !ok || !pc.once(st) {
			return
		}
		ls := b.linkSettings(false, true)
		pc.ps.DeadLetterTo(link, ls.enc, ls.outOpts(lpos)...)
	}},
}

// codecEnd reads a codec name that ends the statement.
func (a *args) codecEnd() (pipeline.Codec, bool) {
	cd, ok := a.codec()
	a.end()
	return cd, ok
}
