package gossip

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakGrace is how long TestMain lets goroutines end after the tests.
// memberlist's Shutdown returns while a failure probe may still wait for its
// ack timer: the probe interval (1s here), scaled by Lifeguard's awareness
// up to 8 times. Anything still running after this is a leak.
const leakGrace = 15 * time.Second

// TestMain fails the package if any goroutine that a Gossip or memberlist
// started outlives the tests (plus leakGrace).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := findLeaks(leakGrace); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// findLeaks polls goleak until no unexpected goroutine is left or grace
// passes, and returns the last finding.
func findLeaks(grace time.Duration) error {
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := goleak.Find()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}
