package cluster

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
)

// errStillStopping is spawnLocal's refusal while the identity's previous
// activation here is stopping.
var errStillStopping = errors.New("cluster: the previous activation is still stopping")

// claimsResendAfter is when an activator repeats its claims for a view.
const claimsResendAfter = 500 * time.Millisecond

// resendClaims asks the activator to repeat its claims for a view.
type resendClaims struct{ hash uint64 }

// hosted is one activation on this member, as its activator knows it.
type hosted struct {
	act       *actors.Activation
	placement *clusterpb.Placement
	stopping  bool
}

// activator is the actor, one per member, that spawns the activations the
// directories place here and, after every topology change, reports all of
// them (Claims) to their owners under the new view.
type activator struct {
	l    *Lookup
	topo topology
}

func (a *activator) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case topologyChanged:
		a.topo = m.topo
		a.sendClaims(c)
		// Say it again shortly: a first message to a member can be lost
		// while protoactor's remoting dials it, and a directory that misses
		// a member's claims waits out the handover timeout. Directories
		// take a repeated claim as the same claim.
		self, sys, hash := c.Self(), c.ActorSystem(), m.topo.hash
		a.l.clk.AfterFunc(claimsResendAfter, func() { sys.Root.Send(self, resendClaims{hash: hash}) })
	case resendClaims:
		if m.hash == a.topo.hash {
			a.sendClaims(c)
		}
	case *clusterpb.Activate:
		c.Respond(a.activate(m))
	case *clusterpb.Evict:
		if pid := fromRef(m.Pid); a.l.isLocal(m.Kind, m.Identity, pid) {
			a.l.log.Warn("evicting a duplicate activation", "kind", m.Kind, "id", m.Identity)
			c.Poison(pid)
		}
	case *clusterpb.ListActivations:
		c.Respond(a.l.activationList(m))
	case *clusterpb.Invalidate:
		if f := a.l.cfg.OnInvalidate; f != nil {
			f(m.Keys)
		}
	}
}

func (a *activator) activate(m *clusterpb.Activate) *clusterpb.ActivateReply {
	if m.Topology != a.topo.hash {
		return &clusterpb.ActivateReply{Code: clusterpb.ActivateCode_ACTIVATE_CODE_OTHER_VIEW, Error: "cluster: activator is in another topology view"}
	}
	if m.CallCapacity > 0 && m.Kind == actors.KindCall && a.l.countLocal(actors.KindCall) >= int(m.CallCapacity) {
		return &clusterpb.ActivateReply{Code: clusterpb.ActivateCode_ACTIVATE_CODE_FULL, Error: "cluster: node is at its call capacity"}
	}
	act, err := a.l.spawnLocal(m.Kind, m.Identity, m.Placement)
	switch {
	case errors.Is(err, errStillStopping):
		return &clusterpb.ActivateReply{Code: clusterpb.ActivateCode_ACTIVATE_CODE_STOPPING, Error: err.Error()}
	case err != nil:
		return &clusterpb.ActivateReply{Code: clusterpb.ActivateCode_ACTIVATE_CODE_ERROR, Error: err.Error()}
	}
	return &clusterpb.ActivateReply{Pid: toRef(act.PID)}
}

// sendClaims reports every live activation here to its owner under the
// current view; every member gets a batch, empty or not, so that its
// directory knows this member has reported.
func (a *activator) sendClaims(c actor.Context) {
	batches := make(map[string]*clusterpb.Claims, len(a.topo.ids))
	for _, id := range a.topo.ids {
		batches[id] = &clusterpb.Claims{Topology: a.topo.hash, From: a.l.selfID}
	}
	for _, h := range a.l.hostedSnapshot() {
		if h.stopping {
			continue
		}
		owner := a.topo.owner(h.act.Kind, h.act.Identity)
		b := batches[owner]
		b.Claims = append(b.Claims, &clusterpb.Claim{Kind: h.act.Kind, Identity: h.act.Identity, Pid: toRef(h.act.PID), Placement: h.placement})
	}
	for id, b := range batches {
		c.Send(a.topo.directory(id), b)
	}
}
