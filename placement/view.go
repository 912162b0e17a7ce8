package placement

import (
	"maps"
	"time"
)

// LoadView is one placer's view of the members' loads: each member's last
// gossiped report plus the placer's own placements that the report does
// not count yet (optimistic increments, Orleans' trick), so that stale
// figures do not herd new work onto one node. An increment expires when a
// report as of a later time arrives, since that report counts it.
//
// The runtime's directory owner keeps one, and so does each simulated
// directory owner: both load the same figures the same way. A LoadView
// reads no clock (every time is passed in) and is not safe for concurrent
// use: it belongs to one actor or one simulation.
type LoadView struct {
	m map[string]*viewMember
}

type viewMember struct {
	report   Load
	asOf     time.Time
	reported bool
	pending  []increment // oldest first, from head on
	head     int
	calls    int            // sum of the pending call increments
	acts     map[string]int // sum of the pending increments per kind
}

type increment struct {
	at   time.Time
	kind string
	n    int
}

// NewLoadView returns an empty view.
func NewLoadView() *LoadView { return &LoadView{m: map[string]*viewMember{}} }

func (v *LoadView) get(member string) *viewMember {
	vm := v.m[member]
	if vm == nil {
		vm = &viewMember{acts: map[string]int{}}
		v.m[member] = vm
	}
	return vm
}

// Report records member's load report as of asOf: the increments made
// before asOf expire, as the report counts them. A report not newer than
// the one the view holds is ignored. The view keeps l (and its Activations
// map) and does not modify it; the caller must not either.
//
// The runtime passes the time gossip received the report, the simulator
// the time the report was measured: the runtime knows no other, and on a
// LAN the two differ by the gossip's propagation only.
func (v *LoadView) Report(member string, l Load, asOf time.Time) {
	vm := v.get(member)
	if vm.reported && !asOf.After(vm.asOf) {
		return
	}
	vm.report, vm.asOf, vm.reported = l, asOf, true
	for vm.head < len(vm.pending) && vm.pending[vm.head].at.Before(asOf) {
		vm.undo(vm.pending[vm.head])
		vm.head++
	}
	if vm.head == len(vm.pending) {
		vm.pending, vm.head = vm.pending[:0], 0
	} else if vm.head > 64 && vm.head > len(vm.pending)/2 {
		vm.pending = append(vm.pending[:0], vm.pending[vm.head:]...)
		vm.head = 0
	}
}

func (vm *viewMember) undo(inc increment) {
	if inc.kind == KindCall {
		vm.calls -= inc.n
	}
	if vm.acts[inc.kind] -= inc.n; vm.acts[inc.kind] == 0 {
		delete(vm.acts, inc.kind)
	}
}

// Add records n activations of kind placed on member at time at (n < 0:
// activations gone) until a report as of a later time counts them. A call
// (KindCall) counts in ActiveCalls as well as in Activations.
func (v *LoadView) Add(member, kind string, n int, at time.Time) {
	if n == 0 {
		return
	}
	vm := v.get(member)
	vm.pending = append(vm.pending, increment{at: at, kind: kind, n: n})
	if kind == KindCall {
		vm.calls += n
	}
	vm.acts[kind] += n
}

// MarkFull counts member full (capacity active calls) from at until its
// next report: a node that refused a call for being full is not chosen
// again on the figures that sent the call there.
func (v *LoadView) MarkFull(member string, capacity int, at time.Time) {
	vm := v.get(member)
	if short := capacity - (vm.report.ActiveCalls + vm.calls); short > 0 {
		v.Add(member, KindCall, short, at)
	}
}

// ActiveCalls is member's reported active calls plus the pending call
// increments, at least 0.
func (v *LoadView) ActiveCalls(member string) int {
	vm := v.m[member]
	if vm == nil {
		return 0
	}
	return max(0, vm.report.ActiveCalls+vm.calls)
}

// Activations is member's reported activations of kind plus the pending
// increments of kind, at least 0.
func (v *LoadView) Activations(member, kind string) int {
	vm := v.m[member]
	if vm == nil {
		return 0
	}
	return max(0, vm.report.Activations[kind]+vm.acts[kind])
}

// Load is member's load as the view sees it: the report plus the pending
// increments, each figure at least 0. Its Activations map is the report's
// when no increment is pending (do not modify it), else a new one.
func (v *LoadView) Load(member string) Load {
	vm := v.m[member]
	if vm == nil {
		return Load{}
	}
	l := vm.report
	l.ActiveCalls = max(0, l.ActiveCalls+vm.calls)
	if len(vm.acts) > 0 {
		acts := make(map[string]int, len(l.Activations)+len(vm.acts))
		maps.Copy(acts, l.Activations)
		for k, n := range vm.acts {
			acts[k] = max(0, acts[k]+n)
		}
		l.Activations = acts
	}
	return l
}

// Retain forgets every member for which keep is false (members that left).
func (v *LoadView) Retain(keep func(member string) bool) {
	maps.DeleteFunc(v.m, func(id string, _ *viewMember) bool { return !keep(id) })
}

// MaxFullRefusals bounds how many nodes may refuse one call for being full
// (their figures were stale) before the placer gives up on it.
const MaxFullRefusals = 4

// RetryAfterFull is the full-node retry policy of the runtime and the
// simulator: after the refused-th refusal of one call by a full node (the
// caller has marked that node full with MarkFull), the call is placed again
// while refused is at most MaxFullRefusals; then it is rejected (503).
func RetryAfterFull(refused int) bool { return refused <= MaxFullRefusals }

// CPU is member's reported CPU share; increments do not change it.
func (v *LoadView) CPU(member string) float64 {
	if vm := v.m[member]; vm != nil {
		return vm.report.CPU
	}
	return 0
}
