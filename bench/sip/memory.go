package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// memoryFigure is what one proxy's memory grew by while it held
// cfg.MemoryCalls calls open.
type memoryFigure struct {
	what       string // what was measured
	before, at int64  // bytes, before the calls and with all of them up
	calls      int    // calls open at the feature server when measured
	verdict    string // the client run's outcome
}

func (m memoryFigure) perCall() float64 {
	if m.calls == 0 {
		return 0
	}
	return float64(m.at-m.before) / float64(m.calls)
}

// memory starts each proxy afresh (Kamailio with dialog tracking), sets up
// cfg.MemoryCalls INVITE-trunk calls that stay up, measures the proxy's
// memory before and once its feature server has every call, and prints
// the bytes per call side by side.
func memory(ctx context.Context, cfg Config, work string, out io.Writer) error {
	trunk, _ := rowNamed("INVITE-trunk")
	hold := time.Duration(cfg.MemoryCalls)*time.Second/time.Duration(cfg.MemoryRate) + cfg.MemoryHold
	figures := map[string]memoryFigure{}
	for _, name := range cfg.Proxies {
		p, err := startProxy(ctx, cfg, name, filepath.Join(work, name+"-memory"), nil, true)
		if err != nil {
			return err
		}
		f, err := holdCalls(ctx, cfg, trunk, p, hold)
		p.stop()
		if err != nil {
			return fmt.Errorf("memory row, %s: %w", name, err)
		}
		figures[name] = f
	}
	printMemory(cfg, out, figures)
	return nil
}

// holdCalls runs the calls through p and samples its memory.
func holdCalls(ctx context.Context, cfg Config, r row, p *proxy, hold time.Duration) (memoryFigure, error) {
	sample := func() (int64, error) { return rssBytes(p.pid) }
	f := memoryFigure{what: "resident set (VmRSS)"}
	if p.name == proxyKamailio {
		sample = func() (int64, error) { return shmUsed(ctx, p) }
		f.what = "shared memory in use (core.shmmem real_used), dialog module on"
	}
	var err error
	if f.before, err = sample(); err != nil {
		return f, err
	}
	type result struct {
		res sipp.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := runRow(ctx, cfg, r, p, sipp.UACOptions{
			Calls: cfg.MemoryCalls, Rate: cfg.MemoryRate, CallLength: hold,
			Limit: cfg.MemoryCalls + cfg.MemoryRate, // SIPp's own limit would throttle the set-up
		})
		done <- result{res, err}
	}()
	// The feature server has every call: each is set up through the proxy
	// and none has ended (they end hold after the first one started).
	// Then half of MemoryHold more, for the transactions of the last calls
	// to end (Timer J, Kamailio's wait timer: 5 s), so that what is
	// measured is the calls.
	server := p.servers[0] // INVITE's
	deadline := time.Now().Add(hold)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var allUp time.Time
	var client *result
	for client == nil && f.at == 0 {
		select {
		case <-ctx.Done():
			<-done
			return f, ctx.Err()
		case r := <-done:
			client = &r
			continue
		case <-tick.C:
		}
		st, err := server.Stats()
		switch {
		case err != nil:
		case st.Current < cfg.MemoryCalls:
			allUp = time.Time{}
		case allUp.IsZero():
			allUp = time.Now()
		case time.Since(allUp) >= cfg.MemoryHold/2:
			f.calls = st.Current
			if f.at, err = sample(); err != nil {
				<-done
				return f, err
			}
		}
		if time.Now().After(deadline) {
			break
		}
	}
	if client == nil {
		r := <-done
		client = &r
	}
	// The rate SIPp reports counts the hold: judge the calls alone.
	f.verdict = fmt.Sprintf("%d/%d calls successful", client.res.Successful, cfg.MemoryCalls)
	if client.err != nil {
		f.verdict += ": " + firstLine(client.err.Error())
	}
	if f.at == 0 {
		return f, fmt.Errorf("the feature server never held all %d calls for %s: %s\n%s", cfg.MemoryCalls, cfg.MemoryHold/2, f.verdict, head(client.res.Errors, 3000))
	}
	return f, nil
}

func printMemory(cfg Config, out io.Writer, figures map[string]memoryFigure) {
	fmt.Fprintf(out, "\nmemory per active call, %d INVITE-trunk calls up at once (set up at %d/s):\n", cfg.MemoryCalls, cfg.MemoryRate)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "proxy\tbefore\twith the calls\tbytes per call\tmeasured\tclient run")
	for _, name := range cfg.Proxies {
		f := figures[name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%s\n", name, mib(f.before), mib(f.at), f.perCall(), f.what, f.verdict)
	}
	_ = tw.Flush()
	k, kok := figures[proxyKamailio]
	s, sok := figures[proxySwitchboard]
	if kok && sok && k.perCall() > 0 {
		fmt.Fprintf(out, "switchboard/kamailio bytes per call: %.2f\n", s.perCall()/k.perCall())
	}
}

// mib shows bytes in MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
