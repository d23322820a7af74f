package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aimdb-dev/aimdb-flow/bench/w1"
)

func main() {
	for i := 0; i < 2; i++ {
		t := time.Now()
		n, err := w1.Baseline("/tmp/fl/w1.jsonl", "/tmp/fl/w1-base.jsonl")
		fmt.Println("baseline", n, err, time.Since(t))
		t = time.Now()
		_, err = w1.Pipeline(context.Background(), "/tmp/fl/w1.jsonl", "/tmp/fl/w1-pipe.jsonl", 1)
		fmt.Println("goapi", err, time.Since(t))
	}
}
