package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// growthCase is one account shape of the growth table.
type growthCase struct {
	devices, groupSize int
}

// growthSeed fixes the order the devices take turns in, so that runs
// compare.
const growthSeed = 14

// growth prints the growth table: for each account shape, a fresh
// Switchboard node provisioned with it, then REGISTER and INVITE-auth at
// cfg.GrowthRate for cfg.GrowthOps operations each.
func growth(ctx context.Context, cfg Config, work string, out io.Writer) error {
	var cases []growthCase
	for _, n := range cfg.GrowthDevices {
		cases = append(cases, growthCase{n, cfg.GroupSize})
	}
	if cfg.GrowthGroup > 0 {
		cases = append(cases, growthCase{cfg.GrowthGroup, cfg.GrowthGroup})
	}
	version, err := sipp.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bench-sip --growth: %s; switchboard alone; %d operations per row at %d/s, devices in shuffled order; provisioning with %d PUTs in flight\n",
		version, cfg.GrowthOps, cfg.GrowthRate, cfg.Workers)
	fmt.Fprintf(out, growthLine, "devices", "groups", "provisioning", "row", "p50", "p99", "CPU/op", "RSS after", "client run")
	for i, c := range cases {
		if err := growthRows(ctx, cfg, filepath.Join(work, fmt.Sprintf("growth-%d", i)), out, c); err != nil {
			return err
		}
	}
	return nil
}

// growthLine lays out a line of the growth table, printed as each case
// ends.
const growthLine = "%8v %7v %12v %-14s %11s %11s %9s %10s  %s\n"

func growthRows(ctx context.Context, cfg Config, dir string, out io.Writer, c growthCase) error {
	devices := makeDevices(c.devices, c.groupSize)
	p, err := startProxy(ctx, cfg, proxySwitchboard, dir, devices, false)
	if err != nil {
		return err
	}
	defer p.stop()
	shuffled := slices.Clone(devices)
	rand.New(rand.NewPCG(growthSeed, uint64(c.devices))).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	p.users = filepath.Join(dir, "users.csv")
	if err := writeUsers(p.users, shuffled); err != nil {
		return err
	}
	groups := (c.devices + c.groupSize - 1) / c.groupSize
	if err := waitIdle(ctx, p.pid); err != nil {
		return err
	}
	// REGISTER twice over the same devices: the first pass finds their
	// groups cold, the second warm; then INVITE-auth, warm.
	for i, name := range []string{"REGISTER", "REGISTER", "INVITE-auth"} {
		r, _ := rowNamed(name)
		label := r.name
		if i == 1 {
			label += " again"
		}
		cpu0, err := cpuTime(p.pid)
		if err != nil {
			return err
		}
		res, err := runRow(ctx, cfg, r, p, sipp.UACOptions{Calls: cfg.GrowthOps, Rate: cfg.GrowthRate, CallLength: cfg.CallLength, TraceMessages: true})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := settle(ctx, []*proxy{p}); err != nil {
			return err
		}
		_, verdict := judge(cfg, res, err, cfg.GrowthRate)
		cpu1, cerr := cpuTime(p.pid)
		rss, rerr := rssBytes(p.pid)
		if cerr != nil || rerr != nil {
			return fmt.Errorf("%v %v", cerr, rerr)
		}
		times, err := sipp.ResponseTimes(res.Messages, r.method)
		if err != nil {
			return err
		}
		slices.Sort(times)
		perOp := time.Duration(0)
		if res.Total > 0 {
			perOp = (cpu1 - cpu0) / time.Duration(res.Total)
		}
		fmt.Fprintf(out, growthLine, c.devices, groups, p.provisioned.Round(100*time.Millisecond), label,
			ms(percentile(times, 0.50)), ms(percentile(times, 0.99)), us(perOp), mib(rss), verdict)
	}
	return nil
}

// waitIdle waits until the process has used less than idleShare of a
// core over a second (what provisioning left it to do is done), or
// idleWait has passed.
func waitIdle(ctx context.Context, pid int) error {
	const idleShare, idleWait = 0.05, time.Minute
	deadline := time.Now().Add(idleWait)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, err := cpuTime(pid)
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		now, err := cpuTime(pid)
		if err != nil {
			return err
		}
		if now-last < time.Duration(idleShare*float64(time.Second)) {
			return nil
		}
		last = now
	}
	return nil
}

// ms shows a duration in milliseconds with microseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

// us shows a duration in microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
