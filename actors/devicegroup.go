package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/btree"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// deviceGroup is the behavior of the devicegroup kind: a group's runtime
// view. Its configuration and members come from the account actor (the
// authority) at activation and from GroupChanged notices after; what it
// owns itself it persists under dgrp/, with compare-and-set, before it
// replies: its state record (deviceGroupKey: identity and first
// activation) and one record per device with bindings (deviceBindingsKey,
// a DeviceGroupState holding that device's bindings only). A REGISTER,
// a lookup of one device and a device leaving the group cost
// O(that device's bindings) and one record, whatever the group's size.
type deviceGroup struct {
	sys        *System
	account    string
	group      string
	exists     bool
	cfg        *actorpb.Group
	cfgVersion uint64
	members    []string // sorted
	// state is the group's state record (without bindings), nil when the
	// group does not exist.
	state        *actorpb.DeviceGroupState
	stateVersion uint64
	// devices holds each device's stored bindings (SortBindings order;
	// expired ones too, until that device's next write) and its record's
	// version. A device without a record has no entry.
	devices map[string]*deviceBindings
	// byKey indexes the bindings of devices in (device, contact) order,
	// for pages of them; kept current on every write of a device.
	byKey *btree.BTreeG[*actorpb.Binding]
}

// deviceBindings is one device's bindings record.
type deviceBindings struct {
	bindings []*actorpb.Binding
	version  uint64
}

// migrateConcurrency bounds the device records written at once when an
// older state record is split (the stores batch concurrent puts).
const migrateConcurrency = 64

func splitGroupIdentity(id string) (account, group string, ok bool) {
	account, group, ok = strings.Cut(id, "/")
	return account, group, ok && account != "" && group != "" && !strings.Contains(group, "/")
}

func (g *deviceGroup) load(ctx context.Context) error {
	g.exists, g.cfg, g.members, g.state = false, nil, nil, nil
	// No free list of nodes: most groups are small, and a free list would
	// cost each activation 32 pointers.
	g.devices = map[string]*deviceBindings{}
	g.byKey = btree.NewWithFreeListG(32, lessBindingKey, btree.NewFreeListG[*actorpb.Binding](0))
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
	var gone []string
	for d := range g.devices {
		if !g.member(d) {
			gone = append(gone, d)
		}
	}
	return g.dropBindings(ctx, gone)
}

// dropBindings deletes the bindings records of devices.
func (g *deviceGroup) dropBindings(ctx context.Context, devices []string) error {
	for _, d := range devices {
		if err := g.saveDevice(ctx, d, nil); err != nil {
			return err
		}
	}
	return nil
}

func (g *deviceGroup) member(device string) bool {
	_, ok := slices.BinarySearch(g.members, device)
	return ok
}

// saveDevice stores bindings as device's record (deleting the record
// when there are none), compare-and-set on the version this actor last
// read or wrote, and indexes them in place of the device's current ones.
func (g *deviceGroup) saveDevice(ctx context.Context, device string, bindings []*actorpb.Binding) error {
	s, key := g.sys.cfg.Store, deviceBindingsKey(g.account, g.group, device)
	cur := g.devices[device]
	switch {
	case len(bindings) > 0:
		v, err := putRecord(ctx, s, key, &actorpb.DeviceGroupState{Bindings: bindings}, cur.ver())
		if err != nil {
			return err
		}
		g.index(device, &deviceBindings{bindings: bindings, version: v})
	case cur != nil:
		// Gone already is what was asked for.
		if err := s.Delete(ctx, key, cur.version); err != nil && !errors.Is(err, persistence.ErrNotFound) {
			return err
		}
		g.index(device, nil)
	}
	return nil
}

// ver is the record's version, or MustNotExist when there is none.
func (d *deviceBindings) ver() uint64 {
	if d == nil {
		return persistence.MustNotExist
	}
	return d.version
}

// index makes rec (nil: none) device's record in devices and byKey.
func (g *deviceGroup) index(device string, rec *deviceBindings) {
	if cur := g.devices[device]; cur != nil {
		for _, b := range cur.bindings {
			g.byKey.Delete(b)
		}
	}
	if rec == nil {
		delete(g.devices, device)
		return
	}
	g.devices[device] = rec
	for _, b := range rec.bindings {
		g.byKey.ReplaceOrInsert(b)
	}
}

// loadState reads the group's state record, creating it on first
// activation, and its devices' bindings records; a state record of the
// older layout, which held every device's bindings, is split into them.
func (g *deviceGroup) loadState(ctx context.Context) error {
	s := g.sys.cfg.Store
	key := deviceGroupKey(g.account, g.group)
	cur, err := loadOne[*actorpb.DeviceGroupState](ctx, s, key)
	if err != nil {
		return err
	}
	if cur == nil {
		// Bindings records without a state record are leftovers of an
		// earlier group of this id, whose delete removed the state record.
		if err := deleteAll(ctx, s, deviceBindingsPrefix(g.account, g.group), false); err != nil {
			return err
		}
		st := &actorpb.DeviceGroupState{Account: g.account, Group: g.group, FirstActivatedAt: timestamppb.New(g.sys.cfg.Clock.Now())}
		v, err := putRecord(ctx, s, key, st, persistence.MustNotExist)
		if err != nil {
			return err
		}
		g.state, g.stateVersion = st, v
		return nil
	}
	g.state, g.stateVersion = cur.rec, cur.version
	if err := g.loadDevices(ctx); err != nil {
		return err
	}
	if len(g.state.Bindings) > 0 {
		return g.migrate(ctx)
	}
	return nil
}

// loadDevices reads every bindings record of the group, leaving out the
// bindings already expired.
func (g *deviceGroup) loadDevices(ctx context.Context) error {
	prefix := deviceBindingsPrefix(g.account, g.group)
	items, err := persistence.ScanAll(ctx, g.sys.cfg.Store, prefix)
	if err != nil {
		return err
	}
	now := g.sys.cfg.Clock.Now()
	for _, it := range items {
		rec, err := decodeItem[*actorpb.DeviceGroupState](it)
		if err != nil {
			return err
		}
		g.index(strings.TrimPrefix(it.Key, prefix), &deviceBindings{bindings: LiveBindings(rec.rec.Bindings, "", now), version: rec.version})
	}
	return nil
}

// migrate moves the live bindings of a state record of the older layout
// into one record per member device (those that have none yet: a split
// cut short before the state record lost its bindings left them), then
// stores the state record without them. The device records are written
// concurrently, so that a large group's split takes one batch of store
// commits per migrateConcurrency devices.
func (g *deviceGroup) migrate(ctx context.Context) error {
	byDevice := map[string][]*actorpb.Binding{}
	for _, b := range LiveBindings(g.state.Bindings, "", g.sys.cfg.Clock.Now()) {
		if _, done := g.devices[b.Device]; !done && g.member(b.Device) {
			byDevice[b.Device] = append(byDevice[b.Device], b)
		}
	}
	var (
		mu sync.Mutex
		eg errgroup.Group
	)
	eg.SetLimit(migrateConcurrency)
	for d, bs := range byDevice {
		eg.Go(func() error {
			v, err := putRecord(ctx, g.sys.cfg.Store, deviceBindingsKey(g.account, g.group, d), &actorpb.DeviceGroupState{Bindings: bs}, persistence.MustNotExist)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			g.index(d, &deviceBindings{bindings: bs, version: v})
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return fmt.Errorf("splitting the bindings of group %s into device records: %w", g.group, err)
	}
	st := &actorpb.DeviceGroupState{Account: g.state.Account, Group: g.state.Group, FirstActivatedAt: g.state.FirstActivatedAt}
	v, err := putRecord(ctx, g.sys.cfg.Store, deviceGroupKey(g.account, g.group), st, g.stateVersion)
	if err != nil {
		return err
	}
	g.state, g.stateVersion = st, v
	return nil
}

// deleteAll deletes every record under prefix: whatever its version when
// anyVersion is set, else only at the version scanned, so that a record
// rewritten meanwhile (another activation's registration) fails the delete
// with ErrConflict instead of being lost.
func deleteAll(ctx context.Context, s persistence.Store, prefix string, anyVersion bool) error {
	items, err := persistence.ScanAll(ctx, s, prefix)
	if err != nil {
		return err
	}
	for _, it := range items {
		v := it.Version
		if anyVersion {
			v = persistence.AnyVersion
		}
		if err := s.Delete(ctx, it.Key, v); err != nil && !errors.Is(err, persistence.ErrNotFound) {
			return err
		}
	}
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
		return &actorpb.RegisterReply{Bindings: g.live(m.Device)}
	}
	return errorReply(msg, invalid("", "devicegroup actor does not handle %T", msg))
}

// live returns the live bindings of device ("" for every device), most
// recently updated first.
func (g *deviceGroup) live(device string) []*actorpb.Binding {
	now := g.sys.cfg.Clock.Now()
	if device != "" {
		if d := g.devices[device]; d != nil {
			return LiveBindings(d.bindings, "", now)
		}
		return nil
	}
	var all []*actorpb.Binding
	g.byKey.Ascend(func(b *actorpb.Binding) bool {
		all = append(all, b)
		return true
	})
	return LiveBindings(all, "", now)
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

// register applies a REGISTER (RFC 3261 section 10.3) to the device's
// bindings and replies with its live ones; the device's record is stored
// before the reply.
func (g *deviceGroup) register(t *turn, m *actorpb.Register) proto.Message {
	if m.Device == "" {
		return &actorpb.RegisterReply{Error: invalid("device", "device is required")}
	}
	if e := g.checkDevice(m.Device); e != nil {
		return &actorpb.RegisterReply{Error: e}
	}
	var cur []*actorpb.Binding
	if d := g.devices[m.Device]; d != nil {
		cur = d.bindings
	}
	now := g.sys.cfg.Clock.Now()
	next, e := ApplyRegister(cur, m, now)
	if e != nil {
		return &actorpb.RegisterReply{Error: e}
	}
	if !sameBindings(next, cur) {
		if err := g.saveDevice(t.ctx, m.Device, next); err != nil {
			return &actorpb.RegisterReply{Error: storeFailed(t, err, "registrations of device "+m.Device+" in group "+g.group)}
		}
	}
	return &actorpb.RegisterReply{Bindings: g.live(m.Device)}
}

func (g *deviceGroup) apply(t *turn, m *actorpb.GroupChanged) {
	if m.Deleted {
		// The account deleted the state record; bindings records left by
		// devices whose removal this actor did not see are deleted when a
		// group of this id is created again (loadState), or with the account.
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
	if err := g.dropBindings(t.ctx, m.Removed); err != nil {
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
		v.State = &actorpb.DeviceGroupState{Account: st.Account, Group: st.Group, FirstActivatedAt: st.FirstActivatedAt, Bindings: g.live("")}
	}
	return v
}

// debug shows the group as view does, its members and live bindings cut
// to the first debugListLimit of each (members by id, bindings by device
// and contact), with their counts.
func (g *deviceGroup) debug(context.Context) proto.Message {
	v := &actorpb.GroupView{Group: g.cfg, Version: g.cfgVersion, MemberCount: uint32(len(g.members))}
	v.Members = g.members[:min(len(g.members), debugListLimit)]
	if st := g.state; st != nil {
		page := g.bindingPage(&actorpb.LookupBindings{Limit: debugListLimit})
		v.BindingCount = uint32(g.byKey.Len()) // expired ones too, until their device's next write purges them
		v.State = &actorpb.DeviceGroupState{Account: st.Account, Group: st.Group, FirstActivatedAt: st.FirstActivatedAt, Bindings: page.Bindings}
	}
	return v
}

// bindingPage answers a LookupBindings with a limit: at most m.Limit live
// bindings (of m.Device, or of every device) in (device, contact) order
// after the cursor, and whether more follow. It walks byKey from the
// cursor, so a page costs O(log n + limit) (plus the expired bindings it
// passes).
func (g *deviceGroup) bindingPage(m *actorpb.LookupBindings) *actorpb.RegisterReply {
	after := &actorpb.Binding{Device: m.AfterDevice, Contact: m.AfterContact}
	if m.Device != "" && m.AfterDevice < m.Device {
		after = &actorpb.Binding{Device: m.Device}
	}
	now := g.sys.cfg.Clock.Now()
	out := &actorpb.RegisterReply{}
	g.byKey.AscendGreaterOrEqual(after, func(b *actorpb.Binding) bool {
		switch {
		case compareBindingKeys(b, after) == 0:
			return true // the cursor itself
		case m.Device != "" && b.Device != m.Device:
			return false
		case !b.ExpiresAt.AsTime().After(now):
			return true
		case len(out.Bindings) == int(m.Limit):
			out.More = true
			return false
		}
		out.Bindings = append(out.Bindings, b)
		return true
	})
	return out
}

// compareBindingKeys orders bindings by device, then contact: their
// order in a page.
func compareBindingKeys(a, b *actorpb.Binding) int {
	return cmp.Or(strings.Compare(a.Device, b.Device), strings.Compare(a.Contact, b.Contact))
}

func lessBindingKey(a, b *actorpb.Binding) bool { return compareBindingKeys(a, b) < 0 }
