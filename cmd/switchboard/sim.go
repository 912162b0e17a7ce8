package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/switchboard-pbx/switchboard/simulations"
	"github.com/switchboard-pbx/switchboard/simulations/live"
)

// newSimCommand is `switchboard sim`: one scenario, one seed, ours beside
// the baselines, written to a folder.
func newSimCommand(stdout, stderr io.Writer) *cobra.Command {
	var scenario, out string
	var seed uint64
	liveCfg := live.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate placement over a modelled cluster and write a report",
		Long: `Run a scenario (simulations/scenarios/*.json) in virtual time with the
runtime's placement code, and the baselines (random, plain rendezvous,
least-loaded on stale load) on the same workload. Writes DIR/report.json,
DIR/report.md and PNG plots. The same seed gives the same report.json.

With --live N, start N real node processes of pool p1 on loopback instead,
drive Poisson calls through POST /v1/calls, SIGKILL one node part way, and
report the same measures from what the nodes gossip (DIR/report.json,
DIR/report.md, DIR/logs/). Real time and real processes: not byte-identical.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cmd.Flags().Changed("live") {
				if scenario != "" {
					return errors.New("--live and --scenario do not go together: --live runs real nodes, --scenario the modelled cluster")
				}
				liveCfg.Seed, liveCfg.Out, liveCfg.Log = seed, out, stderr
				if liveCfg.Binary == "" {
					exe, err := os.Executable()
					if err != nil {
						return fmt.Errorf("finding this binary to start the nodes with; pass --node-binary: %w", err)
					}
					liveCfg.Binary = exe
				}
				rep, err := live.Run(ctx, liveCfg)
				if err != nil {
					return fmt.Errorf("live run, seed %d: %w", seed, err)
				}
				rep.Summary(stdout, out)
				return nil
			}
			if scenario == "" {
				return errors.New("--scenario is required, e.g. --scenario simulations/scenarios/steady.json")
			}
			if simulations.IsFraudScenario(scenario) {
				return runFraudSim(ctx, stdout, scenario, seed, out)
			}
			sc, err := simulations.LoadScenario(scenario)
			if err != nil {
				return err
			}
			cfg := simulations.DefaultConfig()
			cfg.Seed = seed
			if bar := newSimBar(stderr, int64(sc.WithDefaults().Calls)*int64(1+len(simulations.Baselines())), sc.Name); bar != nil {
				cfg.Progress = func(n int) { _ = bar.Add(n) }
				defer func() { _ = bar.Finish(); fmt.Fprintln(stderr) }()
			}
			// The simulator allocates small, short-lived decisions at a high
			// rate; a lazier collector roughly halves its run time.
			defer debug.SetGCPercent(debug.SetGCPercent(400))
			start := time.Now()
			res, err := simulations.Run(ctx, sc, cfg)
			if err != nil {
				return fmt.Errorf("scenario %s, seed %d: %w", sc.Name, seed, err)
			}
			elapsed := time.Since(start)
			if _, err := res.Write(out); err != nil {
				return err
			}
			rep := res.Report()
			fmt.Fprintf(stdout, "wrote %s, %s and plots in %s (simulated in %s)\n",
				simulations.FileJSON, simulations.FileMarkdown, out, elapsed.Round(10*time.Millisecond))
			fmt.Fprintf(stdout, "%-13s %10s %10s %10s %10s %10s %10s\n", "", "act max/mn", "call max/mn", "moved/join", "join->90%", "rej+room", "calls")
			line := func(name string, m simulations.Measures) {
				fmt.Fprintf(stdout, "%-13s %10.4f %10.4f %10s %10s %10d %10d\n", name, m.MaxMeanActivations, m.MaxMeanCalls,
					simulations.OrNA(m.MovedOnJoinRatio, "%.4f"), simulations.OrNA(m.JoinTo90Seconds, "%.0fs"), m.RejectedWithHeadroom, m.CallsTotal)
			}
			line(simulations.Ours, rep.Measures)
			for _, b := range simulations.Baselines() {
				line(b, rep.Baselines[b])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", "", "scenario file, e.g. simulations/scenarios/steady.json")
	f.Uint64Var(&seed, "seed", 1, "random seed; the same seed replays the same run")
	f.StringVar(&out, "out", "sim-out", "folder for report.json, report.md and the plots")
	f.IntVar(&liveCfg.Nodes, "live", 0, "run N real node processes of pool p1 on loopback instead of a scenario")
	f.StringVar(&liveCfg.Store, "store", "", "live: postgres:// DSN the nodes share; empty: a badger folder per node (state does not follow actors)")
	f.DurationVar(&liveCfg.Duration, "duration", liveCfg.Duration, "live: how long calls are driven")
	f.Float64Var(&liveCfg.Rate, "rate", liveCfg.Rate, "live: mean call arrivals per second")
	f.DurationVar(&liveCfg.Hold, "hold", liveCfg.Hold, "live: mean call holding time")
	f.Float64Var(&liveCfg.KillAt, "kill-at", liveCfg.KillAt, "live: fraction of --duration at which a node is SIGKILLed; 0: none")
	f.Float64Var(&liveCfg.JoinAt, "join-at", 0, "live: fraction of --duration at which a new node joins p1; 0: none")
	f.IntVar(&liveCfg.Capacity, "capacity", 0, "live: call capacity per node; 0: twice the offered load over the nodes left after the kill")
	f.BoolVar(&liveCfg.Overflow, "overflow", false, "live: start one more node in pool p2, p1's overflow")
	f.StringVar(&liveCfg.Binary, "node-binary", "", "live: the switchboard binary the nodes run; default: this one")
	_ = f.MarkHidden("node-binary")
	return cmd
}

// newSimBar returns a progress bar on stderr when it is a terminal, else nil.
func newSimBar(stderr io.Writer, total int64, name string) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("simulating "+name),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true))
}
