package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/cluster/gossip"
)

// Peer is a node known to be alive outside gossip.
type Peer struct {
	ID, Name, GossipAddr string
}

// PeerSource tells of nodes alive by another account than gossip's: the
// liveness records in the shared store (package lease). The member joins
// those that gossip does not list alive, so that a node started without
// --join (a seed restarted alone) finds its cluster, and two halves that
// formed while they could not reach each other merge once they can.
// LivePeers is called from the member's goroutine about once a second; it
// must not block (read a table kept current elsewhere).
type PeerSource interface {
	LivePeers() []Peer
}

// rejoinMaxBackoff caps the wait before an address that did not answer is
// tried again (one with another gossip key never will).
const rejoinMaxBackoff = 30 * time.Second

// rejoiner joins the peers a PeerSource knows and gossip does not, backing
// off per address. It runs on one goroutine.
type rejoiner struct {
	m     *Membership
	src   PeerSource
	every time.Duration
	clk   clock.Clock
	tries map[string]rejoinTry // gossip address -> failed attempts
}

type rejoinTry struct {
	failures int
	next     time.Time
}

func (r *rejoiner) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		r.once()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once joins, in one attempt, every peer that gossip does not list alive
// or suspect and whose backoff has run out.
func (r *rejoiner) once() {
	known := map[string]bool{}
	for _, g := range r.m.g.Members() {
		if g.Status == gossip.StatusAlive || g.Status == gossip.StatusSuspect {
			known[g.ID] = true
		}
	}
	now := r.clk.Now()
	var addrs, names []string
	for _, p := range r.src.LivePeers() {
		if known[p.ID] || p.GossipAddr == "" || now.Before(r.tries[p.GossipAddr].next) {
			continue
		}
		addrs, names = append(addrs, p.GossipAddr), append(names, p.Name)
	}
	if len(addrs) == 0 {
		return
	}
	n, err := r.m.g.JoinMore(addrs)
	if n > 0 {
		r.m.log.Info("joined nodes recorded alive in the store that gossip did not list", "names", names, "addrs", addrs, "answered", n)
		clear(r.tries)
		return
	}
	for _, a := range addrs {
		t := r.tries[a]
		t.failures++
		t.next = now.Add(min(r.every<<min(t.failures, 8), rejoinMaxBackoff))
		r.tries[a] = t
	}
	r.m.log.Log(context.Background(), slog.LevelDebug, "nodes recorded alive in the store did not answer gossip (another gossip key, or unreachable)",
		"names", names, "addrs", addrs, "err", err)
}
