package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/switchboard-pbx/switchboard/simulations"
)

// newSimCommand is `switchboard sim`: one scenario, one seed, ours beside
// the baselines, written to a folder.
func newSimCommand(stdout, stderr io.Writer) *cobra.Command {
	var scenario, out string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate placement over a modelled cluster and write a report",
		Long: `Run a scenario (simulations/scenarios/*.json) in virtual time with the
runtime's placement code, and the baselines (random, plain rendezvous,
least-loaded on stale load) on the same workload. Writes DIR/report.json,
DIR/report.md and PNG plots. The same seed gives the same report.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scenario == "" {
				return errors.New("--scenario is required, e.g. --scenario simulations/scenarios/steady.json")
			}
			sc, err := simulations.LoadScenario(scenario)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := simulations.Config{Seed: seed}
			if bar := newSimBar(stderr, int64(sc.WithDefaults().Calls)*int64(1+len(simulations.Baselines)), sc.Name); bar != nil {
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
			fmt.Fprintf(stdout, "%-13s %10s %10s %10s %10s %10s\n", "", "act max/mn", "call max/mn", "moved/join", "rej+room", "calls")
			line := func(name string, m simulations.Measures) {
				fmt.Fprintf(stdout, "%-13s %10.4f %10.4f %10.4f %10d %10d\n", name, m.MaxMeanActivations, m.MaxMeanCalls,
					m.MovedOnJoinRatio, m.RejectedWithHeadroom, m.CallsTotal)
			}
			line(simulations.Ours, rep.Measures)
			for _, b := range simulations.Baselines {
				line(b, rep.Baselines[b])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", "", "scenario file, e.g. simulations/scenarios/steady.json")
	f.Uint64Var(&seed, "seed", 1, "random seed; the same seed replays the same run")
	f.StringVar(&out, "out", filepath.Join("sim-out"), "folder for report.json, report.md and the plots")
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
