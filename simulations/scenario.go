package simulations

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// Scenario is one simulated run: the cluster, the workload and the events,
// as a JSON file in scenarios/. Zero fields take the defaults that
// WithDefaults documents. Times are virtual seconds.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Path is the file LoadScenario read it from, which the replay command
	// names; "": simulations/scenarios/<name>.json.
	Path string `json:"-"`

	Pools []PoolConfig `json:"pools"`

	Groups       int     `json:"groups"`         // device groups; 0: 10,000
	ZipfS        float64 `json:"zipf_s"`         // group size ~ 1 + Zipf(s, v=1); 0: 1.3
	MaxGroupSize int     `json:"max_group_size"` // 0: 500 devices

	Calls           int     `json:"calls"`             // call arrivals simulated; 0: 100,000
	Utilization     float64 `json:"utilization"`       // offered load over total call capacity, sets the arrival rate; 0: 0.6
	MeanHoldSeconds float64 `json:"mean_hold_seconds"` // exponential holding time; 0: 120
	WarmupSeconds   float64 `json:"warmup_seconds"`    // groups register over [0, warmup) before the first call; 0: 60

	GossipIntervalSeconds float64 `json:"gossip_interval_seconds"` // load reports refresh; 0: 1
	StalenessSeconds      float64 `json:"staleness_seconds"`       // age of the figures placement sees, a multiple of the interval; 0: 2
	ActivationEpsilon     float64 `json:"activation_epsilon"`      // BoundedLoad slack for device-group actors; 0: 0.02
	CPULimit              float64 `json:"cpu_limit"`               // tier-2 CPU condition; 0: placement.DefaultCPULimit

	Events []Event `json:"events,omitempty"`
}

// PoolConfig is one pool and its prescribed conditions.
type PoolConfig struct {
	Name                string            `json:"name"`
	Nodes               int               `json:"nodes"`
	CallCapacityPerNode int               `json:"call_capacity_per_node,omitempty"` // 0: placement.DefaultCallCapacityPerNode
	HighWater           float64           `json:"high_water,omitempty"`             // 0: placement.DefaultHighWater
	Labels              map[string]string `json:"labels,omitempty"`
	Overflow            string            `json:"overflow,omitempty"`
	// Share is the fraction of device groups pinned to this pool in
	// provisioning; the others choose by the conditions.
	PinnedShare float64 `json:"pinned_share,omitempty"`
}

// Event kinds.
const (
	EventCrash = "crash" // node Pool/Node dies: its calls drop, its actors reactivate elsewhere
	EventJoin  = "join"  // a new node joins Pool
	EventDrain = "drain" // node Pool/Node takes no new work; its actors move, its calls finish
	EventFlash = "flash" // the arrival rate is multiplied by Factor for DurationSeconds
	EventOut   = "pool-outage"
)

// Event is something that happens to the cluster at AtSeconds after the
// first call (the end of the warm-up).
type Event struct {
	AtSeconds       float64 `json:"at_seconds"`
	Kind            string  `json:"kind"`
	Pool            string  `json:"pool,omitempty"`
	Node            int     `json:"node,omitempty"`             // index in the pool, for crash and drain
	Count           int     `json:"count,omitempty"`            // pool-outage: nodes that crash, 0 for all
	Factor          float64 `json:"factor,omitempty"`           // flash
	DurationSeconds float64 `json:"duration_seconds,omitempty"` // flash
}

// LoadScenario reads a scenario file; unknown fields are an error, so a
// typo does not silently fall back to a default.
func LoadScenario(path string) (Scenario, error) {
	var s Scenario
	if err := loadScenario(path, &s); err != nil {
		return Scenario{}, err
	}
	s.Path = path
	return s, nil
}

// loadScenario decodes the scenario file at path into s, refusing unknown
// fields, and validates it.
func loadScenario(path string, s interface{ Validate() error }) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("simulations: read scenario: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return fmt.Errorf("simulations: scenario %s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("simulations: scenario %s: %w", path, err)
	}
	return nil
}

// Replay is the command that replays s with seed.
func (s Scenario) Replay(seed uint64) string {
	path := cmp.Or(s.Path, filepath.Join("simulations", "scenarios", s.Name+".json"))
	return fmt.Sprintf("switchboard sim --scenario %s --seed %d --out out/sim/%s-%d", path, seed, s.Name, seed)
}

// WithDefaults returns s with every zero field set to its default.
func (s Scenario) WithDefaults() Scenario {
	s.Groups = cmp.Or(s.Groups, 10_000)
	s.MaxGroupSize = cmp.Or(s.MaxGroupSize, 500)
	s.Calls = cmp.Or(s.Calls, 100_000)
	s.ZipfS = cmp.Or(s.ZipfS, 1.3)
	s.Utilization = cmp.Or(s.Utilization, 0.6)
	s.MeanHoldSeconds = cmp.Or(s.MeanHoldSeconds, 120)
	s.WarmupSeconds = cmp.Or(s.WarmupSeconds, 60)
	s.GossipIntervalSeconds = cmp.Or(s.GossipIntervalSeconds, 1)
	s.StalenessSeconds = cmp.Or(s.StalenessSeconds, 2)
	s.ActivationEpsilon = cmp.Or(s.ActivationEpsilon, 0.02)
	return s
}

// Validate reports the first problem with s (defaults applied).
func (s Scenario) Validate() error {
	s = s.WithDefaults()
	var errs []error
	if len(s.Pools) == 0 {
		errs = append(errs, errors.New("no pools: add at least one {\"name\":..., \"nodes\":...}"))
	}
	names := map[string]bool{}
	for _, p := range s.Pools {
		if p.Name == "" || names[p.Name] {
			errs = append(errs, fmt.Errorf("pool name %q is empty or repeated", p.Name))
		}
		names[p.Name] = true
		if p.Nodes < 0 || p.PinnedShare < 0 || p.PinnedShare > 1 {
			errs = append(errs, fmt.Errorf("pool %s: nodes %d must be >= 0 and pinned_share in [0,1]", p.Name, p.Nodes))
		}
	}
	for _, p := range s.Pools {
		if p.Overflow != "" && !names[p.Overflow] {
			errs = append(errs, fmt.Errorf("pool %s overflows into unknown pool %q", p.Name, p.Overflow))
		}
	}
	if s.ZipfS <= 1 || s.MaxGroupSize < 1 || s.Groups < 1 || s.Calls < 1 {
		errs = append(errs, fmt.Errorf("need zipf_s > 1, max_group_size, groups and calls >= 1"))
	}
	if s.Utilization <= 0 || s.MeanHoldSeconds <= 0 || s.WarmupSeconds < 0 || s.GossipIntervalSeconds <= 0 || s.StalenessSeconds < 0 {
		errs = append(errs, fmt.Errorf("utilization, mean_hold_seconds and gossip_interval_seconds must be > 0"))
	}
	if lag := s.StalenessSeconds / s.GossipIntervalSeconds; math.Abs(lag-math.Round(lag)) > 1e-9 {
		errs = append(errs, fmt.Errorf("staleness_seconds %v must be a multiple of gossip_interval_seconds %v",
			s.StalenessSeconds, s.GossipIntervalSeconds))
	}
	for i, e := range s.Events {
		switch e.Kind {
		case EventCrash, EventDrain, EventJoin, EventOut:
			if !names[e.Pool] {
				errs = append(errs, fmt.Errorf("event %d (%s): unknown pool %q", i, e.Kind, e.Pool))
			}
		case EventFlash:
			if e.Factor <= 0 || e.DurationSeconds <= 0 {
				errs = append(errs, fmt.Errorf("event %d (flash): factor and duration_seconds must be > 0", i))
			}
		default:
			errs = append(errs, fmt.Errorf("event %d: unknown kind %q (crash, join, drain, flash, pool-outage)", i, e.Kind))
		}
	}
	if !slices.IsSortedFunc(s.Events, func(a, b Event) int { return cmp.Compare(a.AtSeconds, b.AtSeconds) }) {
		errs = append(errs, errors.New("events must be in time order"))
	}
	return errors.Join(errs...)
}
