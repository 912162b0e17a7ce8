package lease

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testConfig() Config {
	c := DefaultConfig() // TTL 5s, Margin 1s, MaxClockSkew 10s
	return c.withDefaults()
}

// TestValid_OwnLeaseEndsMarginBeforeTTL: a node serves for TTL - Margin
// after its last successful renewal began, and not at all before one.
func TestValid_OwnLeaseEndsMarginBeforeTTL(t *testing.T) {
	cfg := testConfig()
	tests := []struct {
		name  string
		start time.Time
		now   time.Time
		want  bool
	}{
		{"never renewed", time.Time{}, t0, false},
		{"just renewed", t0, t0, true},
		{"just before TTL-Margin", t0, t0.Add(4*time.Second - time.Nanosecond), true},
		{"at TTL-Margin", t0, t0.Add(4 * time.Second), false},
		{"after TTL", t0, t0.Add(6 * time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.start, tt.now, cfg); got != tt.want {
				t.Fatalf("Valid(%v, %v) = %v, want %v", tt.start, tt.now, got, tt.want)
			}
		})
	}
}

// TestExpired_ByObservationOrWallClock covers the three rules by which an
// observer counts another node gone, and that a node whose records keep
// changing is never counted gone, whatever its wall clock says.
func TestExpired_ByObservationOrWallClock(t *testing.T) {
	cfg := testConfig()
	noSkewRule := cfg
	noSkewRule.MaxClockSkew = -1
	fresh := Observation{Record: NodeRecord{ID: "b", RenewedAt: t0}, Version: 7, Since: t0}
	tests := []struct {
		name    string
		o       Observation
		present bool
		now     time.Time
		cfg     Config
		want    bool
	}{
		{"absent record", Observation{}, false, t0, cfg, true},
		{"seen changing a moment ago", fresh, true, t0.Add(time.Second), cfg, false},
		{"unchanged just under TTL", fresh, true, t0.Add(5*time.Second - time.Nanosecond), cfg, false},
		{"unchanged for TTL by the observer's clock", fresh, true, t0.Add(5 * time.Second), cfg, true},
		{
			"first seen now, renewal time long past (observer just started)",
			Observation{Record: NodeRecord{RenewedAt: t0}, Since: t0.Add(16 * time.Second)}, true, t0.Add(16 * time.Second), cfg, true,
		},
		{
			"first seen now, renewal time within TTL+skew: wait",
			Observation{Record: NodeRecord{RenewedAt: t0}, Since: t0.Add(14 * time.Second)}, true, t0.Add(14 * time.Second), cfg, false,
		},
		{
			"wall-clock rule off: only observation counts",
			Observation{Record: NodeRecord{RenewedAt: t0}, Since: t0.Add(time.Hour)}, true, t0.Add(time.Hour + time.Second), noSkewRule, false,
		},
		{
			"writer's clock far ahead: still alive while observed changing",
			Observation{Record: NodeRecord{RenewedAt: t0.Add(time.Hour)}, Since: t0}, true, t0.Add(time.Second), cfg, false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expired(tt.o, tt.present, tt.now, tt.cfg); got != tt.want {
				t.Fatalf("Expired = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestExpired_NeverBeforeTheOwnerStopsServing is the safety argument as a
// test: for any renewal start and any delay before an observer first sees
// the write (it cannot see it before the write began), the observer counts
// the node expired only after the node itself stopped serving.
func TestExpired_NeverBeforeTheOwnerStopsServing(t *testing.T) {
	cfg := testConfig()
	cfg.MaxClockSkew = -1 // the observation rule alone; the wall-clock rule assumes skew < MaxClockSkew
	for seenAfter := time.Duration(0); seenAfter <= 3*time.Second; seenAfter += 250 * time.Millisecond {
		o := Observation{Record: NodeRecord{RenewedAt: t0}, Since: t0.Add(seenAfter)}
		for now := t0; now.Before(t0.Add(10 * time.Second)); now = now.Add(50 * time.Millisecond) {
			if Expired(o, true, now, cfg) && Valid(t0, now, cfg) {
				t.Fatalf("seen %v after the renewal began: at %v the observer counts the node expired while it still serves", seenAfter, now.Sub(t0))
			}
		}
	}
}

func TestDecide_TakesAbsentOwnOrExpired(t *testing.T) {
	other := &OwnerRecord{Node: "b"}
	tests := []struct {
		name    string
		cur     *OwnerRecord
		expired bool
		want    bool
	}{
		{"no owner", nil, false, true},
		{"own record", &OwnerRecord{Node: "a"}, false, true},
		{"live other node", other, false, false},
		{"expired other node", other, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.cur, "a", tt.expired); got != tt.want {
				t.Fatalf("Decide = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestObserve_KeepsSinceWhileVersionUnchanged(t *testing.T) {
	rec := NodeRecord{ID: "b"}
	known := observe(nil, map[string]versioned{"b": {rec, 1}}, t0)
	known = observe(known, map[string]versioned{"b": {rec, 1}}, t0.Add(3*time.Second))
	if got := known["b"].Since; !got.Equal(t0) {
		t.Fatalf("unchanged version: Since = %v, want %v", got, t0)
	}
	known = observe(known, map[string]versioned{"b": {rec, 2}}, t0.Add(4*time.Second))
	if got := known["b"].Since; !got.Equal(t0.Add(4 * time.Second)) {
		t.Fatalf("new version: Since = %v, want the time it was seen", got)
	}
	if known = observe(known, map[string]versioned{}, t0.Add(5*time.Second)); len(known) != 0 {
		t.Fatalf("a record gone from the scan is still known: %v", known)
	}
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"zero config", func(c *Config) { *c = Config{} }, true},
		{"margin not below TTL", func(c *Config) { c.TTL, c.Margin = time.Second, time.Second }, false},
		{"renewal too slow for the TTL", func(c *Config) { c.TTL, c.RenewEvery = 5*time.Second, 3*time.Second }, false},
		{"forget before TTL", func(c *Config) { c.ForgetAfter = time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestDeadOnThisHost_OnlyWhenProvablyGone(t *testing.T) {
	self := Process{Host: "h", Boot: "b1", PIDNS: "pid:[1]", PID: 100}
	running := func(pid int) bool { return pid == 100 || pid == 200 }
	tests := []struct {
		name string
		w    Process
		want bool
	}{
		{"same host, pid gone", Process{Host: "h", Boot: "b1", PIDNS: "pid:[1]", PID: 300}, true},
		{"same host, pid runs", Process{Host: "h", Boot: "b1", PIDNS: "pid:[1]", PID: 200}, false},
		{"this very process (another node in it)", self, false},
		{"another host", Process{Host: "other", Boot: "b1", PIDNS: "pid:[1]", PID: 300}, false},
		{"before a reboot", Process{Host: "h", Boot: "b0", PIDNS: "pid:[1]", PID: 300}, false},
		{"another PID namespace (a container)", Process{Host: "h", Boot: "b1", PIDNS: "pid:[2]", PID: 300}, false},
		{"a record without a process", Process{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeadOnThisHost(tt.w, self, running); got != tt.want {
				t.Fatalf("DeadOnThisHost = %v, want %v", got, tt.want)
			}
		})
	}
	if DeadOnThisHost(Process{Host: "h", PID: 300}, Process{Host: "h", PID: 100}, running) {
		t.Fatal("without boot and namespace ids (not Linux) the rule must not apply")
	}
}
