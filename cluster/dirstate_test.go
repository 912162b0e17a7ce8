package cluster

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

// dirHarness drives one dirState with no actor system: members m1..mN at
// addresses m1:1..mN:1, all in pool "p", self the owner of the identity
// under test, a fixed clock and a seeded random source.
type dirHarness struct {
	t        *testing.T
	d        *dirState
	topo     topology
	kind, id string
	last     effActivate // the last Activate asked
}

func newDirHarness(t *testing.T, n int, kind, id string) *dirHarness {
	t.Helper()
	addrs := map[string]string{}
	var members fakeMembers
	for i := 1; i <= n; i++ {
		m := fmt.Sprintf("m%d", i)
		addrs[m] = m + ":1"
		members = append(members, placement.Member{ID: m, Name: m, Pool: "p"})
	}
	topo := newTopology(addrs)
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := newDirState(topo.owner(kind, id), clock.NewFake(time.Unix(1000, 0)), rand.New(rand.NewPCG(1, 2)), members,
		func(string) placement.Strategy { return placement.NewBoundedLoad(placement.DefaultEpsilon) }, m, slog.New(slog.DiscardHandler))
	return &dirHarness{t: t, d: d, topo: topo, kind: kind, id: id}
}

// step feeds in and returns its effects, one line each.
func (h *dirHarness) step(in dirInput) string {
	var out []string
	for _, e := range h.d.Step(in) {
		switch e := e.(type) {
		case effReply:
			out = append(out, fmt.Sprintf("reply %v %s", e.to, summary(e.msg)))
		case effActivate:
			h.last = e
			out = append(out, "activate "+e.member)
		case effEvict:
			out = append(out, "evict "+e.member+" "+e.msg.Pid.Id)
		case effList:
			out = append(out, "list "+e.member)
		case effTimer:
			out = append(out, "timer")
		}
	}
	return strings.Join(out, "; ")
}

func summary(msg any) string {
	switch m := msg.(type) {
	case *clusterpb.LookupReply:
		switch {
		case m.Pid != nil:
			return "pid " + m.Pid.Address + "/" + m.Pid.Id
		case m.NotOwner:
			return "not-owner"
		case m.NoCapacity:
			return "no-capacity"
		default:
			return "error " + m.Error
		}
	case *clusterpb.DeactivateReply:
		return fmt.Sprintf("may-stop %v", m.Ok)
	}
	return fmt.Sprintf("%T", msg)
}

// Inputs, as functions of the harness (they read the current view and
// the last Activate).
type dirStep struct {
	in   func(h *dirHarness) dirInput
	want string
}

func topoIn(h *dirHarness) dirInput { return topologyChanged{topo: h.topo} }
func claimsFrom(member string, pids ...string) func(*dirHarness) dirInput {
	return func(h *dirHarness) dirInput {
		c := &clusterpb.Claims{Topology: h.topo.hash, From: member}
		for _, p := range pids {
			c.Claims = append(c.Claims, &clusterpb.Claim{Kind: h.kind, Identity: h.id, Pid: ref(p)})
		}
		return c
	}
}

// allClaimed is every member's empty claims, after the view.
func allClaimed(n int) []dirStep {
	steps := []dirStep{{topoIn, "timer"}}
	for i := 1; i <= n; i++ {
		steps = append(steps, dirStep{claimsFrom(fmt.Sprintf("m%d", i)), ""})
	}
	return steps
}

func lookupFrom(w string) func(*dirHarness) dirInput {
	return func(h *dirHarness) dirInput {
		return lookupIn{msg: &clusterpb.Lookup{Kind: h.kind, Identity: h.id, Topology: h.topo.hash, Hint: &clusterpb.Hint{Pool: "p", CallCapacity: 10}}, from: w}
	}
}

// answer is the activator's reply to the last Activate: code, and for OK
// the activation's pid on the chosen member.
func answer(code clusterpb.ActivateCode) func(*dirHarness) dirInput {
	return func(h *dirHarness) dirInput {
		r := &clusterpb.ActivateReply{Code: code, Error: code.String()}
		if code == clusterpb.ActivateCode_ACTIVATE_CODE_OK {
			r = &clusterpb.ActivateReply{Pid: ref(h.last.member + ":1/a1")}
		}
		return activated{key: h.last.key, gen: h.last.gen, reply: r}
	}
}

func deactivate(w, pid string) func(*dirHarness) dirInput {
	return func(h *dirHarness) dirInput {
		return deactivateIn{msg: &clusterpb.Deactivate{Kind: h.kind, Identity: h.id, Pid: ref(pid)}, from: w}
	}
}

func gone(pid string) func(*dirHarness) dirInput {
	return func(h *dirHarness) dirInput { return &clusterpb.Gone{Kind: h.kind, Identity: h.id, Pid: ref(pid)} }
}

func describeState(h *dirHarness) string {
	r := h.d.describe(&clusterpb.Describe{Kind: h.kind, Identity: h.id})
	if !r.Found {
		return "none"
	}
	return r.State + " " + r.Pid.GetAddress() + "/" + r.Pid.GetId()
}

// ref parses "address/id".
func ref(s string) *clusterpb.Ref {
	addr, id, _ := strings.Cut(s, "/")
	return &clusterpb.Ref{Address: addr, Id: id}
}

// TestDirState_Step runs the directory's rules with no actor system: each
// case is a sequence of inputs and the effects each must give, then the
// entry the directory ends with.
func TestDirState_Step(t *testing.T) {
	const (
		ok        = clusterpb.ActivateCode_ACTIVATE_CODE_OK
		full      = clusterpb.ActivateCode_ACTIVATE_CODE_FULL
		otherView = clusterpb.ActivateCode_ACTIVATE_CODE_OTHER_VIEW
		stopCode  = clusterpb.ActivateCode_ACTIVATE_CODE_STOPPING
	)
	cases := []struct {
		name     string
		members  int
		kind     string
		steps    []dirStep
		endState string
	}{
		{
			name: "concurrent lookups are merged into one activation", members: 2, kind: actors.KindAccount,
			steps: []dirStep{
				{lookupFrom("w1"), "activate m1"},
				{lookupFrom("w2"), ""},
				{answer(ok), "reply [w1 w2] pid m1:1/a1"},
				{lookupFrom("w3"), "reply [w3] pid m1:1/a1"},
			},
			endState: "active m1:1/a1",
		},
		{
			name: "a full node is marked full and the call placed again on another",
			// Retries while placement.RetryAfterFull allows; with three
			// nodes all full, placement finds no capacity.
			members: 3, kind: actors.KindCall,
			steps: []dirStep{
				{lookupFrom("w1"), "activate m1"},
				{answer(full), "activate m2"},
				{answer(full), "activate m3"},
				{answer(full), "reply [w1] no-capacity"},
			},
			endState: "none",
		},
		{
			name: "after MaxFullRefusals refusals the call fails", members: placement.MaxFullRefusals + 2, kind: actors.KindCall,
			steps: []dirStep{
				{lookupFrom("w1"), "activate m6"},
				{answer(full), "activate m1"},
				{answer(full), "activate m4"},
				{answer(full), "activate m5"},
				{answer(full), "activate m2"},
				{answer(full), "reply [w1] error activation failed: ACTIVATE_CODE_FULL"},
			},
			endState: "none",
		},
		{
			name: "an activator in another view sends the requester back to converge", members: 2, kind: actors.KindAccount,
			steps:    []dirStep{{lookupFrom("w1"), "activate m1"}, {answer(otherView), "reply [w1] not-owner"}},
			endState: "none",
		},
		{
			name: "a host whose previous activation is stopping fails the lookup", members: 2, kind: actors.KindAccount,
			steps:    []dirStep{{lookupFrom("w1"), "activate m1"}, {answer(stopCode), "reply [w1] error activation failed: ACTIVATE_CODE_STOPPING"}},
			endState: "none",
		},
		{
			name: "a lookup of another view is refused", members: 2, kind: actors.KindAccount,
			steps: []dirStep{{func(h *dirHarness) dirInput {
				return lookupIn{msg: &clusterpb.Lookup{Kind: h.kind, Identity: h.id, Topology: h.topo.hash + 1}, from: "w1"}
			}, "reply [w1] not-owner"}},
			endState: "none",
		},
		{
			name: "handover: a lookup waits for every member's claims and gets the claimed activation", members: 3, kind: actors.KindAccount,
			steps: []dirStep{
				{topoIn, "timer"},
				{lookupFrom("w1"), ""},
				{claimsFrom("m1"), ""},
				{claimsFrom("m2", "m2:1/live"), ""},
				{claimsFrom("m2", "m2:1/live"), ""}, // a repeated batch is the same claim
				{claimsFrom("m3"), "reply [w1] pid m2:1/live"},
			},
			endState: "active m2:1/live",
		},
		{
			name: "handover timeout: the silent member is asked; one that does not answer is taken as gone", members: 3, kind: actors.KindAccount,
			steps: []dirStep{
				{topoIn, "timer"},
				{claimsFrom("m1"), ""},
				{lookupFrom("w1"), ""},
				{func(h *dirHarness) dirInput { return handoverTimeout{hash: h.topo.hash + 1} }, ""}, // another view's timer
				{func(h *dirHarness) dirInput { return handoverTimeout{hash: h.topo.hash} }, "list m2; list m3"},
				{func(h *dirHarness) dirInput {
					return listed{hash: h.topo.hash, member: "m2", list: &clusterpb.ActivationList{Activations: []*clusterpb.Activation{
						{Kind: h.kind, Identity: h.id, Pid: ref("m2:1/listed")}}}}
				}, ""},
				{func(h *dirHarness) dirInput { return listed{hash: h.topo.hash, member: "m3"} }, "reply [w1] pid m2:1/listed"},
			},
			endState: "active m2:1/listed",
		},
		{
			name: "a duplicate claim is evicted, the known activation kept", members: 2, kind: actors.KindAccount,
			steps: []dirStep{
				{lookupFrom("w1"), "activate m1"},
				{answer(ok), "reply [w1] pid m1:1/a1"},
				{func(h *dirHarness) dirInput {
					return topologyChanged{topo: newTopology(map[string]string{"m1": "m1:1", "m2": "m2:1", "m9": "m9:1"})}
				}, "timer"},
				{func(h *dirHarness) dirInput {
					h.topo = h.d.topo
					return claimsFrom("m2", "m2:1/dup")(h)
				}, "evict m2 dup"},
			},
			endState: "active m1:1/a1",
		},
		{
			name: "an idle activation stops: lookups wait while it is stopping and place anew when it is gone", members: 2, kind: actors.KindAccount,
			steps: []dirStep{
				{lookupFrom("w1"), "activate m1"},
				{answer(ok), "reply [w1] pid m1:1/a1"},
				{deactivate("a", "m1:1/a1"), "reply [a] may-stop true"},
				{deactivate("a", "m1:1/a1"), "reply [a] may-stop true"},
				{deactivate("b", "m2:1/other"), "reply [b] may-stop true"}, // a duplicate may stop
				{lookupFrom("w2"), ""},
				{gone("m2:1/other"), ""}, // not the entry's activation
				{gone("m1:1/a1"), "activate m1"},
				{answer(ok), "reply [w2] pid m1:1/a1"},
			},
			endState: "active m1:1/a1",
		},
		{
			name: "an unknown activation may stop but stays stopping until gone", members: 2, kind: actors.KindAccount,
			steps: []dirStep{
				{deactivate("a", "m2:1/unknown"), "reply [a] may-stop true"},
				{lookupFrom("w1"), ""},
				{gone("m2:1/unknown"), "activate m1"},
			},
			endState: "activating /",
		},
		{
			name: "an answer for an entry since replaced is ignored", members: 2, kind: actors.KindAccount,
			steps: []dirStep{
				{lookupFrom("w1"), "activate m1"},
				{func(h *dirHarness) dirInput {
					old := h.last
					h.d.Step(topologyChanged{topo: newTopology(map[string]string{"m2": "m2:1"})}) // m1 dies: the entry is dropped
					h.d.Step(topologyChanged{topo: h.topo})
					return activated{key: old.key, gen: old.gen, reply: &clusterpb.ActivateReply{Pid: ref("m1:1/late")}}
				}, ""},
			},
			endState: "none",
		},
		{
			name: "a topology change drops the entries of a dead host and sends their waiters back", members: 2, kind: actors.KindAccount,
			steps: []dirStep{
				{lookupFrom("w1"), "activate m1"},
				{func(h *dirHarness) dirInput {
					return topologyChanged{topo: newTopology(map[string]string{"m2": "m2:1"})}
				},
					"reply [w1] not-owner; timer"},
			},
			endState: "none",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newDirHarness(t, tc.members, tc.kind, "x1")
			steps := tc.steps
			if steps[0].want != "timer" {
				steps = append(allClaimed(tc.members), steps...)
			}
			for i, s := range steps {
				if got := h.step(s.in(h)); got != s.want {
					t.Fatalf("step %d: effects %q, want %q", i, got, s.want)
				}
			}
			if got := describeState(h); got != tc.endState {
				t.Fatalf("entry %q, want %q", got, tc.endState)
			}
		})
	}
}

// Claims of a view the directory has not reached yet are kept and applied
// when it does.
func TestDirState_EarlyClaimsApplyWhenTheViewArrives(t *testing.T) {
	h := newDirHarness(t, 2, actors.KindAccount, "x1")
	for _, in := range []dirInput{claimsFrom("m1")(h), claimsFrom("m2", "m2:1/early")(h)} {
		if got := h.step(in); got != "" {
			t.Fatalf("early claims gave %q", got)
		}
	}
	h.step(topoIn(h))
	if got := h.step(lookupFrom("w1")(h)); got != "reply [w1] pid m2:1/early" {
		t.Fatalf("lookup after the view: %q", got)
	}
}
