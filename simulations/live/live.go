package live

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/simulations"
)

// Config is one live run. Flags of `switchboard sim --live N` fill it.
type Config struct {
	Nodes    int           // nodes of pool p1; at least 2, so that one can be killed
	Overflow bool          // one more node in pool p2, p1's overflow
	Store    string        // postgres:// DSN shared by every node; "": a badger folder per node
	Duration time.Duration // how long calls are driven
	Rate     float64       // mean call arrivals per second (Poisson)
	Hold     time.Duration // mean holding time (exponential)
	KillAt   float64       // fraction of Duration at which a node of p1 is SIGKILLed; 0 or >= 1: none
	JoinAt   float64       // fraction of Duration at which a new node joins p1; 0 or >= 1: none
	Capacity int           // call_capacity_per_node of p1 (and p2); 0: twice the offered load over the survivors
	Seed     uint64        // arrivals, holds, devices and target nodes
	Out      string        // folder for report.json, report.md and the node logs
	Binary   string        // the switchboard binary the nodes run
	Log      io.Writer     // progress lines; nil: none
}

// DefaultConfig is a run of 40 s at 20 calls a second held 8 s on average,
// a node killed at half time; Nodes, Out and Binary are the caller's.
func DefaultConfig() Config {
	return Config{Duration: 40 * time.Second, Rate: 20, Hold: 8 * time.Second, KillAt: 0.5, Seed: 1}
}

// Sampling and waiting figures of a live run.
const (
	liveSamplePeriod = 500 * time.Millisecond
	liveStartWithin  = 30 * time.Second // every node serving and seeing every other alive
	liveStopWithin   = 15 * time.Second // SIGTERM to exit, else SIGKILL
	liveDevices      = 12
	liveMinHold      = 100 * time.Millisecond
)

// Validate says which field of c is wrong, in terms of the flags.
func (c *Config) Validate() error {
	switch {
	case c.Nodes < 2:
		return errors.New("--live needs at least 2 nodes, so that one can be killed and its share taken over")
	case c.Rate <= 0:
		return errors.New("--rate must be above 0 calls per second")
	case c.Hold <= 0:
		return errors.New("--hold must be above 0, e.g. 8s")
	case c.Duration < time.Second:
		return errors.New("--duration must be at least 1s, e.g. 40s")
	case c.KillAt < 0:
		return errors.New("--kill-at is a fraction of --duration from 0 (no kill) to 1, e.g. 0.5")
	case c.JoinAt < 0:
		return errors.New("--join-at is a fraction of --duration from 0 (no join) to 1, e.g. 0.6")
	case c.Binary == "":
		return errors.New("no switchboard binary to start the nodes with (--node-binary)")
	case c.Out == "":
		return errors.New("--out is required")
	}
	return nil
}

// Report is what a live run writes to report.json.
type Report struct {
	Mode                  string      `json:"mode"`
	Seed                  uint64      `json:"seed"`
	Nodes                 int         `json:"nodes"`
	Store                 string      `json:"store"`
	DurationSeconds       float64     `json:"duration_seconds"`
	Rate                  float64     `json:"rate"`
	HoldSeconds           float64     `json:"hold_seconds"`
	CapacityPerNode       int         `json:"capacity_per_node"`
	CallsTotal            int         `json:"calls_total"`
	Rejected              int         `json:"rejected"`
	RejectedWithHeadroom  int         `json:"rejected_with_headroom"`
	RejectedAfterKill     int         `json:"rejected_after_kill"`
	Failed                int         `json:"failed"`
	FailedAfterKill       int         `json:"failed_after_kill"`
	FailureSamples        []string    `json:"failure_samples,omitempty"`
	RejectionSamples      []string    `json:"rejection_samples,omitempty"`
	MaxMeanCalls          float64     `json:"max_mean_calls"`
	MaxMeanCallsAfterKill float64     `json:"max_mean_calls_after_kill"`
	Samples               int         `json:"samples"`
	MeanLoadAgeSeconds    float64     `json:"mean_load_age_seconds"`
	CallsByNode           CallsByNode `json:"calls_by_node"`
	KilledNode            string      `json:"killed_node,omitempty"`
	KilledAtSeconds       float64     `json:"killed_at_seconds,omitempty"`
	KilledShareTakenOver  bool        `json:"killed_share_taken_over"`
	FirstCallAfterKill    float64     `json:"first_call_after_kill_seconds,omitempty"`
	JoinedNode            string      `json:"joined_node,omitempty"`
	JoinedAtSeconds       float64     `json:"joined_at_seconds,omitempty"`
	// JoinTo90Seconds is the time from the join until the joined node's
	// gossiped active calls first reached 90% of p1's mean (the simulator's
	// measure); null without a join or when it never did.
	JoinTo90Seconds *float64 `json:"join_to_90pct_mean_calls_seconds"`
	Notes           []string `json:"notes,omitempty"`
}

// CallsByNode counts accepted calls (201) by the node that took them, for
// calls sent before and after the kill.
type CallsByNode struct {
	BeforeKill map[string]int `json:"before_kill"`
	AfterKill  map[string]int `json:"after_kill"`
}

// liveNode is one node process.
type liveNode struct {
	*nodeproc.Node
	name, pool string
	id, gossip string // learned from its /debug/cluster
	log        *os.File
}

// liveCluster owns the processes of a run; stop ends all of them.
type liveCluster struct {
	cfg   Config
	mu    sync.Mutex // guards nodes: a node joins while the sampler reads them
	nodes []*liveNode
}

// start starts a node process, waits until it serves, and learns its id
// and gossip address; join is the seed's gossip address or "".
func (lc *liveCluster) start(ctx context.Context, name, pool, join string) (*liveNode, error) {
	args := []string{"--pool", pool, "--gossip-profile", "local"}
	if lc.cfg.Store != "" {
		args = append(args, "--store", lc.cfg.Store)
	} else {
		args = append(args, "--data", filepath.Join(lc.cfg.Out, "data", name))
	}
	if join != "" {
		args = append(args, "--join", join)
	}
	logf, err := os.Create(filepath.Join(lc.cfg.Out, "logs", name+".log"))
	if err != nil {
		return nil, err
	}
	p, err := nodeproc.Start(ctx, nodeproc.Options{Binary: lc.cfg.Binary, Name: name, Args: args, Output: logf})
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("node %s (see %s): %w", name, logf.Name(), err)
	}
	n := &liveNode{Node: p, name: name, pool: pool, log: logf}
	lc.mu.Lock()
	lc.nodes = append(lc.nodes, n)
	lc.mu.Unlock()
	self, err := p.Self(ctx)
	if err != nil {
		return nil, err
	}
	n.id, n.gossip = self.ID, self.Addresses["gossip"]
	return n, nil
}

// stop SIGTERMs every running node, and SIGKILLs any that did not exit
// within liveStopWithin. It returns once every process has exited.
func (lc *liveCluster) stop() {
	var wg sync.WaitGroup
	for _, n := range lc.running() {
		wg.Go(func() { _ = n.Stop(liveStopWithin) })
	}
	wg.Wait()
	for _, n := range lc.nodes {
		n.Close()
		n.log.Close()
	}
}

// put PUTs body to path through the running nodes in turn until one
// answers 200 or 201.
func (lc *liveCluster) put(ctx context.Context, path string, body any, within time.Duration) error {
	i := 0
	return nodeproc.Poll(ctx, within, "PUT "+path, func() (bool, string) {
		alive := lc.running()
		n := alive[i%len(alive)]
		i++
		r, err := n.Do(ctx, http.MethodPut, path, body, nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusOK || r.Status == http.StatusCreated, n.name + ": " + r.String()
	})
}

func (lc *liveCluster) running() []*liveNode {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(lc.nodes), func(n *liveNode) bool { return !n.Running() })
}

func devName(i int) string { return fmt.Sprintf("d%03d", i) }

// provision creates the account, its group pinned to p1, its devices, and
// the pools' capacities. PUTs are idempotent, so a run on per-node stores
// provisions again after the kill, for state that lived on the killed node.
func (lc *liveCluster) provision(ctx context.Context, account string, within time.Duration) error {
	pool := map[string]any{"call_capacity_per_node": lc.cfg.Capacity, "high_water": 0.85}
	if lc.cfg.Overflow {
		pool["overflow"] = "p2"
		if err := lc.put(ctx, "/v1/pools/p2", map[string]any{"call_capacity_per_node": lc.cfg.Capacity, "high_water": 0.85}, within); err != nil {
			return err
		}
	}
	if err := lc.put(ctx, "/v1/pools/p1", pool, within); err != nil {
		return err
	}
	if err := lc.put(ctx, "/v1/accounts/"+account, map[string]any{}, within); err != nil {
		return err
	}
	if err := lc.put(ctx, "/v1/accounts/"+account+"/groups/g1", map[string]any{"pool": "p1"}, within); err != nil {
		return err
	}
	for i := range liveDevices {
		if err := lc.put(ctx, "/v1/accounts/"+account+"/devices/"+devName(i), map[string]any{"group": "g1", "password": "live-sim-password"}, within); err != nil {
			return err
		}
	}
	return nil
}

// liveSample is one reading of GET /v1/pools and /debug/cluster.
type liveSample struct {
	at       time.Duration
	p1Calls  map[string]int // active calls by alive node of p1, as gossiped
	headroom int            // p1's headroom plus its overflow's
	loadAge  float64        // oldest load report among the members, seconds
}

type livePool struct {
	Name     string `json:"name"`
	Overflow string `json:"overflow"`
	Headroom int    `json:"headroom"`
	Nodes    []struct {
		Name        string `json:"name"`
		ActiveCalls int    `json:"active_calls"`
	} `json:"nodes"`
}

// liveRun is the state shared by the driver, the sampler and the callers.
type liveRun struct {
	mu         sync.Mutex
	start      time.Time
	killedAt   time.Duration // 0: not yet
	killed     string
	joinedAt   time.Duration // 0: not yet
	joined     string
	samples    []liveSample
	lastSample *liveSample
	idToName   map[string]string
	firstAfter time.Duration // since the kill, the first call sent after it that was taken; 0: none
	rep        Report        // the calls' counts, filed as they are answered
}

func (r *liveRun) failure(afterKill bool, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Failed++
	if afterKill {
		r.rep.FailedAfterKill++
	}
	if len(r.rep.FailureSamples) < 10 {
		r.rep.FailureSamples = append(r.rep.FailureSamples, msg)
	}
}

// Run starts the cluster, drives the calls, kills a node and writes the
// report. Every process it started has exited when it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Capacity == 0 {
		// Twice the offered load (Little's law: rate x hold) spread over the
		// nodes left after the kill, so that no call need be rejected.
		cfg.Capacity = max(10, int(math.Ceil(2*cfg.Rate*cfg.Hold.Seconds()/float64(cfg.Nodes-1))))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{"logs", "data"} {
		if err := os.MkdirAll(filepath.Join(cfg.Out, d), 0o755); err != nil {
			return nil, err
		}
	}
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", a...)
		}
	}
	lc := &liveCluster{cfg: cfg}
	defer lc.stop()

	// Start the seed, then the others joining it.
	seed, err := lc.start(ctx, "n1", "p1", "")
	if err != nil {
		return nil, err
	}
	p1 := []*liveNode{seed}
	for i := 2; i <= cfg.Nodes; i++ {
		n, err := lc.start(ctx, fmt.Sprintf("n%d", i), "p1", seed.gossip)
		if err != nil {
			return nil, err
		}
		p1 = append(p1, n)
	}
	if cfg.Overflow {
		if _, err := lc.start(ctx, "o1", "p2", seed.gossip); err != nil {
			return nil, err
		}
	}
	all := make([]*nodeproc.Node, 0, len(lc.nodes))
	for _, n := range lc.nodes {
		all = append(all, n.Node)
	}
	if err := nodeproc.WaitSettled(ctx, all, len(all), liveStartWithin); err != nil {
		return nil, err
	}
	logf("live: %d nodes alive (%s)", len(lc.nodes), cmp.Or(redactDSN(cfg.Store), "badger per node"))

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6c697665)) // 0x6c697665: "live"
	// The account id is unique per run, not per seed: a shared store may
	// hold another run's account.
	account := fmt.Sprintf("live-%d-%06d", cfg.Seed, rand.N(1_000_000))
	if err := lc.provision(ctx, account, 20*time.Second); err != nil {
		return nil, err
	}
	defer func() {
		// Best effort: a shared store keeps no account of a finished run.
		if alive := lc.running(); len(alive) > 0 {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = alive[0].Do(dctx, http.MethodDelete, "/v1/accounts/"+account, nil, nil)
		}
	}()

	run := &liveRun{idToName: map[string]string{}, rep: Report{CallsByNode: CallsByNode{BeforeKill: map[string]int{}, AfterKill: map[string]int{}}}}
	for _, n := range lc.nodes {
		run.idToName[n.id] = n.name
		run.idToName[n.name] = n.name
	}
	for _, n := range p1 {
		run.rep.CallsByNode.BeforeKill[n.name], run.rep.CallsByNode.AfterKill[n.name] = 0, 0
	}

	driveCtx, cancelDrive := context.WithCancel(ctx)
	defer cancelDrive()
	var wg sync.WaitGroup
	run.start = time.Now()
	wg.Add(1)
	go func() { defer wg.Done(); lc.sample(driveCtx, run) }()

	// when is the time a fraction f of the run, -1 for none (f 0 or >= 1).
	when := func(f float64) time.Duration {
		if f > 0 && f < 1 {
			return time.Duration(f * float64(cfg.Duration))
		}
		return -1
	}
	killAt, joinAt := when(cfg.KillAt), when(cfg.JoinAt)
	next := time.Duration(0)
	var driveErr error
	for {
		next += time.Duration(rng.ExpFloat64() / cfg.Rate * float64(time.Second))
		if next >= cfg.Duration {
			break
		}
		killed, joined := run.events()
		if joinAt >= 0 && next >= joinAt && joined == "" {
			if err := sleepUntil(driveCtx, run.start.Add(joinAt)); err != nil {
				driveErr = err
				break
			}
			name := fmt.Sprintf("n%d", cfg.Nodes+1)
			run.mu.Lock()
			run.joined, run.joinedAt = name, time.Since(run.start)
			run.idToName[name] = name
			run.mu.Unlock()
			logf("live: %s joins p1 at %.1fs", name, run.joinedAt.Seconds())
			// Calls go to the joined node once it serves.
			wg.Go(func() {
				n, err := lc.start(driveCtx, name, "p1", seed.gossip)
				if err != nil {
					logf("live: the joined node: %v", err)
					return
				}
				run.mu.Lock()
				run.idToName[n.id] = name
				run.mu.Unlock()
			})
		}
		if killAt >= 0 && next >= killAt && killed == "" {
			if err := sleepUntil(driveCtx, run.start.Add(killAt)); err != nil {
				driveErr = err
				break
			}
			victim := run.chooseVictim(p1)
			victim.Kill()
			run.mu.Lock()
			run.killed, run.killedAt = victim.name, time.Since(run.start)
			run.mu.Unlock()
			logf("live: SIGKILLed %s at %.1fs", victim.name, run.killedAt.Seconds())
			if cfg.Store == "" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := lc.provision(driveCtx, account, 15*time.Second); err != nil {
						logf("live: provisioning again after the kill: %v", err)
					}
				}()
			}
		}
		if err := sleepUntil(driveCtx, run.start.Add(next)); err != nil {
			driveErr = err
			break
		}
		alive := lc.running()
		target := alive[rng.IntN(len(alive))]
		hold := max(liveMinHold, time.Duration(rng.ExpFloat64()*float64(cfg.Hold)))
		body := map[string]any{"account": account, "device": devName(rng.IntN(liveDevices)), "callee": "+15550100", "hold_seconds": hold.Seconds()}
		sent := time.Since(run.start)
		wg.Add(1)
		// A call in flight when the arrivals stop still counts: it runs on
		// ctx, bounded by the client's timeout, not on driveCtx.
		go func() { defer wg.Done(); lc.place(ctx, run, target, body, sent) }()
	}
	if driveErr == nil {
		driveErr = sleepUntil(driveCtx, run.start.Add(cfg.Duration))
	}
	cancelDrive()
	wg.Wait()
	if driveErr != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("live run stopped: %w", ctx.Err())
	}

	rep := run.report(cfg, p1)
	if err := rep.write(cfg.Out); err != nil {
		return nil, err
	}
	return rep, nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// events returns the names of the killed and the joined node, "" for
// none yet.
func (r *liveRun) events() (killed, joined string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.killed, r.joined
}

// chooseVictim picks the node of p1 other than the seed with the most
// active calls in the last sample; ties go to the larger name.
func (r *liveRun) chooseVictim(p1 []*liveNode) *liveNode {
	r.mu.Lock()
	defer r.mu.Unlock()
	best := p1[len(p1)-1]
	bestCalls := -1
	for _, n := range p1[1:] {
		c := 0
		if r.lastSample != nil {
			c = r.lastSample.p1Calls[n.name]
		}
		if c >= bestCalls {
			best, bestCalls = n, c
		}
	}
	return best
}

// place POSTs one call and files the answer.
func (lc *liveCluster) place(ctx context.Context, run *liveRun, n *liveNode, body map[string]any, sent time.Duration) {
	run.mu.Lock()
	afterKill := run.killed != "" && sent >= run.killedAt
	headroom := run.lastSample != nil && run.lastSample.headroom > 0
	run.mu.Unlock()
	r, err := n.Do(ctx, http.MethodPost, "/v1/calls", body, nil)
	if err != nil {
		if ctx.Err() == nil {
			run.failure(afterKill, fmt.Sprintf("%.1fs via %s: %v", sent.Seconds(), n.name, err))
		}
		return
	}
	switch {
	case r.Status == http.StatusCreated:
		var out struct {
			Node string `json:"node"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			run.failure(afterKill, fmt.Sprintf("%.1fs via %s: 201 with a body that is not JSON: %v", sent.Seconds(), n.name, err))
			return
		}
		run.mu.Lock()
		defer run.mu.Unlock()
		name := cmp.Or(run.idToName[out.Node], out.Node)
		run.rep.CallsTotal++
		if afterKill {
			run.rep.CallsByNode.AfterKill[name]++
			if took := time.Since(run.start) - run.killedAt; run.firstAfter == 0 || took < run.firstAfter {
				run.firstAfter = took
			}
		} else {
			run.rep.CallsByNode.BeforeKill[name]++
		}
	case r.Status == http.StatusServiceUnavailable && bytes.Contains(r.Body, []byte("can take the call")):
		run.mu.Lock()
		defer run.mu.Unlock()
		run.rep.Rejected++
		if afterKill {
			run.rep.RejectedAfterKill++
		}
		if headroom {
			run.rep.RejectedWithHeadroom++
		}
		if len(run.rep.RejectionSamples) < 5 {
			run.rep.RejectionSamples = append(run.rep.RejectionSamples, fmt.Sprintf("%.1fs via %s: %s", sent.Seconds(), n.name, oneLine(r.Body)))
		}
	default:
		run.failure(afterKill, fmt.Sprintf("%.1fs via %s: %d %s", sent.Seconds(), n.name, r.Status, oneLine(r.Body)))
	}
}

// sample reads the pools' gossiped load and the members' load age every
// liveSamplePeriod until ctx ends.
func (lc *liveCluster) sample(ctx context.Context, run *liveRun) {
	tick := time.NewTicker(liveSamplePeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		alive := lc.running()
		if len(alive) == 0 {
			continue
		}
		n := alive[0]
		sctx, cancel := context.WithTimeout(ctx, liveSamplePeriod)
		var pools struct {
			Pools []livePool `json:"pools"`
		}
		var cl struct {
			Members []struct {
				Status         string   `json:"status"`
				LoadAgeSeconds *float64 `json:"load_age_seconds"`
			} `json:"members"`
		}
		err := n.GetJSON(sctx, "/v1/pools", &pools)
		if err == nil {
			err = n.GetJSON(sctx, "/debug/cluster", &cl)
		}
		cancel()
		if err != nil {
			continue
		}
		s := liveSample{at: time.Since(run.start), p1Calls: map[string]int{}}
		run.mu.Lock()
		killed := run.killed
		run.mu.Unlock()
		overflow := ""
		for _, p := range pools.Pools {
			if p.Name == "p1" {
				s.headroom += p.Headroom
				overflow = p.Overflow
				for _, pn := range p.Nodes {
					if pn.Name != killed {
						s.p1Calls[pn.Name] = pn.ActiveCalls
					}
				}
			}
		}
		for _, p := range pools.Pools {
			if overflow != "" && p.Name == overflow {
				s.headroom += p.Headroom
			}
		}
		for _, m := range cl.Members {
			if m.Status == "alive" && m.LoadAgeSeconds != nil {
				s.loadAge = max(s.loadAge, *m.LoadAgeSeconds)
			}
		}
		run.mu.Lock()
		run.samples = append(run.samples, s)
		run.lastSample = &run.samples[len(run.samples)-1]
		run.mu.Unlock()
	}
}

// maxMean is the time-average of max/mean active calls over the samples in
// [from, to) that count by simulations.MaxMeanCalls, the simulator's
// definition of the measure.
func maxMean(samples []liveSample, capacity int, from, to time.Duration) float64 {
	sum, k := 0.0, 0
	calls := make([]int, 0, 8)
	for _, s := range samples {
		if s.at < from || s.at >= to {
			continue
		}
		calls = slices.AppendSeq(calls[:0], maps.Values(s.p1Calls))
		if r, ok := simulations.MaxMeanCalls(calls, capacity); ok {
			sum += r
			k++
		}
	}
	if k == 0 {
		return 0
	}
	return sum / float64(k)
}

// joinTo90 is the time from the join until the first sample in which the
// joined node carried at least simulations.JoinReachShare of p1's mean
// active calls; nil if none did.
func joinTo90(samples []liveSample, joined string, joinedAt time.Duration) *float64 {
	for _, s := range samples {
		c, ok := s.p1Calls[joined]
		if s.at < joinedAt || !ok {
			continue
		}
		total := 0
		for _, n := range s.p1Calls {
			total += n
		}
		if mean := float64(total) / float64(len(s.p1Calls)); total > 0 && float64(c) >= simulations.JoinReachShare*mean {
			d := (s.at - joinedAt).Seconds()
			return &d
		}
	}
	return nil
}

func (r *liveRun) report(cfg Config, p1 []*liveNode) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &r.rep
	rep.Mode, rep.Seed, rep.Nodes, rep.Store = "live", cfg.Seed, cfg.Nodes, cmp.Or(redactDSN(cfg.Store), "badger per node")
	rep.DurationSeconds, rep.Rate, rep.HoldSeconds, rep.CapacityPerNode = cfg.Duration.Seconds(), cfg.Rate, cfg.Hold.Seconds(), cfg.Capacity
	rep.Samples, rep.KilledNode = len(r.samples), r.killed
	end := cfg.Duration + time.Hour
	if r.killed != "" {
		rep.KilledAtSeconds = r.killedAt.Seconds()
		rep.FirstCallAfterKill = r.firstAfter.Seconds()
		rep.MaxMeanCalls = maxMean(r.samples, cfg.Capacity, 0, r.killedAt)
		rep.MaxMeanCallsAfterKill = maxMean(r.samples, cfg.Capacity, r.killedAt, end)
		after := rep.CallsByNode.AfterKill
		taken := after[r.killed] == 0
		for _, n := range p1 {
			if n.name != r.killed && after[n.name] == 0 {
				taken = false
			}
		}
		rep.KilledShareTakenOver = taken
	} else {
		rep.MaxMeanCalls = maxMean(r.samples, cfg.Capacity, 0, end)
	}
	if r.joined != "" {
		rep.JoinedNode, rep.JoinedAtSeconds = r.joined, r.joinedAt.Seconds()
		rep.JoinTo90Seconds = joinTo90(r.samples, r.joined, r.joinedAt)
	}
	ages := 0.0
	for _, s := range r.samples {
		ages += s.loadAge
	}
	if len(r.samples) > 0 {
		rep.MeanLoadAgeSeconds = ages / float64(len(r.samples))
	}
	rep.Notes = append(rep.Notes,
		"active calls per node are the gossiped figures of GET /v1/pools, sampled every 500 ms; they are up to mean_load_age_seconds stale",
		"rejected counts 503s saying no node of the pool (or its overflow) can take the call; rejected_with_headroom those sent while the last sample showed headroom > 0, a figure as stale as the gossip",
		"failed counts other errors (e.g. a node that died before the cluster noticed); calls are split before/after the kill by the time they were sent")
	rep.Notes = append(rep.Notes, "max/mean active calls counts the samples whose mean is at least one call and 10% of the capacity per node, as the simulator does (simulations.MaxMeanCalls)")
	if cfg.Store == "" {
		rep.Notes = append(rep.Notes, "no --store: each node keeps its own badger folder, so state does not follow actors; the run provisions again after the kill")
	}
	return rep
}

func (rep *Report) write(dir string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(rep.markdown()), 0o644)
}

// measures are the rows of report.md's table and of Summary.
func (rep *Report) measures() [][2]string {
	rows := [][2]string{
		{"calls taken", fmt.Sprint(rep.CallsTotal)},
		{"rejected", fmt.Sprintf("%d (with headroom %d)", rep.Rejected, rep.RejectedWithHeadroom)},
		{"failed (other errors)", fmt.Sprintf("%d (%d after the kill)", rep.Failed, rep.FailedAfterKill)},
		{"max/mean active calls", fmt.Sprintf("%.3f (after the kill %.3f)", rep.MaxMeanCalls, rep.MaxMeanCallsAfterKill)},
		{"samples", fmt.Sprint(rep.Samples)},
		{"mean load age", fmt.Sprintf("%.2f s", rep.MeanLoadAgeSeconds)},
	}
	if rep.JoinedNode != "" {
		rows = append(rows, [2]string{"joined node", fmt.Sprintf("%s at %.1f s", rep.JoinedNode, rep.JoinedAtSeconds)},
			[2]string{"joined node at 90% of p1's mean active calls", simulations.OrNA(rep.JoinTo90Seconds, "%.1f s after it")})
	}
	if rep.KilledNode != "" {
		rows = append(rows, [2]string{"killed node", fmt.Sprintf("%s at %.1f s", rep.KilledNode, rep.KilledAtSeconds)},
			[2]string{"killed share taken over", fmt.Sprint(rep.KilledShareTakenOver)},
			[2]string{"first call taken after the kill", fmt.Sprintf("%.1f s after it", rep.FirstCallAfterKill)})
	}
	return rows
}

func (rep *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Live simulation, seed %d\n\n", rep.Seed)
	fmt.Fprintf(&b, "%d nodes of pool p1 on loopback (%s), %.0f s of Poisson arrivals at %.1f/s, mean hold %.1f s, capacity %d calls per node.\n\n",
		rep.Nodes, rep.Store, rep.DurationSeconds, rep.Rate, rep.HoldSeconds, rep.CapacityPerNode)
	b.WriteString("| measure | value |\n|---|---|\n")
	for _, m := range rep.measures() {
		fmt.Fprintf(&b, "| %s | %s |\n", m[0], m[1])
	}
	b.WriteString("\n## Calls by node\n\n| node | before the kill | after the kill |\n|---|---|---|\n")
	names := slices.Sorted(maps.Keys(rep.CallsByNode.BeforeKill))
	for _, n := range slices.Sorted(maps.Keys(rep.CallsByNode.AfterKill)) {
		if _, ok := rep.CallsByNode.BeforeKill[n]; !ok {
			names = append(names, n)
		}
	}
	for _, n := range names {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", n, rep.CallsByNode.BeforeKill[n], rep.CallsByNode.AfterKill[n])
	}
	for _, list := range []struct {
		title string
		items []string
	}{{"Notes", rep.Notes}, {"First failures", rep.FailureSamples}} {
		if len(list.items) > 0 {
			fmt.Fprintf(&b, "\n## %s\n\n- %s\n", list.title, strings.Join(list.items, "\n- "))
		}
	}
	return b.String()
}

// Summary is the few lines printed after a run.
func (rep *Report) Summary(w io.Writer, out string) {
	fmt.Fprintf(w, "wrote report.json and report.md in %s\n", out)
	for _, m := range rep.measures() {
		fmt.Fprintf(w, "%s: %s\n", m[0], m[1])
	}
	fmt.Fprintf(w, "calls by node before the kill %v, after %v\n", rep.CallsByNode.BeforeKill, rep.CallsByNode.AfterKill)
}

// redactDSN drops a password from a postgres:// DSN for reports.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "(a DSN that is not a URL)"
}

// oneLine is a reply body on one line, for the report.
func oneLine(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") }
