package sipedge

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// FloodConfig sets the per-source flood limit, after Kamailio's pike
// module: a source sending more than Limit packets within one Window is
// banned for BanFor, and everything it sends while banned is dropped
// unread.
type FloodConfig struct {
	// Limit is the packets one source may send per Window. Default 2000
	// (a trunk at a few hundred calls per second sends about ten packets
	// per call). Zero takes the default; negative disables the limit.
	Limit int
	// Window is the counting interval. Default 2 s (pike's sampling time
	// unit).
	Window time.Duration
	// BanFor is how long a ban lasts. Default 60 s.
	BanFor time.Duration
	// Exempt sources are never counted (cluster peers, trusted trunks
	// configured by the operator).
	Exempt func(netip.Addr) bool
}

func (c *FloodConfig) fill() {
	c.Limit = cmp.Or(c.Limit, 2000)
	orDefault(&c.Window, 2*time.Second)
	orDefault(&c.BanFor, 60*time.Second)
}

// Ban is one banned source as /debug/sip/bans lists it.
type Ban struct {
	Source  string    `json:"source"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Packets int       `json:"packets"`
	Dropped int       `json:"dropped"`
}

// flood counts packets per source IP in fixed windows. It is a state
// machine driven by the caller's clock: Allow(ip, now) decides, nothing
// runs in the background.
type flood struct {
	cfg      FloodConfig
	mu       sync.Mutex
	windowAt time.Time
	counts   map[netip.Addr]int
	bans     map[netip.Addr]*Ban
}

func newFlood(cfg FloodConfig) *flood {
	cfg.fill()
	return &flood{cfg: cfg, counts: map[netip.Addr]int{}, bans: map[netip.Addr]*Ban{}}
}

// Allow counts one packet from ip at now and says whether it may be read.
// banned is true when this packet started a ban.
func (f *flood) Allow(ip netip.Addr, now time.Time) (ok, banned bool) {
	if f.cfg.Limit < 0 || (f.cfg.Exempt != nil && f.cfg.Exempt(ip)) {
		return true, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.bans[ip]; ok {
		if now.Before(b.Until) {
			b.Dropped++
			return false, false
		}
		delete(f.bans, ip)
	}
	if now.Sub(f.windowAt) >= f.cfg.Window {
		// A new window: forget the old counts (fixed windows keep the
		// per-packet cost at one map increment).
		f.windowAt = now
		clear(f.counts)
	}
	n := f.counts[ip] + 1
	f.counts[ip] = n
	if n > f.cfg.Limit {
		f.bans[ip] = &Ban{Source: ip.String(), Since: now, Until: now.Add(f.cfg.BanFor), Packets: n, Dropped: 1}
		delete(f.counts, ip)
		return false, true
	}
	return true, false
}

// Bans lists the bans in force at now, oldest first.
func (f *flood) Bans(now time.Time) []Ban {
	f.mu.Lock()
	defer f.mu.Unlock()
	maps.DeleteFunc(f.bans, func(_ netip.Addr, b *Ban) bool { return !now.Before(b.Until) })
	out := make([]Ban, 0, len(f.bans))
	for _, b := range f.bans {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Ban) int { return a.Since.Compare(b.Since) })
	return out
}
