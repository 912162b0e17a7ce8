package sipedge

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The flood limit is a state machine driven by the caller's clock: these
// tests pass the time in and never sleep.

var (
	floodT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	srcA    = netip.MustParseAddr("192.0.2.1")
	srcB    = netip.MustParseAddr("192.0.2.2")
	srcC    = netip.MustParseAddr("2001:db8::3")
)

// allowN counts n packets from ip, spread evenly over span from at, and
// returns how many were allowed and whether one of them started a ban.
func allowN(f *flood, ip netip.Addr, n int, at time.Time, span time.Duration) (allowed int, banned bool) {
	for i := range n {
		ok, b := f.Allow(ip, at.Add(span*time.Duration(i)/time.Duration(max(n, 1))))
		if ok {
			allowed++
		}
		banned = banned || b
	}
	return allowed, banned
}

func TestFlood_LimitWithinWindowIsAllowed(t *testing.T) {
	f := newFlood(FloodConfig{Limit: 20, Window: 2 * time.Second, BanFor: time.Minute})
	allowed, banned := allowN(f, srcA, 20, floodT0, 1900*time.Millisecond)
	if allowed != 20 || banned {
		t.Fatalf("20 packets within one window at Limit 20: allowed %d, banned %v; want all 20 allowed, no ban", allowed, banned)
	}
	if bans := f.Bans(floodT0.Add(2 * time.Second)); len(bans) != 0 {
		t.Fatalf("Bans = %+v, want none", bans)
	}
}

func TestFlood_BanStartsAtLimitPlusOne(t *testing.T) {
	f := newFlood(FloodConfig{Limit: 20, Window: 2 * time.Second, BanFor: time.Minute})
	allowN(f, srcA, 20, floodT0, time.Second)
	at := floodT0.Add(1500 * time.Millisecond)
	ok, banned := f.Allow(srcA, at)
	if ok || !banned {
		t.Fatalf("packet 21 at Limit 20: Allow = (%v, %v), want (false, true): it starts the ban", ok, banned)
	}
	want := Ban{Source: srcA.String(), Since: at, Until: at.Add(time.Minute), Packets: 21, Dropped: 1}
	bans := f.Bans(at)
	if len(bans) != 1 || bans[0] != want {
		t.Fatalf("Bans = %+v, want [%+v]", bans, want)
	}
}

func TestFlood_BannedSourceDroppedAndCounted(t *testing.T) {
	f := newFlood(FloodConfig{Limit: 5, Window: 2 * time.Second, BanFor: time.Minute})
	allowN(f, srcA, 6, floodT0, 0) // the 6th starts the ban
	for i := 1; i <= 10; i++ {
		ok, banned := f.Allow(srcA, floodT0.Add(time.Duration(i)*time.Second))
		if ok || banned {
			t.Fatalf("packet %d while banned: Allow = (%v, %v), want (false, false): dropped, no new ban", i, ok, banned)
		}
	}
	bans := f.Bans(floodT0.Add(11 * time.Second))
	if len(bans) != 1 || bans[0].Dropped != 11 || bans[0].Packets != 6 {
		t.Fatalf("Bans = %+v, want one ban with Dropped 11 (the packet that started it and 10 more) and Packets 6", bans)
	}
	// Another source is counted on its own.
	if allowed, banned := allowN(f, srcB, 5, floodT0.Add(11*time.Second), 0); allowed != 5 || banned {
		t.Fatalf("another source under its limit: allowed %d, banned %v; want 5, false", allowed, banned)
	}
}

func TestFlood_BanExpiresAfterBanFor(t *testing.T) {
	f := newFlood(FloodConfig{Limit: 5, Window: 2 * time.Second, BanFor: 30 * time.Second})
	allowN(f, srcA, 6, floodT0, 0)
	until := floodT0.Add(30 * time.Second)
	if ok, _ := f.Allow(srcA, until.Add(-time.Nanosecond)); ok {
		t.Fatal("a packet one nanosecond before the ban ends was allowed")
	}
	if bans := f.Bans(until); len(bans) != 0 {
		t.Fatalf("Bans at the end of the ban = %+v, want none", bans)
	}
	// After the ban the source starts from zero.
	if allowed, banned := allowN(f, srcA, 5, until, time.Second); allowed != 5 || banned {
		t.Fatalf("after the ban: allowed %d of 5, banned %v; want 5, false", allowed, banned)
	}
	if ok, banned := f.Allow(srcA, until.Add(time.Second)); ok || !banned {
		t.Fatalf("Limit+1 packets after the ban: Allow = (%v, %v), want a new ban", ok, banned)
	}
}

func TestFlood_CountsStartOverEachWindow(t *testing.T) {
	f := newFlood(FloodConfig{Limit: 10, Window: 2 * time.Second, BanFor: time.Minute})
	for w := range 5 {
		start := floodT0.Add(time.Duration(w) * 2 * time.Second)
		if allowed, banned := allowN(f, srcA, 10, start, 1900*time.Millisecond); allowed != 10 || banned {
			t.Fatalf("window %d: allowed %d of 10, banned %v; want each window to start from zero", w, allowed, banned)
		}
	}
}

func TestFlood_ExemptSourceNeverCountedOrBanned(t *testing.T) {
	f := newFlood(FloodConfig{Limit: 3, Exempt: func(ip netip.Addr) bool { return ip == srcB }})
	if allowed, banned := allowN(f, srcB, 1000, floodT0, 0); allowed != 1000 || banned {
		t.Fatalf("exempt source: allowed %d of 1000, banned %v; want every packet allowed", allowed, banned)
	}
	if allowed, banned := allowN(f, srcA, 4, floodT0, 0); allowed != 3 || !banned {
		t.Fatalf("non-exempt source beside it: allowed %d of 4, banned %v; want 3 and a ban", allowed, banned)
	}
	for _, b := range f.Bans(floodT0) {
		if b.Source == srcB.String() {
			t.Fatalf("exempt source banned: %+v", b)
		}
	}
}

func TestFlood_BansSortedOldestFirstAndExpiredRemoved(t *testing.T) {
	f := newFlood(FloodConfig{Limit: 1, Window: time.Hour, BanFor: time.Minute})
	ban := func(ip netip.Addr, at time.Time) {
		t.Helper()
		f.Allow(ip, at)
		if ok, banned := f.Allow(ip, at); ok || !banned {
			t.Fatalf("ban of %v at %v did not start", ip, at)
		}
	}
	ban(srcB, floodT0.Add(10*time.Second))
	ban(srcA, floodT0)
	ban(srcC, floodT0.Add(5*time.Second))

	var got []string
	for _, b := range f.Bans(floodT0.Add(20 * time.Second)) {
		got = append(got, b.Source)
	}
	if want := []string{srcA.String(), srcC.String(), srcB.String()}; !slices.Equal(got, want) {
		t.Fatalf("Bans order = %v, want oldest first %v", got, want)
	}

	// srcA's ban ended at T0+60s; Bans forgets it.
	got = got[:0]
	for _, b := range f.Bans(floodT0.Add(62 * time.Second)) {
		got = append(got, b.Source)
	}
	if want := []string{srcC.String(), srcB.String()}; !slices.Equal(got, want) {
		t.Fatalf("Bans after the first expired = %v, want %v", got, want)
	}
	f.mu.Lock()
	_, kept := f.bans[srcA]
	f.mu.Unlock()
	if kept {
		t.Fatal("Bans listed without the expired ban but kept it in memory")
	}
}

func TestFlood_NegativeLimitDisables(t *testing.T) {
	f := newFlood(FloodConfig{Limit: -1, Window: time.Second, BanFor: time.Minute})
	if allowed, banned := allowN(f, srcA, 100000, floodT0, 0); allowed != 100000 || banned {
		t.Fatalf("Limit -1: allowed %d of 100000, banned %v; want no limit", allowed, banned)
	}
	if bans := f.Bans(floodT0); len(bans) != 0 {
		t.Fatalf("Bans = %+v, want none", bans)
	}
}

func TestFlood_ZeroConfigTakesDefaults(t *testing.T) {
	f := newFlood(FloodConfig{})
	if f.cfg.Limit != 2000 || f.cfg.Window != 2*time.Second || f.cfg.BanFor != time.Minute {
		t.Fatalf("defaults = %+v, want Limit 2000, Window 2s, BanFor 60s", f.cfg)
	}
	if allowed, banned := allowN(f, srcA, 2001, floodT0, time.Second); allowed != 2000 || !banned {
		t.Fatalf("2001 packets at the default limit: allowed %d, banned %v; want 2000 and a ban", allowed, banned)
	}
}
