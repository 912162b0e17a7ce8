// Package leaktest checks, at the end of a package's tests, that no
// goroutine is left behind (go.uber.org/goleak), allowing for the timer
// goroutines protoactor-go starts to throttle its logs: they cannot be
// stopped and end on their own after their period (one second for dead
// letters, one minute for cluster gossip). Their closure names change with
// inlining, so they are matched by the function they come from.
package leaktest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// throttleMarker is in the name of every protoactor log-throttle timer.
const throttleMarker = "github.com/asynkron/protoactor-go/"

// VerifyTestMain runs the tests, then fails the package if goroutines
// other than protoactor's throttle timers are still running after a grace
// period of five seconds.
func VerifyTestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		leaked := leftovers()
		for deadline := time.Now().Add(5 * time.Second); len(leaked) > 0 && time.Now().Before(deadline); leaked = leftovers() {
			time.Sleep(100 * time.Millisecond) // polling interval
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leaktest: %d goroutines left after the tests:\n\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// leftovers lists the goroutines goleak finds, minus protoactor's
// throttle timers. goleak's error text lists one goroutine per
// "Goroutine N in state S, with F on top of the stack:" block.
func leftovers() []string {
	err := goleak.Find()
	if err == nil {
		return nil
	}
	text := strings.TrimSuffix(err.Error(), "]")
	if i := strings.Index(text, "["); i >= 0 {
		text = text[i+1:]
	}
	var out []string
	for _, g := range strings.Split(text, "\n Goroutine ") {
		head, _, _ := strings.Cut(g, "\n")
		if strings.Contains(head, throttleMarker) && strings.Contains(head, "Throttle") {
			continue
		}
		out = append(out, g)
	}
	return out
}
