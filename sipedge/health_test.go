package sipedge

import (
	"slices"
	"testing"
	"time"
)

// Target health is a state machine fed with outcomes and the time: these
// tests drive it directly, after Kamailio's dispatcher (ds_probing_threshold,
// ds_inactive_threshold).

var healthT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	fsA = "192.0.2.10:5060"
	fsB = "192.0.2.11:5060"
)

// step is one outcome fed to Record and the state expected after it.
type step struct {
	ok          bool
	wantUp      bool
	wantChanged bool
}

func TestHealth_DispatcherThresholds(t *testing.T) {
	cfg := HealthConfig{FailAfter: 3, RecoverAfter: 2}
	fail := func(up, changed bool) step { return step{ok: false, wantUp: up, wantChanged: changed} }
	succeed := func(up, changed bool) step { return step{ok: true, wantUp: up, wantChanged: changed} }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"FailAfter failures in a row mark it down", []step{
			fail(true, false), fail(true, false), fail(false, true),
		}},
		{"failures past FailAfter change nothing more", []step{
			fail(true, false), fail(true, false), fail(false, true), fail(false, false), fail(false, false),
		}},
		{"a success resets the failures", []step{
			fail(true, false), fail(true, false), succeed(true, false), fail(true, false), fail(true, false), fail(false, true),
		}},
		{"RecoverAfter successes in a row mark it up", []step{
			fail(true, false), fail(true, false), fail(false, true), succeed(false, false), succeed(true, true),
		}},
		{"a failure while down resets the successes", []step{
			fail(true, false), fail(true, false), fail(false, true),
			succeed(false, false), fail(false, false), succeed(false, false), succeed(true, true),
		}},
		{"successes while up change nothing", []step{
			succeed(true, false), succeed(true, false), succeed(true, false),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHealth(cfg)
			for i, s := range tc.steps {
				now := healthT0.Add(time.Duration(i) * time.Second)
				changed := h.Record(fsA, "udp", s.ok, "status 503", now)
				if changed != s.wantChanged || h.Up(fsA, "udp") != s.wantUp {
					t.Fatalf("step %d (ok=%v): changed %v, up %v; want changed %v, up %v",
						i, s.ok, changed, h.Up(fsA, "udp"), s.wantChanged, s.wantUp)
				}
				if changed {
					if got := h.Snapshot()[0].ChangedAt; !got.Equal(now) {
						t.Fatalf("step %d: ChangedAt = %v, want %v", i, got, now)
					}
				}
			}
		})
	}
}

func TestHealth_LastErrorKeptUntilSuccess(t *testing.T) {
	h := newHealth(HealthConfig{})
	h.Record(fsA, "udp", false, "no response in 2s", healthT0)
	if got := h.Snapshot()[0]; got.LastError != "no response in 2s" || got.Failures != 1 {
		t.Fatalf("after a failure: %+v, want LastError set and Failures 1", got)
	}
	h.Record(fsA, "udp", true, "", healthT0)
	if got := h.Snapshot()[0]; got.LastError != "" || got.Failures != 0 || got.Successes != 1 {
		t.Fatalf("after a success: %+v, want LastError cleared, Failures 0, Successes 1", got)
	}
}

func TestHealth_UnknownTargetIsUp(t *testing.T) {
	h := newHealth(HealthConfig{})
	if !h.Up(fsA, "udp") {
		t.Fatal("Up of a target never seen = false, want true")
	}
	if n := len(h.Snapshot()); n != 0 {
		t.Fatalf("Up registered the target (%d known), want Up to only look", n)
	}
	if !h.Use(fsA, "udp", healthT0) {
		t.Fatal("Use of a target never seen = false, want true")
	}
	snap := h.Snapshot()
	if len(snap) != 1 || !snap[0].Up || !snap[0].UsedAt.Equal(healthT0) {
		t.Fatalf("after Use: %+v, want the target known, up, used at %v", snap, healthT0)
	}
	// The same address over another transport is another target.
	h.Record(fsA, "tcp", false, "x", healthT0)
	h.Record(fsA, "tcp", false, "x", healthT0)
	if !h.Up(fsA, "udp") || h.Up(fsA, "tcp") {
		t.Fatalf("udp up %v, tcp up %v; want transports kept apart", h.Up(fsA, "udp"), h.Up(fsA, "tcp"))
	}
}

func TestHealth_UseReportsDown(t *testing.T) {
	h := newHealth(HealthConfig{FailAfter: 1})
	h.Use(fsA, "udp", healthT0)
	h.Record(fsA, "udp", false, "status 503", healthT0)
	if h.Use(fsA, "udp", healthT0.Add(time.Second)) {
		t.Fatal("Use of a down target = true, want false so the proxy skips it")
	}
}

func TestHealth_DueListsUsedAndForgetsUnused(t *testing.T) {
	h := newHealth(HealthConfig{Forget: 10 * time.Minute})
	h.Use(fsA, "udp", healthT0)
	h.Use(fsB, "udp", healthT0.Add(5*time.Minute))
	if due := h.Due(healthT0.Add(10 * time.Minute)); len(due) != 2 {
		t.Fatalf("Due at exactly Forget after the first use = %+v, want both targets", due)
	}
	// Probes do not keep a target alive: only use does.
	h.Record(fsA, "udp", true, "", healthT0.Add(10*time.Minute))
	due := h.Due(healthT0.Add(10*time.Minute + time.Nanosecond))
	if len(due) != 1 || due[0].Address != fsB {
		t.Fatalf("Due after fsA went unused for longer than Forget = %+v, want only %s", due, fsB)
	}
	snap := h.Snapshot()
	if len(snap) != 1 || snap[0].Address != fsB {
		t.Fatalf("Snapshot = %+v, want fsA forgotten", snap)
	}
	if !h.Up(fsA, "udp") {
		t.Fatal("a forgotten target is not up again")
	}
}

func TestHealth_SnapshotSortedByAddressThenTransport(t *testing.T) {
	h := newHealth(HealthConfig{})
	for _, k := range []targetKey{{fsB, "udp"}, {fsA, "udp"}, {fsA, "tcp"}, {fsB, "tls"}} {
		h.Use(k.addr, k.transport, healthT0)
	}
	var got []targetKey
	for _, th := range h.Snapshot() {
		got = append(got, targetKey{th.Address, th.Transport})
	}
	want := []targetKey{{fsA, "tcp"}, {fsA, "udp"}, {fsB, "tls"}, {fsB, "udp"}}
	if !slices.Equal(got, want) {
		t.Fatalf("Snapshot = %v, want %v", got, want)
	}
}

func TestHealth_ZeroConfigTakesDefaults(t *testing.T) {
	h := newHealth(HealthConfig{})
	want := HealthConfig{Interval: 5 * time.Second, Timeout: 2 * time.Second, FailAfter: 2, RecoverAfter: 2, Forget: 10 * time.Minute}
	if h.cfg != want {
		t.Fatalf("defaults = %+v, want %+v", h.cfg, want)
	}
}
