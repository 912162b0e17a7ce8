package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

func printHeader(ctx context.Context, cfg Config, out io.Writer, proxies []*proxy, devices int) error {
	version, err := sipp.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bench-sip: %s, %d CPUs; steps of %s, rates %s/s; INVITE calls %s long; pass = all calls successful at >= %.0f%% of the rate\n",
		version, runtime.NumCPU(), cfg.Step, joinInts(cfg.Rates), cfg.CallLength, cfg.MinRate*100)
	if devices > 0 {
		fmt.Fprintf(out, "  device rows: %d devices in groups of %d, calling from %s\n", devices, cfg.GroupSize, deviceIP)
	}
	for _, p := range proxies {
		fmt.Fprintf(out, "  %s on %s", p.name, p.addr)
		if devices > 0 && p.name == proxySwitchboard {
			fmt.Fprintf(out, " (devices provisioned over HTTP in %s)", p.provisioned.Round(10e6))
		}
		fmt.Fprintln(out)
	}
	return nil
}

func printSummary(cfg Config, out io.Writer, selected []row, best map[string]map[string]int) {
	fmt.Fprintln(out, "\nhighest rate with no failed call (calls/s):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tkamailio\tswitchboard\tswitchboard/kamailio")
	both := slices.Contains(cfg.Proxies, proxyKamailio) && slices.Contains(cfg.Proxies, proxySwitchboard)
	for _, r := range selected {
		k, kok := best[r.name][proxyKamailio]
		s, sok := best[r.name][proxySwitchboard]
		ratio := "-"
		if both {
			switch {
			case k > 0:
				ratio = fmt.Sprintf("%.2f (goal >= 1.0)", float64(s)/float64(k))
			case s > 0:
				ratio = "kamailio failed every step"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.name, shown(k, kok, cfg, proxyKamailio), shown(s, sok, cfg, proxySwitchboard), ratio)
	}
	_ = tw.Flush()
	if top := cfg.Rates[len(cfg.Rates)-1]; slices.ContainsFunc(selected, func(r row) bool {
		return best[r.name][proxyKamailio] == top || best[r.name][proxySwitchboard] == top
	}) {
		fmt.Fprintf(out, "(a proxy passed the top rate %d/s: the figure is a floor; add higher --rates)\n", top)
	}
}

func shown(rate int, ok bool, cfg Config, name string) string {
	switch {
	case !slices.Contains(cfg.Proxies, name):
		return "-"
	case !ok:
		return fmt.Sprintf("<%d", cfg.Rates[0])
	}
	return strconv.Itoa(rate)
}

func printLatency(cfg Config, out io.Writer, selected []row, latencies map[string]map[string]latency) {
	at := "each proxy at half its own knee"
	if cfg.LatencyAt == "common" {
		at = "both at half the lower knee"
	}
	fmt.Fprintf(out, "\nresponse time, first request to the final 200, %s (at most %d calls):\n", at, cfg.LatencyCalls)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "row")
	for _, p := range cfg.Proxies {
		fmt.Fprintf(tw, "\t%s rate\tp50\tp99", p)
	}
	if len(cfg.Proxies) == 2 {
		fmt.Fprint(tw, "\tp50 s/k\tp99 s/k")
	}
	fmt.Fprintln(tw)
	for _, r := range selected {
		fmt.Fprint(tw, r.name)
		for _, p := range cfg.Proxies {
			l, ok := latencies[r.name][p]
			switch {
			case !ok:
				fmt.Fprint(tw, "\t-\t-\t-")
			case !l.ok:
				fmt.Fprintf(tw, "\t%d/s\t%s\t%s (%s)", l.rate, ms(l.p50), ms(l.p99), l.verdict)
			default:
				fmt.Fprintf(tw, "\t%d/s\t%s\t%s", l.rate, ms(l.p50), ms(l.p99))
			}
		}
		if len(cfg.Proxies) == 2 {
			k, kok := latencies[r.name][proxyKamailio]
			s, sok := latencies[r.name][proxySwitchboard]
			if kok && sok && k.p50 > 0 && k.p99 > 0 {
				fmt.Fprintf(tw, "\t%.2f\t%.2f", float64(s.p50)/float64(k.p50), float64(s.p99)/float64(k.p99))
			} else {
				fmt.Fprint(tw, "\t-\t-")
			}
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}
