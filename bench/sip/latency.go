package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// latency is a row's response times through one proxy.
type latency struct {
	rate     int           // calls per second it ran at
	calls    int           // calls with a response time
	p50, p99 time.Duration // of those
	ok       bool          // every call successful at the rate (judge)
	verdict  string        // judge's words
}

// latencyRates is the rate each proxy's response times are measured at:
// half its own knee (cfg.LatencyAt "own"), or half the lowest knee of
// them all ("common"). 0: the proxy passed no step, nothing to measure.
func latencyRates(cfg Config, proxies []*proxy, best map[string]int) map[string]int {
	rates := map[string]int{}
	lowest := 0
	for i, p := range proxies {
		if i == 0 || best[p.name] < lowest {
			lowest = best[p.name]
		}
	}
	for _, p := range proxies {
		knee := best[p.name]
		if cfg.LatencyAt == "common" {
			knee = lowest
		}
		rates[p.name] = knee / 2
	}
	return rates
}

// measureLatency runs the row through each proxy at its latency rate for
// a step (at most cfg.LatencyCalls calls) with the message trace, and
// returns p50 and p99 of the calls' response times.
func measureLatency(ctx context.Context, cfg Config, r row, proxies []*proxy, best map[string]int) (map[string]latency, error) {
	out := map[string]latency{}
	rates := latencyRates(cfg, proxies, best)
	for _, proxy := range proxies {
		p, rate := proxy.name, rates[proxy.name]
		if rate < 1 {
			continue
		}
		calls := min(cfg.LatencyCalls, max(1, int(float64(rate)*cfg.Step.Seconds())))
		res, err := runRow(ctx, cfg, r, proxy, sipp.UACOptions{Calls: calls, Rate: rate, CallLength: cfg.CallLength, TraceMessages: true})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := settle(ctx, proxies); err != nil {
			return nil, err
		}
		l := latency{rate: rate}
		l.ok, l.verdict = judge(cfg, res, err, rate)
		times, terr := sipp.ResponseTimes(res.Messages, r.method)
		if terr != nil {
			return nil, fmt.Errorf("%s through %s: %w", r.name, p, terr)
		}
		slices.Sort(times)
		l.calls, l.p50, l.p99 = len(times), percentile(times, 0.50), percentile(times, 0.99)
		out[p] = l
	}
	return out, nil
}

// percentile is the nearest-rank q-quantile (0 < q <= 1) of sorted: the
// smallest value that at least q of the values do not exceed. 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted)) + 0.999999999) // ceil, robust to q*n landing a hair above an integer
	return sorted[min(max(rank, 1), len(sorted))-1]
}
