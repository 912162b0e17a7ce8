package node

import (
	"context"
	"maps"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/placement"
)

// Calls that outlive their process. Every node sweeps the store's index
// of active calls by process (actors.System.CallProcesses) every
// CallSweepEvery, at start first: the calls of a process whose liveness
// record is gone (lease.Node.Gone) are ended with disposition interrupted
// (actors.System.InterruptCalls). A node's own previous processes (the
// same --name: it was killed or restarted) are ended at once; another
// node's after CallSweepGrace, by the one live node that rendezvous
// hashing of the process id picks among the live nodes (two nodes that
// disagree on who is live both end them; the call actor lets the first
// end win, so the second finds them ended).

// sweepCallsTimeout bounds one sweep.
const sweepCallsTimeout = time.Minute

// callSweeper remembers since when each gone process was seen gone.
type callSweeper struct {
	n         *Node
	goneSince map[string]time.Time
}

// runCallSweeper sweeps at once, then every CallSweepEvery until ctx ends.
func (n *Node) runCallSweeper(ctx context.Context) {
	s := &callSweeper{n: n, goneSince: map[string]time.Time{}}
	t := time.NewTicker(n.cfg.CallSweepEvery)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, sweepCallsTimeout)
		s.sweep(sctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep ends the calls of the gone processes this node is to end now.
func (s *callSweeper) sweep(ctx context.Context) {
	n := s.n
	procs, err := n.actors.CallProcesses(ctx)
	if err != nil {
		n.log.Warn("call sweep: reading the processes with calls failed", "err", err)
		return
	}
	self := n.actors.NodeID()
	live := []string{self}
	for _, p := range n.lease.LivePeers() {
		live = append(live, p.ID)
	}
	now := time.Now()
	seen := map[string]bool{}
	for _, p := range procs {
		if p.ID == self {
			continue
		}
		gone, err := n.lease.Gone(ctx, p.ID)
		if err != nil {
			n.log.Warn("call sweep: is a process alive", "process", p.ID, "err", err)
			continue
		}
		if !gone {
			continue
		}
		seen[p.ID] = true
		since, ok := s.goneSince[p.ID]
		if !ok {
			since, s.goneSince[p.ID] = now, now
		}
		if !sweepsNow(p, n.cfg.Name, self, live, now.Sub(since), n.cfg.CallSweepGrace) {
			continue
		}
		ended, err := n.actors.InterruptCalls(ctx, p.ID)
		if ended > 0 || err != nil {
			n.log.Info("call sweep: ended the calls of a gone process", "process", p.ID, "process_name", p.Name, "ended", ended, "err", err)
		}
	}
	maps.DeleteFunc(s.goneSince, func(id string, _ time.Time) bool { return !seen[id] })
}

// sweepsNow decides whether this node (self, named name, among the live
// node ids live) ends now the calls of process p, gone for goneFor: its
// own previous process at once; another's after grace, if rendezvous
// hashing picks this node.
func sweepsNow(p actors.CallProcess, name, self string, live []string, goneFor, grace time.Duration) bool {
	if p.Name == name {
		return true
	}
	return goneFor >= grace && sweeperOf(p.ID, live) == self
}

// sweeperOf is the live node that sweeps process id: its rendezvous owner
// among them (placement.Owner, the one rule).
func sweeperOf(id string, live []string) string { return placement.Owner(id, live) }

// endCalls serves the node's live calls until the first half of the
// shutdown timeout has passed or none is left, then ends the rest with
// disposition interrupted (the edge hangs them up through CallHangup).
func (n *Node) endCalls(ctx context.Context, serveUntil time.Time) {
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for n.actors.LiveCalls() > 0 && time.Now().Before(serveUntil) {
		select {
		case <-ctx.Done():
		case <-poll.C:
		}
	}
	if c := n.actors.LiveCalls(); c > 0 {
		n.log.Info("drain: ending the calls still up", "calls", c)
	}
	ectx, cancel := context.WithTimeout(ctx, n.cfg.ShutdownTimeout/8)
	defer cancel()
	if err := n.actors.EndLiveCalls(ectx); err != nil {
		n.log.Warn("drain: ending the live calls", "err", err)
	}
}

// Draining tells whether the node is shutting down: the SIP edge answers
// new INVITEs 503 with Retry-After meanwhile, while the calls up go on.
func (n *Node) Draining() bool { return n.State() == StateDraining }
