package cluster

import (
	"math/rand/v2"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
)

// directory is the actor, one per member, that carries out its dirState:
// it turns protoactor messages into Step's inputs and Step's effects into
// messages, requests and timers. Every rule is dirState's.
type directory struct {
	l *Lookup
	s *dirState
}

func newDirectory(l *Lookup) *directory {
	return &directory{l: l, s: newDirState(l.selfID, l.clk, rand.New(rand.NewPCG(l.cfg.Seed, 0x5b)), l.members, l.strategy, l.metrics, l.log)}
}

func (d *directory) Receive(c actor.Context) {
	var in dirInput
	switch m := c.Message().(type) {
	case topologyChanged, handoverTimeout, *clusterpb.Claims, *clusterpb.Gone:
		in = m
	case *clusterpb.Lookup:
		in = lookupIn{msg: m, from: c.Sender()}
	case *clusterpb.Deactivate:
		in = deactivateIn{msg: m, from: c.Sender()}
	case *clusterpb.Describe:
		c.Respond(d.s.describe(m))
		return
	default:
		return
	}
	d.carry(c, d.s.Step(in))
}

// carry carries out Step's effects; the answers of requests come back as
// inputs.
func (d *directory) carry(c actor.Context, effects []dirEffect) {
	for _, e := range effects {
		switch e := e.(type) {
		case effReply:
			for _, to := range e.to {
				if pid, _ := to.(*actor.PID); pid != nil {
					c.Send(pid, e.msg)
				}
			}
		case effActivate:
			f := c.RequestFuture(d.s.topo.activator(e.member), e.msg, d.l.cfg.ActivateTimeout)
			c.ReenterAfter(f, func(res any, err error) {
				r, ok := res.(*clusterpb.ActivateReply)
				if err != nil || !ok {
					r = &clusterpb.ActivateReply{Code: clusterpb.ActivateCode_ACTIVATE_CODE_ERROR, Error: "activator gave no PID"}
					if err != nil {
						r.Error = err.Error()
					}
				}
				d.carry(c, d.s.Step(activated{key: e.key, gen: e.gen, reply: r}))
			})
		case effEvict:
			c.Send(d.s.topo.activator(e.member), e.msg)
		case effList:
			f := c.RequestFuture(d.s.topo.activator(e.member), &clusterpb.ListActivations{LiveOnly: true}, d.l.cfg.HandoverTimeout)
			c.ReenterAfter(f, func(res any, _ error) {
				list, _ := res.(*clusterpb.ActivationList)
				d.carry(c, d.s.Step(listed{hash: e.hash, member: e.member, list: list}))
			})
		case effTimer:
			self, sys := c.Self(), c.ActorSystem()
			d.l.clk.AfterFunc(d.l.cfg.HandoverTimeout, func() { sys.Root.Send(self, handoverTimeout(e)) })
		}
	}
}
