package actors

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// deviceGroup is the behavior of the devicegroup kind: a group's runtime
// view. Its configuration and members come from the account actor (the
// authority) at activation and from GroupChanged notices after; what it
// owns itself (DeviceGroupState: its devices' registrations) it persists
// under dgrp/, with compare-and-set, before it replies.
type deviceGroup struct {
	sys          *System
	account      string
	group        string
	exists       bool
	cfg          *actorpb.Group
	cfgVersion   uint64
	members      []string // sorted
	state        *actorpb.DeviceGroupState
	stateVersion uint64
	// byKey is state's bindings in (device, contact) order, for pages of
	// them; byKeyOf is the state it was built from (rebuilt once per
	// state change, on the first page read after it).
	byKey   []*actorpb.Binding
	byKeyOf *actorpb.DeviceGroupState
}

func newDeviceGroup(sys *System, account, group string) *deviceGroup {
	return &deviceGroup{sys: sys, account: account, group: group}
}

func splitGroupIdentity(id string) (account, group string, ok bool) {
	account, group, ok = strings.Cut(id, "/")
	return account, group, ok && account != "" && group != "" && !strings.Contains(group, "/")
}

func (g *deviceGroup) load(ctx context.Context) error {
	g.exists, g.cfg, g.members, g.state = false, nil, nil, nil
	res, err := g.sys.Request(ctx, KindAccount, g.account, &actorpb.DescribeGroup{Group: g.group})
	if err != nil {
		return fmt.Errorf("asking account %s for group %s: %w", g.account, g.group, err)
	}
	rep, ok := res.(*actorpb.GroupReply)
	if !ok {
		return fmt.Errorf("account %s answered DescribeGroup with %T", g.account, res)
	}
	if e := rep.GetError(); e != nil {
		if e.Code == actorpb.Code_CODE_NOT_FOUND {
			return nil
		}
		return fmt.Errorf("account %s: %s", g.account, e.Message)
	}
	g.exists, g.cfg, g.cfgVersion, g.members = true, rep.Group, rep.Version, rep.Members
	if err := g.loadState(ctx); err != nil {
		return err
	}
	// Devices that left the group while this actor was not active (the
	// account's notices reach active actors only) lose their bindings now.
	return g.dropBindings(ctx, func(device string) bool { return !g.member(device) })
}

// dropBindings stores the state without the bindings of the devices that
// gone reports (and without expired ones), when there are any.
func (g *deviceGroup) dropBindings(ctx context.Context, gone func(device string) bool) error {
	drop := func(b *actorpb.Binding) bool { return gone(b.Device) }
	if !slices.ContainsFunc(g.state.Bindings, drop) {
		return nil
	}
	return g.saveBindings(ctx, slices.DeleteFunc(LiveBindings(g.state.Bindings, "", g.sys.cfg.Clock.Now()), drop))
}

func (g *deviceGroup) member(device string) bool {
	_, ok := slices.BinarySearch(g.members, device)
	return ok
}

// saveBindings stores the state with bindings in place of the current
// ones, compare-and-set on the version this actor last read or wrote.
func (g *deviceGroup) saveBindings(ctx context.Context, bindings []*actorpb.Binding) error {
	st := &actorpb.DeviceGroupState{Account: g.state.Account, Group: g.state.Group, FirstActivatedAt: g.state.FirstActivatedAt, Bindings: bindings}
	v, err := putRecord(ctx, g.sys.cfg.Store, deviceGroupKey(g.account, g.group), st, g.stateVersion)
	if err != nil {
		return err
	}
	g.state, g.stateVersion = st, v
	return nil
}

// loadState reads the group's own state, creating it on first activation.
func (g *deviceGroup) loadState(ctx context.Context) error {
	s := g.sys.cfg.Store
	key := deviceGroupKey(g.account, g.group)
	cur, err := loadOne[*actorpb.DeviceGroupState](ctx, s, key)
	if err != nil {
		return err
	}
	if cur != nil {
		g.state, g.stateVersion = cur.rec, cur.version
		return nil
	}
	st := &actorpb.DeviceGroupState{Account: g.account, Group: g.group, FirstActivatedAt: timestamppb.New(g.sys.cfg.Clock.Now())}
	v, err := putRecord(ctx, s, key, st, persistence.MustNotExist)
	if err != nil {
		return err
	}
	g.state, g.stateVersion = st, v
	return nil
}

func (g *deviceGroup) receive(t *turn, msg proto.Message) proto.Message {
	switch m := msg.(type) {
	case *actorpb.GroupChanged:
		g.apply(t, m)
		return nil
	case *actorpb.GetGroupView:
		if !g.exists {
			return &actorpb.GroupView{Error: notFound("group", "group %q not found in account %q", g.group, g.account)}
		}
		return g.view()
	case *actorpb.Register:
		return g.register(t, m)
	case *actorpb.LookupBindings:
		if e := g.checkDevice(m.Device); e != nil {
			return &actorpb.RegisterReply{Error: e}
		}
		if m.Limit > 0 {
			return g.bindingPage(m)
		}
		return &actorpb.RegisterReply{Bindings: LiveBindings(g.state.Bindings, m.Device, g.sys.cfg.Clock.Now())}
	}
	return errorReply(msg, invalid("", "devicegroup actor does not handle %T", msg))
}

// checkDevice reports a missing group, or a device ("" for any) that is
// not a member.
func (g *deviceGroup) checkDevice(device string) *actorpb.Error {
	if !g.exists {
		return notFound("group", "group %q not found in account %q", g.group, g.account)
	}
	if device != "" && !g.member(device) {
		return notFound("device", "device %q is not in group %q of account %q", device, g.group, g.account)
	}
	return nil
}

// register applies a REGISTER (RFC 3261 section 10.3) and replies with the
// device's live bindings; the change is stored before the reply.
func (g *deviceGroup) register(t *turn, m *actorpb.Register) proto.Message {
	if m.Device == "" {
		return &actorpb.RegisterReply{Error: invalid("device", "device is required")}
	}
	if e := g.checkDevice(m.Device); e != nil {
		return &actorpb.RegisterReply{Error: e}
	}
	now := g.sys.cfg.Clock.Now()
	next, e := ApplyRegister(g.state.Bindings, m, now)
	if e != nil {
		return &actorpb.RegisterReply{Error: e}
	}
	if !sameBindings(next, g.state.Bindings) {
		if err := g.saveBindings(t.ctx, next); err != nil {
			return &actorpb.RegisterReply{Error: storeFailed(t, err, "registrations of group "+g.group)}
		}
	}
	return &actorpb.RegisterReply{Bindings: LiveBindings(g.state.Bindings, m.Device, now)}
}

func (g *deviceGroup) apply(t *turn, m *actorpb.GroupChanged) {
	if m.Deleted {
		g.exists, g.cfg, g.members, g.state = false, nil, nil, nil
		t.stop = true
		return
	}
	if !g.exists {
		// The group was created after this activation found it missing.
		t.reload = true
		return
	}
	if m.Group != nil {
		g.cfg, g.cfgVersion = m.Group, m.Version
	}
	for _, d := range m.Removed {
		if i, ok := slices.BinarySearch(g.members, d); ok {
			g.members = slices.Delete(g.members, i, i+1)
		}
	}
	for _, d := range m.Added {
		if i, ok := slices.BinarySearch(g.members, d); !ok {
			g.members = slices.Insert(g.members, i, d)
		}
	}
	// A device that left the group loses its registrations.
	if err := g.dropBindings(t.ctx, func(device string) bool { return slices.Contains(m.Removed, device) }); err != nil {
		// Reloading drops them too: the account's members are the truth.
		g.sys.log.Warn("dropping the bindings of devices that left the group failed; reloading",
			"account", g.account, "group", g.group, "err", err)
		t.reload = true
	}
}

// view shows the group with its live bindings only.
func (g *deviceGroup) view() *actorpb.GroupView {
	v := &actorpb.GroupView{Group: g.cfg, Version: g.cfgVersion, Members: g.members}
	if st := g.state; st != nil {
		v.State = &actorpb.DeviceGroupState{
			Account: st.Account, Group: st.Group, FirstActivatedAt: st.FirstActivatedAt,
			Bindings: LiveBindings(st.Bindings, "", g.sys.cfg.Clock.Now()),
		}
	}
	return v
}

// debug shows the group as view does, its members and live bindings cut
// to the first debugListLimit of each (members by id, bindings by device
// and contact), with their counts.
func (g *deviceGroup) debug() proto.Message {
	v := &actorpb.GroupView{Group: g.cfg, Version: g.cfgVersion, MemberCount: uint32(len(g.members))}
	v.Members = g.members[:min(len(g.members), debugListLimit)]
	if st := g.state; st != nil {
		page := g.bindingPage(&actorpb.LookupBindings{Limit: debugListLimit})
		v.BindingCount = uint32(len(st.Bindings)) // expired ones too, until the next write purges them
		v.State = &actorpb.DeviceGroupState{Account: st.Account, Group: st.Group, FirstActivatedAt: st.FirstActivatedAt, Bindings: page.Bindings}
	}
	return v
}

// bindingPage answers a LookupBindings with a limit: at most m.Limit live
// bindings (of m.Device, or of every device) in (device, contact) order
// after the cursor, and whether more follow. It reads byKey, so a page
// costs O(log n + limit) between writes, not a sort of every binding.
func (g *deviceGroup) bindingPage(m *actorpb.LookupBindings) *actorpb.RegisterReply {
	if g.byKeyOf != g.state {
		g.byKey = slices.Clone(g.state.Bindings)
		slices.SortFunc(g.byKey, compareBindingKeys)
		g.byKeyOf = g.state
	}
	after := &actorpb.Binding{Device: m.AfterDevice, Contact: m.AfterContact}
	if m.Device != "" && m.AfterDevice < m.Device {
		after = &actorpb.Binding{Device: m.Device}
	}
	i, found := slices.BinarySearchFunc(g.byKey, after, compareBindingKeys)
	if found {
		i++
	}
	now := g.sys.cfg.Clock.Now()
	out := &actorpb.RegisterReply{}
	for _, b := range g.byKey[i:] {
		if m.Device != "" && b.Device != m.Device {
			break
		}
		if !b.ExpiresAt.AsTime().After(now) {
			continue
		}
		if len(out.Bindings) == int(m.Limit) {
			out.More = true
			break
		}
		out.Bindings = append(out.Bindings, b)
	}
	return out
}

// compareBindingKeys orders bindings by device, then contact: their
// order in a page.
func compareBindingKeys(a, b *actorpb.Binding) int {
	return cmp.Or(strings.Compare(a.Device, b.Device), strings.Compare(a.Contact, b.Contact))
}
