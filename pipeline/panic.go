package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"strings"
)

// PanicError is what a panic in a stage, codec, key function or template
// becomes: the runner recovers it where it happened, so the record is
// dead-lettered (with this error as the reason) and counted, and the run
// goes on. Value is what was passed to panic; Stack summarises where.
type PanicError struct {
	Value any
	// Stack is a short summary of the panicking goroutine's frames
	// ("pkg.Func file.go:12 < pkg.Caller file.go:40 ..."), runtime frames
	// left out.
	Stack string
}

func (e *PanicError) Error() string {
	if e.Stack == "" {
		return fmt.Sprintf("panic: %v", e.Value)
	}
	return fmt.Sprintf("panic: %v [%s]", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error (a runtime error such
// as a failed type assertion, or a panic(err)).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// catch turns a panic into a *PanicError stored in *errp. It must be
// deferred directly (defer catch(&err)) so that its recover stops the
// panic.
func catch(errp *error) {
	if v := recover(); v != nil {
		*errp = newPanicError(v)
	}
}

// maxPanicFrames bounds the stack summary.
const maxPanicFrames = 4

func newPanicError(v any) *PanicError {
	var pcs [32]uintptr
	// Skip runtime.Callers, newPanicError and catch (or the deferred
	// closure); what follows is runtime.gopanic, then the panicking frames.
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	var parts []string
	for {
		f, more := frames.Next()
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") {
			parts = append(parts, fmt.Sprintf("%s %s:%d", shortName(f.Function), shortName(f.File), f.Line))
			if len(parts) == maxPanicFrames {
				break
			}
		}
		if !more {
			break
		}
	}
	return &PanicError{Value: v, Stack: strings.Join(parts, " < ")}
}

// shortName drops the directories of a function's package path or a file.
func shortName(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// decode runs a decoder; a panic in it becomes a *PanicError, so the
// message is dead-lettered like any undecodable payload.
func decode(d Decoder, payload []byte) (v any, err error) {
	defer catch(&err)
	return d.Decode(payload)
}

// runAsync runs an async stage (window, batch, throttle). A panic in the
// stage's own goroutine stops that stage instead of the process: Run
// returns a *PanicError, and every record that reaches the stage from then
// on is nacked (the source redelivers it; nothing is acked unprocessed), so
// the stages before it and the other pipelines keep running. Records the
// stage held when it panicked keep their ack shares unreleased, so they
// are never acknowledged either.
func runAsync(ctx context.Context, s AsyncStage, name string, in <-chan Envelope, emit Emit) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("stage %s: %w", name, newPanicError(v))
			for e := range in {
				e.Ack.Nack(err)
			}
		}
	}()
	return s.Run(ctx, in, emit)
}
