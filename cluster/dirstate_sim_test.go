package cluster

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/placement"
	"github.com/switchboard-pbx/switchboard/simulations"
)

// tracedMembers is a MemberSource that gives the members as the
// simulator's directory owners saw them at the placement being replayed.
type tracedMembers struct {
	members []placement.Member
	asOf    time.Time
}

func (s *tracedMembers) PlacementSnapshot() ([]placement.Member, map[string]time.Time) {
	at := make(map[string]time.Time, len(s.members))
	for _, m := range s.members {
		at[m.ID] = s.asOf
	}
	return s.members, at
}

// The runtime's directory places as the simulator's ours does: the
// simulator runs a small workload (two pools, the first overflowing into
// the second, on 2 s stale figures, busy enough, so that full nodes
// refuse calls) with a seed and tells every placement and call end; the
// same workload replayed into one dirState per node, over an in-memory
// transport (an activator that refuses a call on a full node, and the
// Gone of every ended call), with the simulator's random source, puts
// every device group and every call on the same node, refusals and
// rejections included.
func TestDirState_PlacesAsTheSimulator(t *testing.T) {
	const seed = 11
	sc := simulations.Scenario{Name: "directory-equivalence",
		Pools: []simulations.PoolConfig{
			{Name: "a", Nodes: 3, CallCapacityPerNode: 50, Overflow: "b"},
			{Name: "b", Nodes: 2, CallCapacityPerNode: 50},
		},
		Groups: 60, MaxGroupSize: 20, Calls: 8000, Utilization: 0.7, MeanHoldSeconds: 15, WarmupSeconds: 5}
	var traced []simulations.Traced
	if _, err := simulations.Run(context.Background(), sc, simulations.Config{Seed: seed, Parallel: 1,
		Trace: func(tr simulations.Traced) { traced = append(traced, tr) }}); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}

	addrs := map[string]string{}
	for _, m := range traced[0].Members {
		addrs[m.ID] = m.ID
	}
	topo := newTopology(addrs)
	clk := clock.NewFake(time.Time{})
	src := &tracedMembers{}
	rng := simulations.PlacementRand(seed)
	epsilon := sc.WithDefaults().ActivationEpsilon
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]*dirState{}
	for _, id := range topo.ids {
		d := newDirState(id, clk, rng, src,
			func(string) placement.Strategy { return placement.NewBoundedLoad(epsilon) }, m, slog.New(slog.DiscardHandler))
		d.Step(topologyChanged{topo: topo})
		for _, from := range topo.ids {
			d.Step(&clusterpb.Claims{Topology: topo.hash, From: from})
		}
		dirs[id] = d
	}

	calls := map[string]int{} // the nodes' true active calls
	pids := map[string]*clusterpb.Ref{}
	var placed, refused, rejected int
	for i, tr := range traced {
		clk.Advance(tr.At.Sub(clk.Now()))
		d := dirs[tr.Owner]
		if tr.End {
			d.Step(&clusterpb.Gone{Kind: tr.Kind, Identity: tr.ID, Pid: pids[tr.ID]})
			calls[tr.Member]--
			continue
		}
		src.members, src.asOf = tr.Members, tr.AsOf
		r := tr.Route
		got := ""
		effects := d.Step(lookupIn{from: "requester", msg: &clusterpb.Lookup{Kind: tr.Kind, Identity: tr.ID, Topology: topo.hash,
			Hint: &clusterpb.Hint{Pool: r.Pool, Overflow: r.Overflow, CallCapacity: int32(r.Capacity), OverflowCapacity: int32(r.OverflowCapacity)}}})
		for len(effects) > 0 {
			var next []dirEffect
			for _, e := range effects {
				switch e := e.(type) {
				case effActivate:
					reply := &clusterpb.ActivateReply{Pid: &clusterpb.Ref{Address: e.member, Id: tr.Kind + "/" + tr.ID}}
					if c := int(e.msg.CallCapacity); c > 0 && calls[e.member] >= c {
						reply = &clusterpb.ActivateReply{Code: clusterpb.ActivateCode_ACTIVATE_CODE_FULL}
						refused++
					} else if tr.Kind == placement.KindCall {
						calls[e.member]++
					}
					next = append(next, d.Step(activated{key: e.key, gen: e.gen, reply: reply})...)
				case effReply:
					if rep := e.msg.(*clusterpb.LookupReply); rep.Pid != nil {
						got, pids[tr.ID] = rep.Pid.Address, rep.Pid
					} else if rep.NotOwner {
						t.Fatalf("placement %d: %s %s: %s is not its owner", i, tr.Kind, tr.ID, tr.Owner)
					}
				}
			}
			effects = next
		}
		if got != tr.Member {
			t.Fatalf("seed %d, placement %d at %v: %s %s placed on %q by the directory, %q by the simulator",
				seed, i, tr.At, tr.Kind, tr.ID, got, tr.Member)
		}
		if got == "" {
			rejected++
		} else {
			placed++
		}
	}
	if placed < 2000 || refused == 0 {
		t.Fatalf("the workload compared %d placements, %d refusals by full nodes, %d rejections; want thousands of placements and some refusals",
			placed, refused, rejected)
	}
	t.Logf("%d placements, %d refusals by full nodes, %d rejections: the same in both", placed, refused, rejected)
}
