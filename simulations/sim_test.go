package simulations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

var scenarioNames = []string{"steady", "flash-crowd", "node-crash", "node-join", "pool-outage-overflow", "drain"}

// small loads scenario name and shrinks it for a race-checked test: pools
// of 8 nodes, 18,000 groups (over 1,000 device-group actors per node) and
// enough calls to run 600 s past the last event.
func small(t *testing.T, name string) Scenario {
	t.Helper()
	sc, err := LoadScenario(filepath.Join("scenarios", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sc.Pools {
		sc.Pools[i].Nodes = min(sc.Pools[i].Nodes, 8)
	}
	for i := range sc.Events {
		sc.Events[i].Count /= 2
	}
	sc.Groups, sc.WarmupSeconds = 18_000, 60
	last := 0.0
	for _, e := range sc.Events {
		last = max(last, e.AtSeconds+e.DurationSeconds)
	}
	// 16 nodes * 500 calls * utilization / 120 s mean hold calls per second.
	rate := 16 * 500 * sc.WithDefaults().Utilization / 120
	sc.Calls = int(rate * (max(last, 300) + 600))
	return sc
}

// TestScenarios_Issue4Measures runs every scenario (shrunk) on a fixed seed
// and asserts the measures issue 4 lists for ours: max/mean activations per
// node <= 1.03 with at least 1,000 per node (but for node-join: no live
// actor moves on join, and a joined node reaches 90% of its pool's mean
// active calls within 300 s); max/mean active calls in a pool <= 1.10 on
// 2 s stale figures; no call
// rejected while its pool or overflow has headroom; and (checked inside
// Run, an error otherwise) no group leaving a pool that still meets its
// conditions, no placement on a draining, dead or full node.
func TestScenarios_Issue4Measures(t *testing.T) {
	const seed = 7
	for _, name := range scenarioNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc := small(t, name)
			r, err := Run(context.Background(), sc, Config{Seed: seed, Parallel: 1})
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			ours := r.Report()
			m := ours.Measures
			t.Logf("seed %d ours: act %.4f (%.0f/node) calls %.4f moved %d join90 %s rejected %d (with headroom %d) overflowed %d refused %d",
				seed, m.MaxMeanActivations, m.MeanActivationsPerNode, m.MaxMeanCalls, m.MovedOnJoin, OrNA(m.JoinTo90Seconds, "%.0fs"),
				m.Rejected, m.RejectedWithHeadroom, m.Overflowed, m.Refused)
			for _, b := range Baselines() {
				bm := ours.Baselines[b]
				t.Logf("seed %d %s: act %.4f calls %.4f moved %d rejected with headroom %d", seed, b,
					bm.MaxMeanActivations, bm.MaxMeanCalls, bm.MovedOnJoin, bm.RejectedWithHeadroom)
			}
			if m.MeanActivationsPerNode < 1000 {
				t.Errorf("seed %d: only %.0f activations per node; the measure needs 1,000", seed, m.MeanActivationsPerNode)
			}
			if name == "node-join" {
				// No live actor moves on join (as in the runtime): the
				// joined nodes hold only the actors that activated since,
				// so activations stay uneven; calls must catch up instead.
				if m.JoinTo90Seconds == nil || *m.JoinTo90Seconds > 300 {
					t.Errorf("seed %d: a joined node reached 90%% of its pool's mean calls after %s (%d never did); want within 300 s",
						seed, OrNA(m.JoinTo90Seconds, "%.0fs"), m.JoinsBelow90)
				}
				if m.MovedOnJoinRatio == nil {
					t.Errorf("seed %d: moved_on_join_ratio is n/a in a scenario with joins", seed)
				}
			} else if m.JoinTo90Seconds != nil || m.MovedOnJoinRatio != nil {
				t.Errorf("seed %d: join measures %s and %v in a scenario without a join; want n/a", seed, OrNA(m.JoinTo90Seconds, "%.0fs"), m.MovedOnJoinRatio)
			} else if m.MaxMeanActivations > 1.03 {
				t.Errorf("seed %d: max/mean activations %.4f > 1.03", seed, m.MaxMeanActivations)
			}
			if m.MaxMeanCalls > 1.10 {
				t.Errorf("seed %d: max/mean active calls %.4f > 1.10", seed, m.MaxMeanCalls)
			}
			if m.MovedOnJoin != 0 {
				t.Errorf("seed %d: %d live actors moved on join; the runtime moves none", seed, m.MovedOnJoin)
			}
			if m.RejectedWithHeadroom != 0 {
				t.Errorf("seed %d: %d calls rejected with headroom", seed, m.RejectedWithHeadroom)
			}
			if name == "pool-outage-overflow" && m.Overflowed == 0 {
				t.Errorf("seed %d: no call overflowed after the outage", seed)
			}
			if ll := ours.Baselines["least-loaded"].MaxMeanCalls; ll <= m.MaxMeanCalls {
				t.Errorf("seed %d: least-loaded on stale figures (%.4f) no worse than ours (%.4f)", seed, ll, m.MaxMeanCalls)
			}
			if m.CallsTotal != sc.Calls {
				t.Errorf("calls_total %d, want %d", m.CallsTotal, sc.Calls)
			}
		})
	}
}

// TestRun_SameSeedSameJSON: "deterministic: one seed gives byte-identical
// JSON" (issue 4), however many modes run at once; another seed differs.
func TestRun_SameSeedSameJSON(t *testing.T) {
	sc := small(t, "node-join")
	sc.Groups, sc.Calls = 4000, 20_000
	run := func(seed uint64, par int) []byte {
		r, err := Run(context.Background(), sc, Config{Seed: seed, Parallel: par})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		b, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := run(3, 1), run(3, 4)
	if !bytes.Equal(a, b) {
		t.Fatalf("seed 3 gave two different reports:\n%s\n%s", a, b)
	}
	if bytes.Equal(a, run(4, 2)) {
		t.Error("seeds 3 and 4 gave the same report")
	}
}

// TestWrite_ReportFilesAndKeys: report.json carries, for ours and under
// baselines.<name>, the keys dashboards read; report.md and the plots exist.
func TestWrite_ReportFilesAndKeys(t *testing.T) {
	sc := small(t, "steady")
	sc.Groups, sc.Calls = 2000, 5000
	r, err := Run(context.Background(), sc, Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := r.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
	if len(paths) != 2+len(Baselines())+1+2 {
		t.Errorf("wrote %d files: %v", len(paths), paths)
	}
	var doc map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, FileJSON))
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keys := []string{"max_mean_activations", "max_mean_calls", "moved_on_join_ratio", "join_to_90pct_mean_calls_seconds", "rejected_with_headroom", "calls_total"}
	for _, k := range keys {
		if _, ok := doc[k]; !ok {
			t.Errorf("report.json lacks %s", k)
		}
		for _, name := range Baselines() {
			if _, ok := doc["baselines"].(map[string]any)[name].(map[string]any)[k]; !ok {
				t.Errorf("report.json lacks baselines.%s.%s", name, k)
			}
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, FileMarkdown))
	if !strings.Contains(string(md), "| max/mean active calls") || !strings.Contains(string(md), "max-mean-calls.png") {
		t.Errorf("report.md lacks the measures or the plots:\n%s", md)
	}
	if replay := "switchboard sim --scenario " + filepath.Join("scenarios", "steady.json") + " --seed 1 "; !strings.Contains(string(md), replay) {
		t.Errorf("report.md does not replay with %q:\n%s", replay, md)
	}
}

// TestInvariant_ErrorNamesTheSeed: a broken invariant is an error that says
// how to replay it.
func TestInvariant_ErrorNamesTheSeed(t *testing.T) {
	s := newSim(small(t, "steady").WithDefaults(), Ours, Config{Seed: 424242})
	s.broken("test %d", 1)
	if !errors.Is(s.invalid, ErrInvariant) || !strings.Contains(s.invalid.Error(), "seed 424242") ||
		!strings.Contains(s.invalid.Error(), "--scenario scenarios/steady.json --seed 424242") {
		t.Errorf("error %q does not name the seed and the scenario file that replay it", s.invalid)
	}
}

func TestLoadScenario_RejectsMistakes(t *testing.T) {
	tests := map[string]string{
		"unknown field":       `{"name":"x","pools":[{"name":"a","nodes":1}],"calz":3}`,
		"unknown overflow":    `{"name":"x","pools":[{"name":"a","nodes":1,"overflow":"b"}]}`,
		"unknown event":       `{"name":"x","pools":[{"name":"a","nodes":1}],"events":[{"kind":"boom"}]}`,
		"no pools":            `{"name":"x"}`,
		"staleness":           `{"name":"x","pools":[{"name":"a","nodes":1}],"staleness_seconds":1.5}`,
		"events out of order": `{"name":"x","pools":[{"name":"a","nodes":1}],"events":[{"kind":"join","pool":"a","at_seconds":5},{"kind":"join","pool":"a","at_seconds":1}]}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.json")
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadScenario(p); err == nil {
				t.Error("LoadScenario accepted it")
			}
		})
	}
	for _, name := range scenarioNames {
		if _, err := LoadScenario(filepath.Join("scenarios", name+".json")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkScale_64Nodes100kGroups1MCalls is issue 4's scale goal: the
// steady scenario (64 nodes, 100k device groups, 1M calls) for ours and
// the three baselines in under 30 s on a 2-core machine. Run it with
// go test -run '^$' -bench Scale -benchtime 1x ./simulations/
func BenchmarkScale_64Nodes100kGroups1MCalls(b *testing.B) {
	sc, err := LoadScenario(filepath.Join("scenarios", "steady.json"))
	if err != nil {
		b.Fatal(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for b.Loop() {
		if _, err := Run(context.Background(), sc, Config{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
