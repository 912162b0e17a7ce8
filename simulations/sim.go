package simulations

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard-pbx/switchboard/placement"
)

// Ours names our placement in results: tier 1 ChoosePool, tier 2
// PowerOfTwo with overflow (PlaceCall), device-group actors by BoundedLoad.
const Ours = "ours"

// Baselines are the strategies every run compares against, on the same
// workload: each places both device-group actors and calls (over the
// group's pool, no overflow); a node at capacity refuses the call.
func Baselines() []string {
	return []string{placement.NameRandom, placement.NameRendezvous, placement.NameLeastLoaded}
}

// epoch is virtual time 0, for the times a placement.LoadView takes.
var epoch = time.Unix(0, 0).UTC()

// at is virtual time t (seconds) as a time.Time.
func at(t float64) time.Time { return epoch.Add(time.Duration(t * float64(time.Second))) }

// ErrInvariant is wrapped by Run's error when a run breaks an invariant.
var ErrInvariant = errors.New("simulations: invariant broken")

// Config is how to run a scenario.
type Config struct {
	Seed uint64
	// Progress, if not nil, is told how many calls were simulated since its
	// last call. It is called from several goroutines.
	Progress func(calls int)
	// Parallel is how many modes (ours and the baselines) run at once;
	// 0 means GOMAXPROCS. Results do not depend on it.
	Parallel int
	// Trace, if not nil, is told every placement ours makes and every
	// call end, in order, so that a test can replay the same workload into
	// the runtime's directory and compare.
	Trace func(Traced)
}

// DefaultConfig is a run of seed 1 (the seed `switchboard sim` replays
// unless told otherwise) with as many modes at once as GOMAXPROCS, no
// progress and no trace. Run takes a zero Parallel from it.
func DefaultConfig() Config {
	return Config{Seed: 1, Parallel: runtime.GOMAXPROCS(0)}
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	if c.Parallel < 0 {
		return fmt.Errorf("simulations: Parallel %d must be 0 (GOMAXPROCS) or more", c.Parallel)
	}
	return nil
}

// Traced is one placement by a directory owner of ours (or, with End, the
// end of a call it placed). Members are the alive nodes with the reports
// the owners' views hold, measured at AsOf; Member is the chosen one (""
// when the call was rejected or the group found no node).
type Traced struct {
	At       time.Time
	Owner    string
	Kind, ID string
	Route    placement.CallRoute // a call's route; for a device group, Pool only
	Members  []placement.Member
	AsOf     time.Time
	Member   string
	End      bool
}

// PlacementRand is the random source ours places with, for seed.
func PlacementRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x91ace)) }

// trace tells cfg.Trace of a placement by owner o of ours.
func (s *sim) trace(o int, kind, id string, route placement.CallRoute, member string) {
	if s.cfg.Trace == nil || s.mode != Ours {
		return
	}
	t := Traced{At: at(s.now), Owner: s.nodes[o].id, Kind: kind, ID: id, Route: route, AsOf: at(s.reportAt[s.vslot]), Member: member}
	for _, p := range s.pools {
		for _, i := range p.nodes {
			m := s.member(i)
			m.Load = s.reports[s.vslot][i]
			m.Load.Activations = maps.Clone(m.Load.Activations)
			t.Members = append(t.Members, m)
		}
	}
	s.cfg.Trace(t)
}

// Result is a run of one scenario with one seed, ours and every baseline.
type Result struct {
	Scenario Scenario
	Seed     uint64
	Rate     float64 // call arrivals per second, before flash crowds
	Devices  int
	Modes    []ModeResult // Ours first, then Baselines in order
}

// ModeResult is one placement's measures and time series.
type ModeResult struct {
	Name     string
	Measures Measures
	Series   Series
}

// Measures are the figures issue 4 asks for; see the json names.
type Measures struct {
	// MaxMeanActivations is, at the end of the run, the largest over pools
	// of (most device-group actors on a node) / (mean per node), over the
	// alive, not draining nodes.
	MaxMeanActivations     float64 `json:"max_mean_activations"`
	MeanActivationsPerNode float64 `json:"mean_activations_per_node"`
	// MaxMeanCalls is the time average, over the samples taken once per
	// gossip interval after the warm-up, of the worst pool's MaxMeanCalls
	// ratio (see the function: pools whose mean is below its threshold are
	// not sampled). MaxMeanCallsPeak is its largest sample.
	MaxMeanCalls     float64 `json:"max_mean_calls"`
	MaxMeanCallsPeak float64 `json:"max_mean_calls_peak"`
	// MovedOnJoin counts live device-group actors moved (killed and
	// reactivated) because a node joined. Ours moves none, as the runtime
	// does; plain rendezvous moves those the newcomer now owns, as
	// protoactor-go's disthash does. MovedOnJoinRatio is MovedOnJoin / sum
	// over joins of m/(n+1), m the pool's actors and n its nodes before the
	// join; null (n/a) without a join.
	MovedOnJoin      int      `json:"moved_on_join"`
	MovedOnJoinRatio *float64 `json:"moved_on_join_ratio"`
	// JoinTo90Seconds is, over the nodes that joined, the longest time from
	// the join until the node carried at least 90% of its pool's mean active
	// calls (checked every gossip interval); null (n/a) without a join, or
	// when a joined node never got there (JoinsBelow90 counts those).
	JoinTo90Seconds *float64 `json:"join_to_90pct_mean_calls_seconds"`
	JoinsBelow90    int      `json:"joins_below_90pct_mean_calls"`
	// RejectedWithHeadroom counts calls rejected while some alive, not
	// draining node of the group's pool or of its overflow pool had fewer
	// active calls than its capacity.
	RejectedWithHeadroom int `json:"rejected_with_headroom"`
	Rejected             int `json:"rejected"`
	Overflowed           int `json:"overflowed"`
	Refused              int `json:"refused"` // chosen node was full on arrival (stale figures)
	Dropped              int `json:"dropped"` // active calls lost with a crashed node
	CallsTotal           int `json:"calls_total"`
	// GroupPoolChanges counts groups that changed pool, with the reasons
	// ChoosePool gave; GroupsUnplaced groups found no pool at some point.
	GroupPoolChanges int `json:"group_pool_changes"`
	GroupsUnplaced   int `json:"groups_unplaced"`
}

// Series are samples over virtual time, for the plots.
type Series struct {
	Times        []float64   // seconds
	NodeNames    []string    // every node that ever existed
	NodeCalls    [][]float64 // [node][sample] active calls; NaN when dead
	MaxMeanCalls []float64   // worst pool's max/mean active calls; NaN when unsampled
	Rejected     []float64   // cumulative rejected calls
}

// Run simulates sc with cfg.Seed for ours and every baseline. The same seed
// gives the same Result, whatever cfg.Parallel. An invariant broken by ours
// is an error that wraps ErrInvariant and names the seed.
func Run(ctx context.Context, sc Scenario, cfg Config) (*Result, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc = sc.WithDefaults()
	modes := append([]string{Ours}, Baselines()...)
	res := &Result{Scenario: sc, Seed: cfg.Seed, Modes: make([]ModeResult, len(modes))}
	errs := make([]error, len(modes))
	sem := make(chan struct{}, cmp.Or(cfg.Parallel, DefaultConfig().Parallel))
	var wg sync.WaitGroup
	for i, mode := range modes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := newSim(sc, mode, cfg)
			errs[i] = s.run(ctx)
			res.Modes[i] = ModeResult{Name: mode, Measures: s.measures(), Series: s.series}
			if i == 0 {
				res.Rate, res.Devices = s.rate, s.devices
			}
		}()
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

type simNode struct {
	id, name  string
	pool      int
	alive     bool
	draining  bool
	calls     int // true active calls
	acts      int // true device-group actors
	epoch     int32
	scratch   map[string]int // Activations handed to strategies
	everAlive bool
	joinedAt  float64 // virtual time it joined; -1 for a node of the start
	reached90 float64 // seconds from its join to 90% of the pool's mean calls; -1 not yet
}

type simPool struct {
	spec     placement.PoolSpec
	overflow int   // index, -1 for none
	nodes    []int // alive nodes, draining included, in join order
	pinned   float64
	members  []placement.Member // tier-1 view cache
	cacheVer int
}

type group struct {
	id     string
	size   int
	pinned string
	pool   int // -1: none
	host   int // -1: none
}

type callEnd struct {
	at    float64
	seq   uint64
	node  int32
	epoch int32
	owner int32 // the directory owner that placed it
	call  int   // its arrival number
}

type endHeap []callEnd

func (h endHeap) Len() int { return len(h) }
func (h endHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h endHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)   { *h = append(*h, x.(callEnd)) }
func (h *endHeap) Pop() any     { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

type sim struct {
	sc   Scenario
	mode string
	cfg  Config
	wl   *rand.Rand // workload: the same draws in every mode
	rng  *rand.Rand // placement decisions

	nodes   []*simNode
	byID    map[string]int
	alive   []string // alive node IDs, for directory owners
	pools   []*simPool
	poolIdx map[string]int
	groups  []group
	cum     []int // cumulative group sizes
	devices int
	rate    float64

	lag     int
	tick    int
	vslot   int // the ring slot of the reports placement sees
	viewVer int
	// reports of the last lag+1 gossip rounds, [slot][node]; a slot's
	// Activations maps are reused (see onTick).
	reports  [][]placement.Load
	reportAt []float64 // [slot]: when that round was measured
	// views are the directory owners' load views, [owner node]: the
	// reports placement sees plus each owner's optimistic increments.
	views []*placement.LoadView
	specs map[string]placement.PoolSpec

	now      float64
	seq      uint64
	ends     endHeap
	flashes  []Event
	joinExp  float64
	joins    int
	m        Measures
	ratioSum float64
	ratioN   int
	series   Series
	every    int
	invalid  error
	bufA     []placement.Member
	tier1    []placement.Member // tier 1's members, as of tier1Ver
	tier1Ver int
	actStrat placement.Strategy
}

func newSim(sc Scenario, mode string, cfg Config) *sim {
	s := &sim{sc: sc, mode: mode, cfg: cfg, byID: map[string]int{}, poolIdx: map[string]int{}, specs: map[string]placement.PoolSpec{},
		wl:  rand.New(rand.NewPCG(cfg.Seed, 0x3017_10ad)),
		rng: PlacementRand(cfg.Seed),
		lag: int(math.Round(sc.StalenessSeconds / sc.GossipIntervalSeconds)),
	}
	switch mode {
	case Ours:
		s.actStrat = placement.NewBoundedLoad(sc.ActivationEpsilon)
	default:
		s.actStrat, _ = placement.ByName(mode)
	}
	maxNodes := 0
	for i, pc := range sc.Pools {
		spec := placement.PoolSpec{Name: pc.Name, CallCapacityPerNode: pc.CallCapacityPerNode,
			HighWater: pc.HighWater, Labels: pc.Labels, Overflow: pc.Overflow}.WithDefaults()
		s.pools = append(s.pools, &simPool{spec: spec, overflow: -1, pinned: pc.PinnedShare, cacheVer: -1})
		s.poolIdx[pc.Name] = i
		s.specs[pc.Name] = spec
		maxNodes += pc.Nodes
	}
	for _, p := range s.pools {
		if p.spec.Overflow != "" {
			p.overflow = s.poolIdx[p.spec.Overflow]
		}
	}
	for _, e := range sc.Events {
		if e.Kind == EventJoin {
			maxNodes++
		}
	}
	slots := s.lag + 1
	s.reports, s.reportAt = make([][]placement.Load, slots), make([]float64, slots)
	for i := range slots {
		s.reports[i] = make([]placement.Load, maxNodes)
		for n := range maxNodes {
			s.reports[i][n].Activations = map[string]int{}
		}
	}
	for i, pc := range sc.Pools {
		for range pc.Nodes {
			s.addNode(i)
		}
	}

	// Workload: group sizes, pins, and the arrival rate.
	z := rand.NewZipf(s.wl, sc.ZipfS, 1, uint64(sc.MaxGroupSize-1))
	s.groups = make([]group, sc.Groups)
	s.cum = make([]int, sc.Groups)
	for i := range s.groups {
		g := &s.groups[i]
		g.id = "acct-" + strconv.Itoa(i/8) + "/grp-" + strconv.Itoa(i%8)
		g.size = 1 + int(z.Uint64())
		g.pool, g.host = -1, -1
		u := s.wl.Float64()
		for _, p := range s.pools {
			if u < p.pinned {
				g.pinned = p.spec.Name
				break
			}
			u -= p.pinned
		}
		s.devices += g.size
		s.cum[i] = s.devices
	}
	capacity := 0
	for _, p := range s.pools {
		capacity += len(p.nodes) * p.spec.CallCapacityPerNode
	}
	s.rate = sc.Utilization * float64(capacity) / sc.MeanHoldSeconds
	estTicks := int((sc.WarmupSeconds+float64(sc.Calls)/max(s.rate, 1e-9))/sc.GossipIntervalSeconds) + 1
	s.every = max(1, estTicks/600)
	return s
}

func (s *sim) addNode(pool int) int {
	i := len(s.nodes)
	p := s.pools[pool]
	name := p.spec.Name + "-" + strconv.Itoa(len(p.nodes)+s.countDead(pool))
	n := &simNode{id: fmt.Sprintf("%s#%d", name, i), name: name, pool: pool, alive: true, everAlive: true,
		scratch: map[string]int{}, joinedAt: -1, reached90: -1}
	s.nodes = append(s.nodes, n)
	s.views = append(s.views, placement.NewLoadView())
	s.byID[n.id] = i
	s.alive = append(s.alive, n.id)
	p.nodes = append(p.nodes, i)
	s.series.NodeNames = append(s.series.NodeNames, name)
	s.series.NodeCalls = append(s.series.NodeCalls, nanSlice(len(s.series.Times)))
	s.viewVer++
	return i
}

func (s *sim) countDead(pool int) int {
	c := 0
	for _, n := range s.nodes {
		if n.pool == pool && !n.alive {
			c++
		}
	}
	return c
}

func nanSlice(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	return out
}

func (s *sim) broken(format string, args ...any) {
	if s.invalid == nil {
		s.invalid = fmt.Errorf("%w: scenario %s, seed %d, %s at t=%.3fs: %s; replay with: %s",
			ErrInvariant, s.sc.Name, s.cfg.Seed, s.mode, s.now, fmt.Sprintf(format, args...), s.sc.Replay(s.cfg.Seed))
	}
}

// run is the event loop: call ends, gossip ticks, scenario events, group
// registrations and call arrivals, in that order on equal times.
func (s *sim) run(ctx context.Context) error {
	sc := s.sc
	warm := sc.WarmupSeconds
	nextArrival := warm + s.wl.ExpFloat64()/s.rate
	events := sc.Events
	gi, arrivals, reported := 0, 0, 0
	for arrivals < sc.Calls {
		tickAt := float64(s.tick) * sc.GossipIntervalSeconds
		regAt := math.Inf(1)
		if gi < len(s.groups) {
			regAt = warm * float64(gi) / float64(len(s.groups))
		}
		evAt := math.Inf(1)
		if len(events) > 0 {
			evAt = warm + events[0].AtSeconds
		}
		endAt := math.Inf(1)
		if len(s.ends) > 0 {
			endAt = s.ends[0].at
		}
		switch {
		case endAt <= tickAt && endAt <= evAt && endAt <= regAt && endAt <= nextArrival:
			e := heap.Pop(&s.ends).(callEnd)
			s.now = e.at
			if n := s.nodes[e.node]; n.epoch == e.epoch {
				n.calls--
				// The call's activation is gone: its directory owner
				// takes it back from its view (the runtime's Gone).
				s.views[e.owner].Add(n.id, placement.KindCall, -1, at(s.now))
				if s.cfg.Trace != nil && s.mode == Ours {
					s.cfg.Trace(Traced{At: at(s.now), Owner: s.nodes[e.owner].id, Kind: placement.KindCall, ID: callID(e.call), Member: n.id, End: true})
				}
			}
		case tickAt <= evAt && tickAt <= regAt && tickAt <= nextArrival:
			s.now = tickAt
			s.onTick()
		case evAt <= regAt && evAt <= nextArrival:
			s.now = evAt
			s.onEvent(events[0])
			events = events[1:]
		case regAt <= nextArrival:
			s.now = regAt
			s.activate(gi)
			gi++
		default:
			s.now = nextArrival
			s.onArrival(arrivals)
			arrivals++
			nextArrival = s.now + s.wl.ExpFloat64()/(s.rate*s.flashFactor())
			if arrivals%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				if s.cfg.Progress != nil {
					s.cfg.Progress(arrivals - reported)
					reported = arrivals
				}
			}
		}
		if s.invalid != nil && s.mode == Ours {
			return s.invalid
		}
	}
	if s.cfg.Progress != nil && arrivals > reported {
		s.cfg.Progress(arrivals - reported)
	}
	s.sample(true)
	s.m.CallsTotal = arrivals
	if s.mode == Ours {
		return s.invalid
	}
	return nil
}

func (s *sim) flashFactor() float64 {
	f := 1.0
	for _, e := range s.flashes {
		if s.now >= s.sc.WarmupSeconds+e.AtSeconds && s.now < s.sc.WarmupSeconds+e.AtSeconds+e.DurationSeconds {
			f *= e.Factor
		}
	}
	return f
}

// onTick is a gossip round: every node's report as of now is recorded, and
// every directory owner's view from now on holds the reports of lag rounds
// ago (placement.LoadView.Report), which retires the owner's increments
// those reports count.
//
// The slot written is the oldest, whose Activations maps the views hold
// until the Report calls below replace them with the next slot's: nothing
// reads a view in between.
func (s *sim) onTick() {
	slot := s.tick % (s.lag + 1)
	for i, n := range s.nodes {
		r := &s.reports[slot][i]
		r.ActiveCalls, r.Activations[placement.KindDeviceGroup] = n.calls, n.acts
		r.CPU = cpu(n.calls, s.pools[n.pool].spec.CallCapacityPerNode)
	}
	s.reportAt[slot] = s.now
	s.vslot = max(s.tick-s.lag, 0) % (s.lag + 1)
	vs := s.vslot
	asOf := at(s.reportAt[vs])
	for o, owner := range s.nodes {
		if !owner.alive {
			continue
		}
		for i, n := range s.nodes {
			if n.alive {
				s.views[o].Report(n.id, s.reports[vs][i], asOf)
			}
		}
	}
	s.viewVer++
	s.watchJoins()
	if s.tick%s.every == 0 {
		s.sample(false)
	}
	s.tick++
}

// watchJoins records, for each joined node not there yet, when it first
// carries 90% of its pool's mean active calls.
func (s *sim) watchJoins() {
	for _, n := range s.nodes {
		if n.joinedAt < 0 || n.reached90 >= 0 || !n.alive || n.draining {
			continue
		}
		sum, k := 0, 0
		for _, i := range s.pools[n.pool].nodes {
			if nd := s.nodes[i]; !nd.draining {
				sum, k = sum+nd.calls, k+1
			}
		}
		if sum > 0 && float64(n.calls) >= JoinReachShare*float64(sum)/float64(k) {
			n.reached90 = s.now - n.joinedAt
		}
	}
}

// JoinReachShare is the share of its pool's mean active calls a joined
// node must carry to count as having caught up.
const JoinReachShare = 0.9

// sample records the series and the calls max/mean.
func (s *sim) sample(final bool) {
	worst := math.NaN()
	if s.now >= s.sc.WarmupSeconds {
		var calls []int
		for _, p := range s.pools {
			calls = calls[:0]
			for _, i := range p.nodes {
				if nd := s.nodes[i]; !nd.draining {
					calls = append(calls, nd.calls)
				}
			}
			r, ok := MaxMeanCalls(calls, p.spec.CallCapacityPerNode)
			if !ok {
				continue
			}
			if math.IsNaN(worst) || r > worst {
				worst = r
			}
		}
		if !math.IsNaN(worst) && !final {
			s.ratioSum += worst
			s.ratioN++
			s.m.MaxMeanCallsPeak = max(s.m.MaxMeanCallsPeak, worst)
		}
	}
	if final && len(s.series.Times) > 0 && s.series.Times[len(s.series.Times)-1] == s.now {
		return
	}
	s.series.Times = append(s.series.Times, s.now)
	for i, n := range s.nodes {
		v := math.NaN()
		if n.alive {
			v = float64(n.calls)
		}
		s.series.NodeCalls[i] = append(s.series.NodeCalls[i], v)
	}
	s.series.MaxMeanCalls = append(s.series.MaxMeanCalls, worst)
	s.series.Rejected = append(s.series.Rejected, float64(s.m.Rejected))
}

// owner is the directory owner of key among the alive nodes.
func (s *sim) owner(key string) int { return s.byID[placement.Owner(key, s.alive)] }

func (s *sim) member(i int) placement.Member {
	n := s.nodes[i]
	return placement.Member{ID: n.id, Name: n.name, Pool: s.pools[n.pool].spec.Name, Draining: n.draining,
		Load: placement.Load{Activations: n.scratch}}
}

// cpu models a node's CPU from its active calls: 5% idle, 90% at capacity.
func cpu(calls, capacity int) float64 { return 0.05 + 0.85*float64(calls)/float64(capacity) }

// callMembers appends to buf pool p's members with their active calls and
// CPU as owner o's view holds them.
func (s *sim) callMembers(buf []placement.Member, p, o int) []placement.Member {
	v := s.views[o]
	for _, i := range s.pools[p].nodes {
		m := s.member(i)
		m.Load.ActiveCalls, m.Load.CPU = v.ActiveCalls(m.ID), v.CPU(m.ID)
		buf = append(buf, m)
	}
	return buf
}

// poolStates is tier 1's view, built as the runtime builds it
// (placement.PoolStates): the pools' specs and their nodes with the
// reported active calls, nothing reserved.
func (s *sim) poolStates() []placement.PoolState {
	if s.tier1Ver != s.viewVer {
		vs := s.vslot
		s.tier1 = s.tier1[:0]
		for _, p := range s.pools {
			for _, i := range p.nodes {
				m := s.member(i)
				m.Load = s.reports[vs][i] // the slot's maps outlive this cache (rebuilt every round)
				s.tier1 = append(s.tier1, m)
			}
		}
		s.tier1Ver = s.viewVer
	}
	return placement.PoolStates(s.specs, s.tier1, nil)
}

// activate (re)activates group gi: tier 1 chooses (or keeps) its pool, then
// its actor is placed on a node of the pool.
func (s *sim) activate(gi int) {
	g := &s.groups[gi]
	cur := ""
	if g.pool >= 0 {
		cur = s.pools[g.pool].spec.Name
	}
	states := s.poolStates()
	d, err := placement.ChoosePool(placement.GroupSpec{ID: g.id, Size: g.size, Pinned: g.pinned, Current: cur}, states)
	if g.pool >= 0 && (err != nil || (d.Pool != cur && d.Pool != g.pinned)) {
		// Independent check of "a group never leaves a pool that still
		// meets its conditions", on the figures tier 1 was given.
		st := states[g.pool]
		alive, calls := 0, st.Reserved
		for _, m := range st.Nodes {
			if !m.Draining {
				alive++
				calls += m.Load.ActiveCalls
			}
		}
		if alive > 0 && float64(calls) < st.Spec.HighWater*float64(alive*st.Spec.CallCapacityPerNode) {
			s.broken("group %s left pool %s, which still meets its conditions (%d nodes, %d calls): %s",
				g.id, cur, alive, calls, d.Reason)
		}
	}
	if err != nil {
		s.m.GroupsUnplaced++
		g.pool = -1
		g.host = -1
		return
	}
	np := s.poolIdx[d.Pool]
	if g.pool >= 0 && np != g.pool {
		s.m.GroupPoolChanges++
	}
	g.pool = np
	s.placeActor(g)
}

// placeActor places g's actor on a node of its pool with the mode's
// strategy, at the directory owner of its key.
func (s *sim) placeActor(g *group) {
	o := s.owner(placement.Key(placement.KindDeviceGroup, g.id))
	buf := s.bufA[:0]
	for _, i := range s.pools[g.pool].nodes {
		m := s.member(i)
		m.Load.Activations[placement.KindDeviceGroup] = s.views[o].Activations(m.ID, placement.KindDeviceGroup)
		buf = append(buf, m)
	}
	s.bufA = buf
	d, err := s.actStrat.Place(placement.KindDeviceGroup, g.id, buf, s.rng)
	s.trace(o, placement.KindDeviceGroup, g.id, placement.CallRoute{Pool: s.pools[g.pool].spec.Name}, d.Member)
	if err != nil {
		g.host = -1
		s.m.GroupsUnplaced++
		return
	}
	h := s.byID[d.Member]
	if n := s.nodes[h]; !n.alive || n.draining {
		s.broken("%s placed group %s on %s node %s", s.mode, g.id, map[bool]string{true: "draining", false: "dead"}[n.alive], n.name)
	}
	g.host = h
	s.nodes[h].acts++
	s.views[o].Add(s.nodes[h].id, placement.KindDeviceGroup, 1, at(s.now))
}

func (s *sim) unhost(g *group) {
	if g.host >= 0 {
		s.nodes[g.host].acts--
		g.host = -1
	}
}

func (s *sim) onArrival(k int) {
	dev := s.wl.IntN(s.devices)
	hold := s.wl.ExpFloat64() * s.sc.MeanHoldSeconds
	gi := sort.SearchInts(s.cum, dev+1)
	g := &s.groups[gi]
	if g.pool < 0 || g.host < 0 {
		if g.pool >= 0 {
			s.unhost(g)
		}
		s.activate(gi)
	}
	if g.pool < 0 {
		s.reject(g)
		return
	}
	id := callID(k)
	o := s.owner(placement.Key(placement.KindCall, id))
	p := s.pools[g.pool]
	var target int
	if s.mode == Ours {
		t, over, ok := s.placeOurs(id, g.pool, o)
		if s.cfg.Trace != nil {
			chosen := ""
			if ok {
				chosen = s.nodes[t].id
			}
			s.trace(o, placement.KindCall, id, s.route(g.pool), chosen)
		}
		if !ok {
			s.reject(g)
			return
		}
		if over {
			s.m.Overflowed++
		}
		target = t
	} else {
		buf := s.callMembers(s.bufA[:0], g.pool, o)
		s.bufA = buf
		placement.SetCallLoad(buf, placement.KindCall)
		d, err := s.actStrat.Place(placement.KindCall, id, buf, s.rng)
		if err != nil {
			s.reject(g)
			return
		}
		target = s.byID[d.Member]
		if s.nodes[target].calls >= p.spec.CallCapacityPerNode {
			s.m.Refused++
			s.reject(g)
			return
		}
	}
	n := s.nodes[target]
	if !n.alive || n.draining {
		s.broken("call %s placed on %s, which is dead or draining", id, n.name)
	}
	n.calls++
	s.views[o].Add(n.id, placement.KindCall, 1, at(s.now))
	s.seq++
	heap.Push(&s.ends, callEnd{at: s.now + hold, seq: s.seq, node: int32(target), epoch: n.epoch, owner: int32(o), call: k})
}

func callID(k int) string { return "call-" + strconv.Itoa(k) }

// placeOurs is tier 2 as the runtime's directory owner o runs it: the
// group's call route (placement.RouteOf) over the pool and its overflow as
// o's view holds them; a node that is full on arrival refuses the call,
// which o counts full (LoadView.MarkFull) and places again while
// placement.RetryAfterFull allows.
func (s *sim) placeOurs(id string, pool, o int) (int, bool, bool) {
	s.bufA = s.callMembers(s.bufA[:0], pool, o)
	if p := s.pools[pool]; p.overflow >= 0 {
		s.bufA = s.callMembers(s.bufA, p.overflow, o)
	}
	route := s.route(pool)
	for refused := 1; ; refused++ {
		d, over, capacity, err := route.Place(id, s.bufA, s.rng)
		if err != nil {
			if !errors.Is(err, placement.ErrNoCapacity) {
				s.broken("PlaceCall %s: %v", id, err)
			}
			return -1, false, false
		}
		t := s.byID[d.Member]
		if s.nodes[t].calls < capacity {
			return t, over, true
		}
		s.m.Refused++
		s.views[o].MarkFull(d.Member, capacity, at(s.now))
		if !placement.RetryAfterFull(refused) {
			return -1, false, false
		}
		for i := range s.bufA {
			if s.bufA[i].ID == d.Member {
				s.bufA[i].Load.ActiveCalls = s.views[o].ActiveCalls(d.Member)
			}
		}
	}
}

// route is the call route of a group in pool.
func (s *sim) route(pool int) placement.CallRoute {
	p := s.pools[pool]
	var ov *placement.PoolSpec
	if p.overflow >= 0 {
		ov = &s.pools[p.overflow].spec
	}
	return placement.RouteOf(p.spec, ov, s.sc.CPULimit)
}

// reject counts a rejected call and whether its pool or overflow had room.
func (s *sim) reject(g *group) {
	s.m.Rejected++
	if g.pool < 0 {
		return
	}
	for _, p := range []int{g.pool, s.pools[g.pool].overflow} {
		if p < 0 {
			continue
		}
		for _, i := range s.pools[p].nodes {
			if n := s.nodes[i]; !n.draining && n.calls < s.pools[p].spec.CallCapacityPerNode {
				s.m.RejectedWithHeadroom++
				if s.mode == Ours {
					s.broken("call rejected while node %s of pool %s has %d of %d calls", n.name,
						s.pools[p].spec.Name, n.calls, s.pools[p].spec.CallCapacityPerNode)
				}
				return
			}
		}
	}
}

func (s *sim) onEvent(e Event) {
	p := s.poolIdx[e.Pool]
	switch e.Kind {
	case EventFlash:
		s.flashes = append(s.flashes, e)
	case EventCrash:
		if i, ok := s.nth(p, e.Node); ok {
			s.crash(i)
		}
	case EventOut:
		n := len(s.pools[p].nodes)
		if e.Count > 0 {
			n = min(n, e.Count)
		}
		for _, i := range append([]int(nil), s.pools[p].nodes[:n]...) {
			s.crash(i)
		}
	case EventDrain:
		if i, ok := s.nth(p, e.Node); ok {
			s.nodes[i].draining = true
			s.viewVer++
			s.reactivateFrom(i)
		}
	case EventJoin:
		s.join(p)
	}
}

func (s *sim) nth(p, k int) (int, bool) {
	ns := s.pools[p].nodes
	if k < 0 || k >= len(ns) {
		return 0, false
	}
	return ns[k], true
}

// crash kills node i: its calls drop, and its actors reactivate elsewhere
// on their next message.
func (s *sim) crash(i int) {
	n := s.nodes[i]
	if !n.alive {
		return
	}
	n.alive = false
	n.epoch++
	s.m.Dropped += n.calls
	n.calls = 0
	s.alive = without(s.alive, n.id)
	p := s.pools[n.pool]
	p.nodes = without(p.nodes, i)
	s.viewVer++
	s.reactivateFrom(i)
}

// reactivateFrom passivates every group hosted on node i: each
// reactivates (tier 1 again, then a new host) on its next call, as an
// actor of a crashed or drained node does on its next message, so the
// moves spread over time and gossip keeps up with them.
func (s *sim) reactivateFrom(i int) {
	for gi := range s.groups {
		if g := &s.groups[gi]; g.host == i {
			s.unhost(g)
		}
	}
}

// join adds a node to pool p. Ours moves no live actor to it, as the
// runtime does not: new work lands on it by placement, calls at once (they
// compare active calls), device-group actors as they (re)activate. Plain
// rendezvous moves the actors the newcomer now owns, as protoactor-go's
// disthash kills them; random and least-loaded move none.
func (s *sim) join(p int) {
	pool := s.pools[p]
	m := 0
	for gi := range s.groups {
		if s.groups[gi].pool == p && s.groups[gi].host >= 0 {
			m++
		}
	}
	ni := s.addNode(p)
	nw := s.nodes[ni]
	nw.joinedAt = s.now
	s.joins++
	var ids []string // the pool's nodes that are not draining, the newcomer too
	for _, i := range pool.nodes {
		if !s.nodes[i].draining {
			ids = append(ids, s.nodes[i].id)
		}
	}
	s.joinExp += float64(m) / float64(len(ids))
	if s.mode != placement.NameRendezvous {
		return
	}
	for gi := range s.groups {
		g := &s.groups[gi]
		if g.pool != p || g.host < 0 {
			continue
		}
		if placement.Owner(placement.Key(placement.KindDeviceGroup, g.id), ids) == nw.id {
			s.unhost(g)
			g.host = ni
			nw.acts++
			s.m.MovedOnJoin++
		}
	}
}

func (s *sim) measures() Measures {
	m := s.m
	if s.ratioN > 0 {
		m.MaxMeanCalls = s.ratioSum / float64(s.ratioN)
	}
	if s.joins > 0 {
		r := 0.0
		if s.joinExp > 0 {
			r = round4(float64(m.MovedOnJoin) / s.joinExp)
		}
		m.MovedOnJoinRatio = &r
		slowest := 0.0
		for _, n := range s.nodes {
			switch {
			case n.joinedAt < 0:
			case n.reached90 < 0:
				m.JoinsBelow90++
			default:
				slowest = max(slowest, n.reached90)
			}
		}
		if m.JoinsBelow90 == 0 {
			m.JoinTo90Seconds = &slowest
		}
	}
	total, nodes := 0, 0
	for _, p := range s.pools {
		most, sum, k := 0, 0, 0
		for _, i := range p.nodes {
			if nd := s.nodes[i]; !nd.draining {
				most, sum, k = max(most, nd.acts), sum+nd.acts, k+1
			}
		}
		if k == 0 || sum == 0 {
			continue
		}
		total, nodes = total+sum, nodes+k
		m.MaxMeanActivations = max(m.MaxMeanActivations, float64(most)*float64(k)/float64(sum))
	}
	if nodes > 0 {
		m.MeanActivationsPerNode = float64(total) / float64(nodes)
	}
	m.MaxMeanCalls = round4(m.MaxMeanCalls)
	m.MaxMeanCallsPeak = round4(m.MaxMeanCallsPeak)
	m.MaxMeanActivations = round4(m.MaxMeanActivations)
	m.MeanActivationsPerNode = round4(m.MeanActivationsPerNode)
	return m
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// without returns xs without its first x.
func without[T comparable](xs []T, x T) []T {
	if i := slices.Index(xs, x); i >= 0 {
		return slices.Delete(xs, i, i+1)
	}
	return xs
}
