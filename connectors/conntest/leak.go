package conntest

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
)

// goroutines returns the stack of every goroutine by goroutine id.
func goroutines() map[int64]string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		// "goroutine 42 [chan receive]:\n..."
		rest, ok := bytes.CutPrefix(g, []byte("goroutine "))
		if !ok {
			continue
		}
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			continue
		}
		id, err := strconv.ParseInt(string(rest[:i]), 10, 64)
		if err != nil {
			continue
		}
		out[id] = string(g)
	}
	return out
}

// newGoroutines lists the stacks of goroutines that are not in before and
// whose stack contains none of ignore.
func newGoroutines(before map[int64]string, ignore []string) []string {
	var out []string
next:
	for id, stack := range goroutines() {
		if _, ok := before[id]; ok {
			continue
		}
		for _, s := range ignore {
			if strings.Contains(stack, s) {
				continue next
			}
		}
		out = append(out, stack)
	}
	return out
}
