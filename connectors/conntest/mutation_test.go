package conntest_test

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestReferenceMutations breaks the reference connector one way at a time
// and checks that the subtest guarding that behaviour fails: the suite's
// own test that each of its subtests can fail. Each mutation runs the one
// subtest in a child process (this test binary with CONNTEST_BREAK set).
func TestReferenceMutations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per mutation in child processes")
	}
	if mutation != "" {
		t.Skip("already a mutated child")
	}
	tests := []struct {
		mutation string // what is broken
		subtest  string // variant/subtest that must fail
	}{
		{"drop10", "live/RoundTrip"},                    // Publish drops every 10th record
		{"ackearly", "live/AckAfterAllShares"},          // acked when Dispatch returns, not when the last share is released
		{"noredeliver", "live/NackRedelivers"},          // a nack drops the message
		{"ignorectx", "live/PublishHonoursContext"},     // Publish waits for the broker without its context
		{"shared", "live/ConcurrentPublish"},            // concurrent publishes share a scratch message
		{"asynctwice", "live/AsyncPublishAcksOnce"},     // PublishAsync finishes its ack share twice
		{"nocopy", "live/AsyncPublishAcksOnce"},         // PublishAsync keeps the caller's payload buffer
		{"closenoflush", "live/CloseFlushes"},           // Close drops the lingering async batch
		{"closenoflush", "stored/CloseFlushes"},         // same, read back by a second instance
		{"leak", "live/CloseLeaksNoGoroutine"},          // Build starts a goroutine nothing stops
		{"alwaysready", "live/ReadinessDuringOutage"},   // Ready ignores the broker being down
		{"noresubscribe", "live/ReadinessDuringOutage"}, // subscriptions are not renewed after an outage
		{"notfinite", "stored/FiniteSourceEnds"},        // a finite Serve waits for cancellation at the end
		{"acceptbad", "live/BadLinkSettings"},           // unknown link settings are accepted
	}
	// The children mostly wait out the suite's timeouts: start them all at
	// once (t.Parallel would run only GOMAXPROCS of them at a time).
	outs := make([][]byte, len(tests))
	errs := make([]error, len(tests))
	var wg sync.WaitGroup
	for i, tt := range tests {
		wg.Go(func() {
			parts := strings.Split(tt.subtest, "/")
			run := "^TestReference$/^" + parts[0] + "$/^" + parts[1] + "$"
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), breakEnv+"="+tt.mutation)
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for i, tt := range tests {
		t.Run(tt.mutation+"/"+tt.subtest, func(t *testing.T) {
			out, err := string(outs[i]), errs[i]
			if err == nil || !strings.Contains(out, "--- FAIL: TestReference/"+tt.subtest) {
				t.Fatalf("with %s=%s, %s did not fail (exit %v):\n%s", breakEnv, tt.mutation, tt.subtest, err, out)
			}
			// Show what the suite said about the broken connector.
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "suite.go:") || strings.Contains(line, "harness.go:") || strings.Contains(line, "DATA RACE") {
					t.Log(strings.TrimSpace(line))
					break
				}
			}
		})
	}
}
