package sipedge

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// HealthConfig sets how feature-server targets are probed, after
// Kamailio's dispatcher: every target the proxy has used is sent OPTIONS
// every Interval; FailAfter failures in a row (probes or forwarded
// requests that got 408, 503 or no answer) mark it down, and RecoverAfter
// successful probes in a row mark it up again. Down targets are skipped
// by the proxy and left out of DNS answers.
type HealthConfig struct {
	// Interval between probes of one target. Default 5 s.
	Interval time.Duration
	// Timeout for one probe's answer. Default 2 s.
	Timeout time.Duration
	// FailAfter failures in a row mark a target down. Default 2
	// (dispatcher's ds_probing_threshold is 1; one lost UDP packet should
	// not take a target out).
	FailAfter int
	// RecoverAfter successes in a row mark a down target up. Default 2
	// (ds_inactive_threshold).
	RecoverAfter int
	// Forget drops a target not used for this long from probing. Default
	// 10 min.
	Forget time.Duration
}

func (c *HealthConfig) fill() {
	orDefault(&c.Interval, 5*time.Second)
	orDefault(&c.Timeout, 2*time.Second)
	orDefault(&c.FailAfter, 2)
	orDefault(&c.RecoverAfter, 2)
	orDefault(&c.Forget, 10*time.Minute)
}

// TargetHealth is one probed target as /debug/sip/targets shows it.
type TargetHealth struct {
	Address   string    `json:"address"`
	Transport string    `json:"transport"`
	Up        bool      `json:"up"`
	Failures  int       `json:"consecutive_failures"`
	Successes int       `json:"consecutive_successes"`
	ChangedAt time.Time `json:"changed_at,omitzero"`
	UsedAt    time.Time `json:"used_at"`
	LastError string    `json:"last_error,omitempty"`
}

type targetKey struct{ addr, transport string }

// health is the up/down state of targets: a state machine fed with
// outcomes, with no clock or goroutine of its own.
type health struct {
	cfg     HealthConfig
	mu      sync.Mutex
	targets map[targetKey]*TargetHealth
}

func newHealth(cfg HealthConfig) *health {
	cfg.fill()
	return &health{cfg: cfg, targets: map[targetKey]*TargetHealth{}}
}

// Use notes that the proxy is about to use a target (so it gets probed)
// and says whether it is up. A target never seen is up.
func (h *health) Use(addr, transport string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.get(addr, transport)
	t.UsedAt = now
	return t.Up
}

// Up says whether a target is up without marking it used.
func (h *health) Up(addr, transport string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.targets[targetKey{addr, transport}]; ok {
		return t.Up
	}
	return true
}

func (h *health) get(addr, transport string) *TargetHealth {
	k := targetKey{addr, transport}
	t, ok := h.targets[k]
	if !ok {
		t = &TargetHealth{Address: addr, Transport: transport, Up: true}
		h.targets[k] = t
	}
	return t
}

// Record feeds one outcome (a probe or a forwarded request). It returns
// true when the target changed state.
func (h *health) Record(addr, transport string, ok bool, errText string, now time.Time) (changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.get(addr, transport)
	if ok {
		t.Failures, t.Successes, t.LastError = 0, t.Successes+1, ""
	} else {
		t.Successes, t.Failures, t.LastError = 0, t.Failures+1, errText
	}
	changed = ok && !t.Up && t.Successes >= h.cfg.RecoverAfter || !ok && t.Up && t.Failures >= h.cfg.FailAfter
	if changed {
		t.Up, t.ChangedAt = ok, now
	}
	return changed
}

// Due lists the targets to probe now, sorted by address, and forgets the
// ones unused for longer than Forget.
func (h *health) Due(now time.Time) []TargetHealth {
	h.mu.Lock()
	maps.DeleteFunc(h.targets, func(_ targetKey, t *TargetHealth) bool { return now.Sub(t.UsedAt) > h.cfg.Forget })
	h.mu.Unlock()
	return h.Snapshot()
}

// Snapshot lists every known target, sorted by address.
func (h *health) Snapshot() []TargetHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]TargetHealth, 0, len(h.targets))
	for _, t := range h.targets {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b TargetHealth) int {
		return cmp.Or(strings.Compare(a.Address, b.Address), strings.Compare(a.Transport, b.Transport))
	})
	return out
}
