package sipedge_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

// flood sends n OPTIONS from p in batches of 100, advancing the edge's
// clock by step after each batch, and returns how many were answered 200.
// Each batch is settled before the clock moves: every packet of it was
// answered or counted as dropped (switchboard_sip_dropped_total).
func (p *udpPeer) flood(te *testEdge, n int, step time.Duration) (answered int) {
	p.t.Helper()
	for sent := 0; sent < n; {
		batch := min(100, n-sent)
		dropped0 := te.dropped(p.t)
		ids := map[string]bool{}
		for range batch {
			id := unique("flood")
			ids[id] = true
			p.send(optionsTo(p.addr(), id))
		}
		got := 0
		deadline := time.Now().Add(replyWait)
		for got+int(te.dropped(p.t)-dropped0) < batch {
			if time.Now().After(deadline) {
				p.t.Fatalf("batch of %d from %s: %d answered, %v dropped after %v; the rest vanished", batch, p.addr(), got, te.dropped(p.t)-dropped0, replyWait)
			}
			raw := p.read(20 * time.Millisecond)
			if raw == nil {
				continue
			}
			if r, ok := readReply(raw); ok && r.code == 200 && ids[r.callID] {
				delete(ids, r.callID)
				got++
			}
		}
		answered += got
		sent += batch
		te.clock.Advance(step)
	}
	return answered
}

// dropped is every packet the read filter dropped for a flood reason.
func (te *testEdge) dropped(t testing.TB) float64 {
	t.Helper()
	return te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "banned"}) +
		te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "trusted_rate"})
}

func banned(te *testEdge, source string) bool {
	for _, b := range te.Bans() {
		if b.Source == source {
			return true
		}
	}
	return false
}

// TestTrust_DeclaredSourceIsNotBanned: an SBC declared with
// --sip-trusted-source sends 5,000 packets in 2 s, more than twice the
// per-source flood limit (2,000 per 2 s), and every one is answered
// within the rate trusted sources share; an undeclared source sending the
// same is banned at packet 2,001 as before.
func TestTrust_DeclaredSourceIsNotBanned(t *testing.T) {
	te := startEdge(t, func(c *sipedge.Config) {
		c.Trust = sipedge.TrustConfig{Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Rate: 2500, Burst: 500}
	})
	sbc := newUDPPeer(t, te, "127.0.0.1")
	// 50 batches of 100, 40 ms apart: 5,000 packets in 2 s.
	if got := sbc.flood(te, 5000, 40*time.Millisecond); got != 5000 {
		t.Fatalf("declared source: %d of 5000 answered, want all (%v dropped as trusted_rate, %v as banned)", got,
			te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "trusted_rate"}),
			te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "banned"}))
	}
	if bans := te.Bans(); len(bans) != 0 {
		t.Fatalf("Bans after the declared source's 5000 packets = %+v, want none", bans)
	}

	other := newUDPPeer(t, te, "127.0.0.2")
	if got := other.flood(te, 5000, 40*time.Millisecond); got != 2000 {
		t.Fatalf("undeclared source: %d of 5000 answered, want 2000 (the flood limit), then a ban", got)
	}
	if !banned(te, "127.0.0.2") {
		t.Fatalf("Bans = %+v, want 127.0.0.2 banned", te.Bans())
	}
	if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "banned"}); n != 3000 {
		t.Fatalf("dropped{reason=banned} = %v, want 3000", n)
	}
	if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "trusted_rate"}); n != 0 {
		t.Fatalf("dropped{reason=trusted_rate} = %v, want 0", n)
	}
}

// TestTrust_SharedRateBoundsATrustedFlood: declared sources share one
// token bucket, so a flood from them is bounded (Burst at once, then Rate
// per second) and counted as trusted_rate, but never banned; an
// undeclared source is not slowed by it.
func TestTrust_SharedRateBoundsATrustedFlood(t *testing.T) {
	te := startEdge(t, func(c *sipedge.Config) {
		c.Trust = sipedge.TrustConfig{Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")}, Rate: 100, Burst: 50}
	})
	a, b := newUDPPeer(t, te, "127.0.0.1"), newUDPPeer(t, te, "127.0.0.2")
	// The clock stands still: the bucket holds its burst and no more.
	got := a.flood(te, 100, 0) + b.flood(te, 100, 0)
	if got != 50 {
		t.Fatalf("200 packets from two declared sources at Burst 50: %d answered, want 50", got)
	}
	if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "trusted_rate"}); n != 150 {
		t.Fatalf("dropped{reason=trusted_rate} = %v, want 150", n)
	}
	if bans := te.Bans(); len(bans) != 0 {
		t.Fatalf("Bans = %+v, want none: a trusted source is limited, not banned", bans)
	}
	if res := newUDPPeer(t, te, "127.0.0.5").ping(replyWait); res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS from an undeclared source while the trusted bucket is empty got %v, want 200", res)
	}
	// A second later the bucket holds Rate tokens, capped at Burst.
	te.clock.Advance(time.Second)
	if got := b.flood(te, 100, 0); got != 50 {
		t.Fatalf("a second later: %d of 100 answered, want 50 (Burst)", got)
	}
	var lines int
	for _, r := range te.records(t, "WARN") {
		if r.Msg == "packet from a trusted source dropped: trusted sources are over their shared rate" {
			lines++
		}
	}
	if lines != 2 {
		t.Fatalf("%d trusted-rate log lines, want 2 (one per source per LogEvery):\n%s", lines, te.logs.String())
	}
}

// declaringActors answers the account's edge view with the trusted
// sources the test sets.
type declaringActors struct {
	sipedge.Actors
	mu      sync.Mutex
	sources []string
}

func (d *declaringActors) set(sources ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sources = sources
}

func (d *declaringActors) Request(ctx context.Context, kind, identity string, msg proto.Message) (proto.Message, error) {
	rep, err := d.Actors.Request(ctx, kind, identity, msg)
	if v, ok := rep.(*actorpb.SecretEdgeView); ok && v.Account != nil {
		d.mu.Lock()
		v.Account.SipTrustedSources = d.sources
		d.mu.Unlock()
	}
	return rep, err
}

// registerTo sends an unauthenticated REGISTER for account acme from p
// and returns the final status: reading it makes the edge read the
// account's edge view.
func (p *udpPeer) registerTo() int {
	p.t.Helper()
	id := unique("reg")
	p.send(crlf(fmt.Sprintf("REGISTER sip:acme.%[1]s SIP/2.0\nVia: SIP/2.0/UDP %[2]s;branch=z9hG4bK%[3]s\nMax-Forwards: 70\n"+
		"From: <sip:alice@acme.%[1]s>;tag=t1\nTo: <sip:alice@acme.%[1]s>\nCall-ID: %[4]s\nCSeq: 1 REGISTER\n"+
		"Contact: <sip:alice@%[2]s>\nContent-Length: 0\n\n", testZone, p.addr(), unique("b"), id)))
	res := p.final(id, replyWait)
	if res == nil {
		p.t.Fatalf("no final response to REGISTER %s", id)
	}
	return res.StatusCode
}

// TestTrust_AccountDeclaredSource: an account's sip_trusted_sources
// reach the read filter through the account's edge view: once the edge
// has read it, the declared address is past the per-source flood limit
// (and on the shared rate), while another address sending the same
// account's traffic is banned; a view without the declaration withdraws
// it at once.
func TestTrust_AccountDeclaredSource(t *testing.T) {
	declaring := &declaringActors{}
	declaring.set("127.0.0.3/32")
	te := startEdge(t, func(c *sipedge.Config) {
		c.Flood = sipedge.FloodConfig{Limit: 20, Window: 2 * time.Second, BanFor: time.Minute}
		c.Trust = sipedge.TrustConfig{Rate: 1000, Burst: 1000}
		declaring.Actors = c.Actors
		c.Actors = declaring
	})
	sbc, stranger := newUDPPeer(t, te, "127.0.0.3"), newUDPPeer(t, te, "127.0.0.4")
	if code := sbc.registerTo(); code != 401 {
		t.Fatalf("REGISTER without credentials got %d, want 401", code)
	}
	if got := sbc.flood(te, 200, 0); got != 200 {
		t.Fatalf("address acme declares: %d of 200 answered at a flood limit of 20, want all", got)
	}
	if code := stranger.registerTo(); code != 401 {
		t.Fatalf("REGISTER without credentials got %d, want 401", code)
	}
	if got := stranger.flood(te, 200, 0); got != 19 {
		t.Fatalf("undeclared address: %d of 200 answered, want 19 (the flood limit of 20 less its REGISTER)", got)
	}
	if !banned(te, "127.0.0.4") || banned(te, "127.0.0.3") {
		t.Fatalf("Bans = %+v, want 127.0.0.4 banned and 127.0.0.3 not", te.Bans())
	}

	// The account withdraws the declaration: the next view the edge reads
	// (any request for the account) takes it back.
	declaring.set()
	te.views.Invalidate(accountview.AllKey(testAccount)) // the account actor's change notice
	if code := newUDPPeer(t, te, "127.0.0.5").registerTo(); code != 401 {
		t.Fatalf("REGISTER without credentials got %d, want 401", code)
	}
	te.clock.Advance(2 * time.Second) // a new flood window
	if got := sbc.flood(te, 30, 0); got != 20 {
		t.Fatalf("after the withdrawal: %d of 30 answered, want 20 (the flood limit)", got)
	}
	if !banned(te, "127.0.0.3") {
		t.Fatalf("Bans = %+v, want 127.0.0.3 banned once no longer declared", te.Bans())
	}
}

// peerMembers says that one address is a peer node's SIP address.
type peerMembers struct{ peer atomic.Value }

func (*peerMembers) SIPAddr(string) (string, bool) { return "", false }
func (m *peerMembers) IsPeer(addr string) bool     { return m.peer.Load() == addr }

// TestTrust_PeerInADeclaredPrefixIsNotOnTheSharedRate: a cluster node
// inside a declared prefix (an account may declare its provider's /24)
// does not take from the rate the trusted sources share, so a flood from
// that prefix cannot cut the nodes off from each other.
func TestTrust_PeerInADeclaredPrefixIsNotOnTheSharedRate(t *testing.T) {
	members := &peerMembers{}
	te := startEdge(t, func(c *sipedge.Config) {
		c.Trust = sipedge.TrustConfig{Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")}, Rate: 100, Burst: 10}
		c.Members = members
	})
	peer := newUDPPeer(t, te, "127.0.0.1")
	members.peer.Store(peer.addr())
	if got := peer.flood(te, 100, 0); got != 100 {
		t.Fatalf("peer node in a declared prefix: %d of 100 answered at Burst 10, want all", got)
	}
	if got := newUDPPeer(t, te, "127.0.0.2").flood(te, 100, 0); got != 10 {
		t.Fatalf("a declared source beside it: %d of 100 answered, want 10 (Burst)", got)
	}
}
