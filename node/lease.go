package node

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/cluster"
	"github.com/switchboard-pbx/switchboard/lease"
)

// leaseRegisterTimeout bounds the first liveness write at start.
const leaseRegisterTimeout = 10 * time.Second

// newLease builds the node's lease on its store (registered later, once
// the actor system has its id).
func (n *Node) newLease() (*lease.Node, error) {
	lc := n.cfg.leaseConfig()
	lc.Logger, lc.Registerer = n.log, n.registry
	return lease.New(n.store, lc)
}

// registerLease writes the node's first liveness record, naming it by its
// member id, and starts renewing it; stopLease ends both.
func (n *Node) registerLease(ctx context.Context) error {
	m := n.membership
	rctx, cancel := context.WithTimeout(ctx, leaseRegisterTimeout)
	defer cancel()
	err := n.lease.Register(rctx, lease.NodeRecord{
		ID: m.ID(), Name: n.cfg.Name, Pool: n.cfg.Pool, Gossip: m.GossipAddr(), Actor: m.ActorAddr(),
	})
	if err != nil {
		return fmt.Errorf("node: writing this node's liveness record to the store: %w", err)
	}
	n.stopRenewing = background(n.lease.Run)
	return nil
}

// stopLease stops renewing and deletes the node's liveness record. Call it
// after the actors stopped (they released their claims).
func (n *Node) stopLease() error {
	if n.stopRenewing != nil {
		n.stopRenewing()
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseRegisterTimeout)
	defer cancel()
	return n.lease.Close(ctx)
}

// leaseFence is the lease seen as the actors' Fence.
type leaseFence struct{ l *lease.Node }

func (f leaseFence) Acquire(ctx context.Context, kind, identity string) (actors.Claim, error) {
	c, err := f.l.Acquire(ctx, kind, identity)
	if err != nil {
		return nil, err // not a nil *lease.Claim in a non-nil interface
	}
	return c, nil
}

// leasePeers is the lease seen as the cluster's PeerSource: the nodes
// recorded alive in the store.
type leasePeers struct{ l *lease.Node }

func (p leasePeers) LivePeers() []cluster.Peer {
	recs := p.l.LivePeers()
	out := make([]cluster.Peer, len(recs))
	for i, r := range recs {
		out[i] = cluster.Peer{ID: r.ID, Name: r.Name, GossipAddr: r.Gossip}
	}
	return out
}
