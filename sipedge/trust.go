package sipedge

import (
	"cmp"
	"errors"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
)

// TrustConfig declares trusted SIP sources: an SBC or a site's NAT is one
// address carrying many devices, so the per-source flood limit would ban
// it. A packet from a declared source is not counted against its source's
// flood limit; all declared sources share one token bucket instead, so a
// flood from one of them is still bounded.
//
// Sources come from the operator (Sources, --sip-trusted-source) and from
// accounts (sip_trusted_sources). The read filter runs before a packet is
// parsed, when no account is known, so the edge gathers the prefixes of
// the accounts whose edge views it reads (every request for an account
// reads it) and applies them to every packet from those prefixes, for
// any account. That is safe because of the shared bucket: what an account
// declares moves its prefixes out of the per-source bans into a limit
// that bounds all trusted traffic together, so an account can never make
// an address unlimited; and package actors allows an account only a few,
// narrow prefixes (actors.ParseTrustedSources). An account's prefixes
// count until TTL after the edge last read its view; a view that names
// no prefix, or an account that is gone, withdraws them at once.
type TrustConfig struct {
	// Sources are the operator's trusted prefixes, for every account.
	Sources []netip.Prefix
	// Rate is the packets per second all trusted sources together may
	// send (--sip-trusted-rate). Default 5000; negative: no limit.
	Rate float64
	// Burst is how many packets they may send at once above Rate.
	// Default: two seconds' worth (the flood limit's window).
	Burst int
	// TTL is how long an account's prefixes count after the edge last
	// read the account's view (its snapshot is reloaded at least every
	// accountview MaxAge while used). Default 10 min.
	TTL time.Duration
}

func (c *TrustConfig) fill() {
	c.Rate = cmp.Or(c.Rate, 5000)
	orDefault(&c.Burst, int(min(2*max(c.Rate, 1), math.MaxInt32)))
	orDefault(&c.TTL, trustFor)
}

func (c TrustConfig) limit() rate.Limit {
	if c.Rate < 0 {
		return rate.Inf
	}
	return rate.Limit(c.Rate)
}

// maxTrustAccounts bounds how many accounts' prefixes an edge keeps.
const maxTrustAccounts = 100000

// declared is the set of declared trusted prefixes: the operator's and
// those gathered from accounts. Looking an address up costs one map
// lookup per distinct prefix length in the set, not one per prefix.
type declared struct {
	ttl      time.Duration
	mu       sync.Mutex
	operator map[netip.Prefix]bool
	owners   map[netip.Prefix]map[string]bool // prefix → accounts declaring it
	accounts map[string]*accountSources
	bits     map[prefixLen]int // prefix length → prefixes of it
	lens     []prefixLen       // the keys of bits, longest first
	sweptAt  time.Time
}

type accountSources struct {
	prefixes []netip.Prefix
	seen     time.Time
}

func newDeclared(operator []netip.Prefix, ttl time.Duration) *declared {
	d := &declared{ttl: ttl, operator: map[netip.Prefix]bool{}, owners: map[netip.Prefix]map[string]bool{},
		accounts: map[string]*accountSources{}, bits: map[prefixLen]int{}}
	for _, p := range operator {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96) // an IPv4-mapped prefix, as IPv4
		}
		p = p.Masked()
		if !d.operator[p] {
			d.operator[p] = true
			d.addLen(p)
		}
	}
	return d
}

// prefixLen is a prefix length of one address family.
type prefixLen struct {
	v6   bool
	bits int
}

func lenKey(p netip.Prefix) prefixLen { return prefixLen{p.Addr().Is6(), p.Bits()} }

func (d *declared) addLen(p netip.Prefix) {
	k := lenKey(p)
	d.bits[k]++
	if d.bits[k] == 1 {
		d.lens = append(d.lens, k)
		slices.SortFunc(d.lens, func(a, b prefixLen) int { return b.bits - a.bits })
	}
}

func (d *declared) dropLen(p netip.Prefix) {
	k := lenKey(p)
	if d.bits[k]--; d.bits[k] <= 0 {
		delete(d.bits, k)
		d.lens = slices.DeleteFunc(d.lens, func(l prefixLen) bool { return l == k })
	}
}

// contains says whether ip is in a declared prefix at now.
func (d *declared) contains(ip netip.Addr, now time.Time) bool {
	if !ip.IsValid() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range d.lens {
		p, err := ip.Prefix(k.bits)
		if k.v6 != ip.Is6() || err != nil {
			continue
		}
		if d.operator[p] {
			return true
		}
		for acct := range d.owners[p] {
			if now.Sub(d.accounts[acct].seen) < d.ttl {
				return true
			}
		}
	}
	return false
}

// account records what account declares, as read at now; nil or empty
// withdraws its prefixes.
func (d *declared) account(account string, prefixes []netip.Prefix, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.sweptAt) >= d.ttl {
		d.sweptAt = now
		for a, s := range d.accounts {
			if now.Sub(s.seen) >= d.ttl {
				d.forget(a)
			}
		}
	}
	if s, ok := d.accounts[account]; ok && slices.Equal(s.prefixes, prefixes) {
		s.seen = now
		return
	}
	d.forget(account)
	if len(prefixes) == 0 || len(d.accounts) >= maxTrustAccounts {
		return
	}
	d.accounts[account] = &accountSources{prefixes: prefixes, seen: now}
	for _, p := range prefixes {
		if d.owners[p] == nil {
			d.owners[p] = map[string]bool{}
			d.addLen(p)
		}
		d.owners[p][account] = true
	}
}

func (d *declared) forget(account string) {
	s, ok := d.accounts[account]
	if !ok {
		return
	}
	delete(d.accounts, account)
	for _, p := range s.prefixes {
		delete(d.owners[p], account)
		if len(d.owners[p]) == 0 {
			delete(d.owners, p)
			d.dropLen(p)
		}
	}
}

// accountSeen takes the trusted sources of account from each snapshot of
// it the edge reads anew (snapshots are reloaded at least every
// accountview MaxAge while used, which keeps the prefixes counting). A
// snapshot the node could not get changes nothing; an account that is
// gone withdraws its prefixes.
func (e *Edge) accountSeen(account string, acct *accountview.Account, err error) {
	switch {
	case errors.Is(err, accountview.ErrNotFound):
		if _, ok := e.seenViews.LoadAndDelete(account); ok {
			e.declared.account(account, nil, e.now())
		}
		return
	case err != nil:
		return
	}
	if prev, ok := e.seenViews.Load(account); ok && prev == acct {
		return
	}
	e.seenViews.Store(account, acct)
	prefixes, perr := actors.ParseTrustedSources(acct.Record.GetSipTrustedSources())
	if perr != nil {
		e.log.Warn("account's trusted SIP sources ignored", "account", account, "err", perr)
		prefixes = nil
	}
	e.declared.account(account, prefixes, e.now())
}
