package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/switchboard-pbx/switchboard/simulations"
)

// runFraudSim is `switchboard sim --scenario` for a fraud scenario (its
// "kind" is "fraud"): the fraud detector and the OpenSIPS-style baseline on
// the same seeded traffic, written to out/fraud-report.json and .md.
func runFraudSim(ctx context.Context, stdout io.Writer, path string, seed uint64, out string) error {
	sc, err := simulations.LoadFraudScenario(path)
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := simulations.RunFraud(ctx, sc, seed)
	if err != nil {
		return err
	}
	if err := rep.Write(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s in %s (simulated in %s)\n", simulations.FraudFileJSON,
		simulations.FraudFileMarkdown, out, time.Since(start).Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "%-26s %9s %7s %9s %11s %11s %8s\n", "", "precision", "recall", "legit blk", "delay p50/99", "secs p50/99", "leaked")
	for _, m := range []string{simulations.FraudOurs, simulations.FraudBaseline} {
		x := rep.Modes[m]
		fmt.Fprintf(stdout, "%-26s %9.4f %7.4f %8.4f%% %5.0f/%-5.0f %5.1f/%-6.1f %8d\n", m, x.Precision, x.Recall,
			100*x.LegitBlockedShare, x.DelayMessagesP50, x.DelayMessagesP99, x.DelaySecondsP50, x.DelaySecondsP99, x.Leaked)
	}
	for _, s := range rep.Goals.Shortfalls {
		fmt.Fprintf(stdout, "short: %s\n", s)
	}
	return nil
}
