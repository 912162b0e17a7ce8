package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/placement"
	"github.com/switchboard-pbx/switchboard/provisioning"
	"github.com/switchboard-pbx/switchboard/sipauth"
)

// versioned is a decoded record and the store version it was read or
// written at.
type versioned[T proto.Message] struct {
	rec     T
	version uint64
}

// account is the behavior of the account kind: the authority for an
// account's configuration, groups, devices (with their HA1s), trunks and
// routes.
type account struct {
	sys     *System
	id      string
	acct    *versioned[*actorpb.Account] // nil: the account does not exist
	groups  map[string]*versioned[*actorpb.Group]
	devices map[string]*versioned[*actorpb.Device]
	trunks  map[string]*versioned[*actorpb.Trunk]
	routes  *versioned[*actorpb.RouteSet] // nil: never set
	// byGroup holds each group's device ids, so that a group's members
	// and size cost the group, not the account.
	byGroup map[string]map[string]struct{}
}

// ver is the version of v, or 0 (persistence.MustNotExist) when the record
// does not exist: what a write of it expects.
func (v *versioned[T]) ver() uint64 {
	if v == nil {
		return 0
	}
	return v.version
}

func (a *account) store() persistence.Store { return a.sys.cfg.Store }

func (a *account) load(ctx context.Context) error {
	a.acct, a.routes = nil, nil
	a.clearChildren()
	acct, err := loadOne[*actorpb.Account](ctx, a.store(), accountKey(a.id))
	if err != nil || acct == nil {
		return err // leftovers of a half-finished delete are ignored and cleaned on create
	}
	a.acct = acct
	if err := loadAll(ctx, a.store(), groupPrefix(a.id), a.groups); err != nil {
		return err
	}
	if err := loadAll(ctx, a.store(), devicePrefix(a.id), a.devices); err != nil {
		return err
	}
	for _, d := range a.devices {
		a.join(d.rec.Group, d.rec.Id)
	}
	if err := loadAll(ctx, a.store(), trunkPrefix(a.id), a.trunks); err != nil {
		return err
	}
	a.routes, err = loadOne[*actorpb.RouteSet](ctx, a.store(), routesKey(a.id))
	return err
}

// clearChildren forgets the account's groups, devices, trunks and routes.
func (a *account) clearChildren() {
	a.groups, a.devices = map[string]*versioned[*actorpb.Group]{}, map[string]*versioned[*actorpb.Device]{}
	a.trunks, a.routes = map[string]*versioned[*actorpb.Trunk]{}, nil
	a.byGroup = map[string]map[string]struct{}{}
}

// loadOne decodes the record at key, or returns nil when there is none.
func loadOne[T proto.Message](ctx context.Context, s persistence.Store, key string) (*versioned[T], error) {
	it, err := s.Get(ctx, key)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	it.Key = key
	return decodeItem[T](it)
}

// decodeItem decodes a stored item as a T.
func decodeItem[T proto.Message](it persistence.Item) (*versioned[T], error) {
	var rec T
	rec = rec.ProtoReflect().Type().New().Interface().(T)
	if err := proto.Unmarshal(it.Value, rec); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", it.Key, err)
	}
	return &versioned[T]{rec: rec, version: it.Version}, nil
}

// loadAll decodes every record under prefix into into, keyed by the last
// key segment.
func loadAll[T proto.Message](ctx context.Context, s persistence.Store, prefix string, into map[string]*versioned[T]) error {
	items, err := persistence.ScanAll(ctx, s, prefix)
	if err != nil {
		return err
	}
	for _, it := range items {
		v, err := decodeItem[T](it)
		if err != nil {
			return err
		}
		into[strings.TrimPrefix(it.Key, prefix)] = v
	}
	return nil
}

func (a *account) receive(t *turn, msg proto.Message) proto.Message {
	rep := a.handle(t, msg)
	ch := EdgeChange{Account: a.id, All: t.reload}
	if e, ok := rep.(interface{ GetError() *actorpb.Error }); !ok || e.GetError() == nil {
		switch m := msg.(type) {
		case *actorpb.PutAccount, *actorpb.DeleteAccount:
			ch.All = true
		case *actorpb.PutGroup, *actorpb.DeleteGroup, *actorpb.PutTrunk, *actorpb.DeleteTrunk, *actorpb.PutRoutes:
			ch.Level = true
		case *actorpb.PutDevice, *actorpb.DeleteDevice, *actorpb.ResetDeviceCredentials, *actorpb.DigestAnswered:
			ch.Devices = []string{m.(interface{ GetDevice() string }).GetDevice()}
		}
	}
	a.edgeChanged(ch)
	return rep
}

// edgeChanged tells the nodes' snapshots what changed, when anything did.
func (a *account) edgeChanged(ch EdgeChange) {
	if f := a.sys.cfg.EdgeChanged; f != nil && (ch.All || ch.Level || len(ch.Devices) > 0) {
		f(ch)
	}
}

func (a *account) handle(t *turn, msg proto.Message) proto.Message {
	if m, ok := msg.(*actorpb.PutAccount); ok {
		return a.putAccount(t, m)
	}
	if a.acct == nil {
		return errorReply(msg, notFound("account", "account %q not found", a.id))
	}
	// The group, device or trunk a request reads or deletes must exist.
	switch msg.(type) {
	case *actorpb.DescribeGroup, *actorpb.DeleteGroup:
		if id := msg.(interface{ GetGroup() string }).GetGroup(); a.groups[id] == nil {
			return errorReply(msg, notFound("group", "group %q not found in account %q", id, a.id))
		}
	case *actorpb.GetDevice, *actorpb.DeleteDevice, *actorpb.ResetDeviceCredentials, *actorpb.DigestAnswered, *actorpb.GetProvisioning:
		if id := msg.(interface{ GetDevice() string }).GetDevice(); a.devices[id] == nil {
			return errorReply(msg, notFound("device", "device %q not found in account %q", id, a.id))
		}
	case *actorpb.GetTrunk, *actorpb.DeleteTrunk:
		if id := msg.(interface{ GetTrunk() string }).GetTrunk(); a.trunks[id] == nil {
			return errorReply(msg, notFound("trunk", "trunk %q not found in account %q", id, a.id))
		}
	}
	switch m := msg.(type) {
	case *actorpb.GetAccount:
		return a.accountReply(false)
	case *actorpb.DeleteAccount:
		return a.deleteAccount(t, m)
	case *actorpb.PutGroup:
		return a.putGroup(t, m)
	case *actorpb.DeleteGroup:
		return a.deleteGroup(t, m)
	case *actorpb.DescribeGroup:
		g := a.groups[m.Group]
		// Tier 1 again: the group keeps its pool while the pool still
		// meets the prescribed conditions.
		a.assignPool(t, g)
		return &actorpb.GroupReply{Group: g.rec, Version: g.version, Members: a.members(m.Group)}
	case *actorpb.ListGroups:
		return a.listGroups(t, m)
	case *actorpb.PutDevice:
		return a.putDevice(t, m)
	case *actorpb.GetDevice:
		d := a.devices[m.Device]
		return &actorpb.DeviceReply{Device: redactDevice(d.rec), Version: d.version}
	case *actorpb.DeleteDevice:
		return a.deleteDevice(t, m)
	case *actorpb.ListDevices:
		return a.listDevices(t, m)
	case *actorpb.PutTrunk:
		return a.putTrunk(t, m)
	case *actorpb.GetTrunk:
		cur := a.trunks[m.Trunk]
		return &actorpb.TrunkReply{Trunk: cur.rec, Version: cur.version}
	case *actorpb.DeleteTrunk:
		return a.deleteTrunk(t, m)
	case *actorpb.ListTrunks:
		return a.listTrunks(t, m)
	case *actorpb.PutRoutes:
		return a.putRoutes(t, m)
	case *actorpb.GetRoutes:
		return a.getRoutes()
	case *actorpb.GetSecretEdgeView:
		return a.edgeView(t, m)
	case *actorpb.ResetDeviceCredentials:
		return a.resetCredentials(t, m)
	case *actorpb.DigestAnswered:
		return a.digestAnswered(t, m)
	case *actorpb.GetProvisioning:
		d := a.devices[m.Device]
		return &actorpb.ProvisioningReply{Group: d.rec.Group, ProvisioningKey: d.rec.ProvisioningKey,
			SealedPassword: d.rec.SealedPassword, CredentialsResetAt: d.rec.CredentialsResetAt}
	}
	return errorReply(msg, invalid("", "account actor does not handle %T", msg))
}

func (a *account) accountReply(created bool) *actorpb.AccountReply {
	return &actorpb.AccountReply{
		Account: a.acct.rec, Version: a.acct.version, Created: created,
		GroupCount: uint32(len(a.groups)), DeviceCount: uint32(len(a.devices)),
	}
}

// ifMatch checks an optional If-Match against the current version (0: absent).
func ifMatch(want *uint64, current uint64, what string) *actorpb.Error {
	if want == nil || *want == current {
		return nil
	}
	if current == 0 {
		return conflict("version", "%s does not exist, so version %d cannot match", what, *want)
	}
	return conflict("version", "%s is at version %d, not %d", what, current, *want)
}

// storeFailed turns a store error during a write into a reply error; a lost
// compare-and-set means another writer changed the record, so the actor
// reloads before the next message.
func storeFailed(t *turn, err error, what string) *actorpb.Error {
	t.reload = true // another writer, or the write's outcome is unknown
	if errors.Is(err, persistence.ErrConflict) {
		return conflict("version", "%s was changed concurrently; read it again and retry", what)
	}
	return unavailable("storing %s failed; retry: %v", what, err)
}

func (a *account) putAccount(t *turn, m *actorpb.PutAccount) proto.Message {
	if e := LabelIDError("account", "account", a.id); e != nil {
		return &actorpb.AccountReply{Error: e}
	}
	if e := ifMatch(m.IfMatch, a.acct.ver(), "account "+a.id); e != nil {
		return &actorpb.AccountReply{Error: e}
	}
	alg, err := sipauth.ParseAlgorithm(m.DigestAlgorithm)
	if err != nil {
		return &actorpb.AccountReply{Error: invalid("digest_algorithm", "%v", err)}
	}
	trusted, err := ParseTrustedSources(m.SipTrustedSources)
	if err != nil {
		return &actorpb.AccountReply{Error: invalid("sip_trusted_sources", "%v", err)}
	}
	now := timestamppb.New(a.sys.cfg.Clock.Now())
	rec := &actorpb.Account{Id: a.id, DisplayName: m.DisplayName, DnsName: AccountDNSName(a.id, a.sys.cfg.Zone), CreatedAt: now, UpdatedAt: now,
		DigestAlgorithm: alg, StrictMinExpires: m.StrictMinExpires, SipTrustedSources: PrefixStrings(trusted)}
	if a.acct != nil {
		rec.CreatedAt = a.acct.rec.CreatedAt
	} else if err := a.cleanLeftovers(t.ctx); err != nil {
		return &actorpb.AccountReply{Error: storeFailed(t, err, "account "+a.id)}
	}
	v, err := putRecord(t.ctx, a.store(), accountKey(a.id), rec, a.acct.ver())
	if err != nil {
		return &actorpb.AccountReply{Error: storeFailed(t, err, "account "+a.id)}
	}
	created := a.acct == nil
	a.acct = &versioned[*actorpb.Account]{rec: rec, version: v}
	return a.accountReply(created)
}

// cleanLeftovers removes what a half-finished delete of an earlier account
// with this id may have left, before the id is used again.
func (a *account) cleanLeftovers(ctx context.Context) error {
	for _, p := range []string{accountChildren(a.id), deviceGroupPrefix(a.id)} {
		if err := deleteAll(ctx, a.store(), p, true); err != nil {
			return err
		}
	}
	a.clearChildren()
	return nil
}

func (a *account) deleteAccount(t *turn, m *actorpb.DeleteAccount) proto.Message {
	if e := ifMatch(m.IfMatch, a.acct.version, "account "+a.id); e != nil {
		return &actorpb.AccountReply{Error: e}
	}
	// Deleting the account record is the commit point; children left by a
	// failure after it are invisible and cleaned when the id is reused.
	if err := a.store().Delete(t.ctx, accountKey(a.id), a.acct.version); err != nil {
		return &actorpb.AccountReply{Error: storeFailed(t, err, "account "+a.id)}
	}
	reply := a.accountReply(false)
	groups := sortedKeys(a.groups)
	a.acct = nil
	if err := a.cleanLeftovers(t.ctx); err != nil {
		a.sys.log.Warn("account deleted but some of its records remain; they are cleaned when the id is reused",
			"account", a.id, "err", err)
	}
	for _, g := range groups {
		a.sys.notify(KindDeviceGroup, deviceGroupIdentity(a.id, g), &actorpb.GroupChanged{Deleted: true})
	}
	return reply
}

func (a *account) putGroup(t *turn, m *actorpb.PutGroup) proto.Message {
	in := m.GetGroup()
	if in == nil || in.Id == "" {
		return &actorpb.GroupReply{Error: invalid("group", "group id is required")}
	}
	cur := a.groups[in.Id]
	if e := ifMatch(m.IfMatch, cur.ver(), "group "+in.Id); e != nil {
		return &actorpb.GroupReply{Error: e}
	}
	now := timestamppb.New(a.sys.cfg.Clock.Now())
	rec := proto.Clone(in).(*actorpb.Group)
	rec.CreatedAt, rec.UpdatedAt = now, now
	rec.AssignedPool, rec.PoolReason, rec.PoolAssignedAt = "", "", nil
	if cur != nil {
		rec.CreatedAt = cur.rec.CreatedAt
		rec.AssignedPool, rec.PoolReason, rec.PoolAssignedAt = cur.rec.AssignedPool, cur.rec.PoolReason, cur.rec.PoolAssignedAt
	}
	a.choosePool(t, in.Id, rec)
	v, err := putRecord(t.ctx, a.store(), groupKey(a.id, in.Id), rec, cur.ver())
	if err != nil {
		return &actorpb.GroupReply{Error: storeFailed(t, err, "group "+in.Id)}
	}
	a.groups[in.Id] = &versioned[*actorpb.Group]{rec: rec, version: v}
	a.sys.notify(KindDeviceGroup, deviceGroupIdentity(a.id, in.Id), &actorpb.GroupChanged{Group: rec, Version: v})
	return &actorpb.GroupReply{Group: rec, Version: v, Created: cur == nil}
}

func (a *account) deleteGroup(t *turn, m *actorpb.DeleteGroup) proto.Message {
	cur := a.groups[m.Group] // handle checked that it exists
	if e := ifMatch(m.IfMatch, cur.version, "group "+m.Group); e != nil {
		return &actorpb.GroupReply{Error: e}
	}
	if n := len(a.byGroup[m.Group]); n > 0 {
		return &actorpb.GroupReply{Error: conflict("group", "group %q still has %d devices; move or delete them first", m.Group, n)}
	}
	if tr := a.trunkOf(m.Group); tr != "" {
		return &actorpb.GroupReply{Error: conflict("group", "trunk %q places its calls by group %q; change or delete the trunk first", tr, m.Group)}
	}
	if err := a.store().Delete(t.ctx, groupKey(a.id, m.Group), cur.version); err != nil {
		return &actorpb.GroupReply{Error: storeFailed(t, err, "group "+m.Group)}
	}
	delete(a.groups, m.Group)
	if err := a.dropGroupState(t.ctx, m.Group); err != nil {
		a.sys.log.Warn("group deleted but its runtime state remains", "account", a.id, "group", m.Group, "err", err)
	}
	a.sys.notify(KindDeviceGroup, deviceGroupIdentity(a.id, m.Group), &actorpb.GroupChanged{Deleted: true})
	return &actorpb.GroupReply{Group: cur.rec, Version: cur.version}
}

func (a *account) putDevice(t *turn, m *actorpb.PutDevice) proto.Message {
	if m.Device == "" {
		return &actorpb.DeviceReply{Error: invalid("device", "device id is required")}
	}
	if _, ok := a.groups[m.Group]; !ok {
		return &actorpb.DeviceReply{Error: invalid("group", "group %q does not exist in account %q; create it first with PUT /v1/accounts/%s/groups/%s", m.Group, a.id, a.id, m.Group)}
	}
	setCreds := len(m.Ha1Md5) > 0 || len(m.Ha1Sha256) > 0
	if setCreds && (len(m.Ha1Md5) != 16 || len(m.Ha1Sha256) != 32) {
		return &actorpb.DeviceReply{Error: invalid("password", "credentials must carry both an MD5 and a SHA-256 HA1")}
	}
	alg, err := sipauth.ParseAlgorithm(m.DigestAlgorithm)
	if err != nil {
		return &actorpb.DeviceReply{Error: invalid("digest_algorithm", "%v", err)}
	}
	cur := a.devices[m.Device]
	if e := ifMatch(m.IfMatch, cur.ver(), "device "+m.Device); e != nil {
		return &actorpb.DeviceReply{Error: e}
	}
	if cur == nil && !setCreds {
		return &actorpb.DeviceReply{Error: invalid("password", "a password is required for a new device")}
	}
	now := timestamppb.New(a.sys.cfg.Clock.Now())
	// New credentials without a sealed password (one the provisioning
	// document cannot carry) leave the document without a password until
	// the next set or reset; the device keeps its key.
	rec := &actorpb.Device{Id: m.Device, Group: m.Group, DisplayName: m.DisplayName, Ha1Md5: m.Ha1Md5, Ha1Sha256: m.Ha1Sha256, CreatedAt: now, UpdatedAt: now,
		ProvisioningKey: m.ProvisioningKey, SealedPassword: m.SealedPassword, DigestAlgorithm: alg}
	if cur != nil {
		rec.CreatedAt = cur.rec.CreatedAt
		rec.CredentialsResetAt = cur.rec.CredentialsResetAt
		// What the device answered stays, unless it is set to MD5: the
		// operator's way back for a phone replaced by one without SHA-256.
		rec.Sha256Answered = cur.rec.Sha256Answered && alg != sipauth.MD5
		if !setCreds {
			rec.Ha1Md5, rec.Ha1Sha256, rec.SealedPassword = cur.rec.Ha1Md5, cur.rec.Ha1Sha256, cur.rec.SealedPassword
		}
		if len(m.ProvisioningKey) == 0 {
			rec.ProvisioningKey = cur.rec.ProvisioningKey
		}
	}
	v, err := putRecord(t.ctx, a.store(), deviceKey(a.id, m.Device), rec, cur.ver())
	if err != nil {
		return &actorpb.DeviceReply{Error: storeFailed(t, err, "device "+m.Device)}
	}
	a.devices[m.Device] = &versioned[*actorpb.Device]{rec: rec, version: v}
	if cur == nil || cur.rec.Group != m.Group {
		if cur != nil {
			a.leave(cur.rec.Group, m.Device)
			a.sys.notify(KindDeviceGroup, deviceGroupIdentity(a.id, cur.rec.Group), &actorpb.GroupChanged{Removed: []string{m.Device}})
		}
		a.join(m.Group, m.Device)
		a.sys.notify(KindDeviceGroup, deviceGroupIdentity(a.id, m.Group), &actorpb.GroupChanged{Added: []string{m.Device}})
	}
	return &actorpb.DeviceReply{Device: redactDevice(rec), Version: v, Created: cur == nil}
}

func (a *account) deleteDevice(t *turn, m *actorpb.DeleteDevice) proto.Message {
	cur := a.devices[m.Device] // handle checked that it exists
	if e := ifMatch(m.IfMatch, cur.version, "device "+m.Device); e != nil {
		return &actorpb.DeviceReply{Error: e}
	}
	if err := a.store().Delete(t.ctx, deviceKey(a.id, m.Device), cur.version); err != nil {
		return &actorpb.DeviceReply{Error: storeFailed(t, err, "device "+m.Device)}
	}
	delete(a.devices, m.Device)
	a.leave(cur.rec.Group, m.Device)
	a.sys.notify(KindDeviceGroup, deviceGroupIdentity(a.id, cur.rec.Group), &actorpb.GroupChanged{Removed: []string{m.Device}})
	return &actorpb.DeviceReply{Device: redactDevice(cur.rec), Version: cur.version}
}

// listDevices pages the account's devices in id order from the store's
// key order (scanIDs): a page costs O(limit), or at most maxListScan
// records with a group filter.
func (a *account) listDevices(t *turn, m *actorpb.ListDevices) proto.Message {
	if m.Group != "" {
		if _, ok := a.groups[m.Group]; !ok {
			return &actorpb.DeviceListReply{Error: notFound("group", "group %q not found in account %q", m.Group, a.id)}
		}
	}
	ids, next, e := pageOf(t, a, "device", a.devices, devicePrefix(a.id), m.After, uint32(pageSize(m.Limit, defaultPageSize, maxPageSize)), func(d *versioned[*actorpb.Device]) bool {
		return m.Group == "" || d.rec.Group == m.Group
	})
	out := &actorpb.DeviceListReply{Error: e, NextAfter: next}
	for _, id := range ids {
		d := a.devices[id]
		out.Devices = append(out.Devices, &actorpb.DeviceReply{Device: redactDevice(d.rec), Version: d.version})
	}
	return out
}

// listGroups pages the account's groups like listDevices; without a
// limit it answers them all.
func (a *account) listGroups(t *turn, m *actorpb.ListGroups) proto.Message {
	ids, next, e := pageOf(t, a, "group", a.groups, groupPrefix(a.id), m.After, m.Limit, nil)
	out := &actorpb.GroupListReply{Error: e, NextAfter: next}
	for _, id := range ids {
		g := a.groups[id]
		out.Groups = append(out.Groups, &actorpb.GroupReply{Group: g.rec, Version: g.version})
	}
	return out
}

// pageOf pages the account's records of one kind (what), held in recs and
// under prefix in the store, that keep (nil: every one) accepts: a page
// of at most limit ids after after (scanIDs), or, without a limit, every
// id in order.
func pageOf[V any](t *turn, a *account, what string, recs map[string]V, prefix, after string, limit uint32, keep func(V) bool) (ids []string, next string, e *actorpb.Error) {
	if limit == 0 {
		return sortedKeys(recs), "", nil
	}
	if after != "" && !ValidID(after) {
		return nil, "", invalid("after", "after must be the id of the last %s of the previous page, not %q", what, after)
	}
	ids, next, err := scanIDs(t.ctx, a.store(), prefix, after, pageSize(limit, defaultPageSize, maxPageSize), func(id string) bool {
		r, ok := recs[id]
		return ok && (keep == nil || keep(r))
	})
	if err != nil {
		return nil, "", unavailable("listing the %ss of account %q: %v", what, a.id, err)
	}
	return ids, next, nil
}

// dropGroupState deletes what group's devicegroup actor stored: its state
// record and the bindings records of devices that left it while it was
// not active (an active one deletes a leaving device's record itself).
func (a *account) dropGroupState(ctx context.Context, group string) error {
	if err := deleteAll(ctx, a.store(), deviceBindingsPrefix(a.id, group), true); err != nil {
		return err
	}
	if err := a.store().Delete(ctx, deviceGroupKey(a.id, group), persistence.AnyVersion); err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return err
	}
	return nil
}

// choosePool is tier 1 of the two-tier balancing: it sets rec's assigned
// pool by the prescribed conditions (placement.ChoosePool), keeping the
// current one while it still meets them, and reports whether it changed.
// The pool figures are read once per turn (t.pools), however many groups
// the turn checks.
func (a *account) choosePool(t *turn, group string, rec *actorpb.Group) bool {
	if a.sys.cfg.Pools == nil {
		// No pool figures (one node, no cluster): the pinned pool or "default".
		name := cmp.Or(rec.Pool, "default")
		if name == rec.AssignedPool {
			return false
		}
		rec.AssignedPool, rec.PoolReason = name, "no cluster pool figures: the pinned pool, else default"
		rec.PoolAssignedAt = timestamppb.New(a.sys.cfg.Clock.Now())
		return true
	}
	if !t.poolsRead {
		t.pools, t.poolsErr = a.sys.cfg.Pools.PoolStates(t.ctx)
		t.poolsRead = true
	}
	if t.poolsErr != nil {
		a.sys.log.Warn("tier 1: pool figures unavailable; the group keeps its pool", "account", a.id, "group", group, "err", t.poolsErr)
		return false
	}
	dec, err := placement.ChoosePool(placement.GroupSpec{
		ID: group, Size: len(a.byGroup[group]), Pinned: rec.Pool, Labels: rec.Labels, Current: rec.AssignedPool,
	}, t.pools)
	if err != nil {
		a.sys.log.Warn("tier 1: no pool meets the group's conditions; it keeps its pool", "account", a.id, "group", group, "err", err)
		return false
	}
	if dec.Pool == rec.AssignedPool {
		return false
	}
	if rec.AssignedPool != "" {
		a.sys.log.Info("tier 1: group moves pool", "account", a.id, "group", group, "from", rec.AssignedPool, "to", dec.Pool, "reason", dec.Reason)
	}
	rec.AssignedPool, rec.PoolReason, rec.PoolAssignedAt = dec.Pool, dec.Reason, timestamppb.New(a.sys.cfg.Clock.Now())
	return true
}

// assignPool re-checks a stored group's pool and persists a change.
func (a *account) assignPool(t *turn, g *versioned[*actorpb.Group]) {
	rec := proto.Clone(g.rec).(*actorpb.Group)
	if !a.choosePool(t, rec.Id, rec) {
		return
	}
	v, err := putRecord(t.ctx, a.store(), groupKey(a.id, rec.Id), rec, g.version)
	if err != nil {
		a.sys.log.Warn("tier 1: storing the group's new pool failed", "account", a.id, "group", rec.Id, "err", err)
		t.reload = true
		return
	}
	g.rec, g.version = rec, v
	a.edgeChanged(EdgeChange{Account: a.id, Level: true})
}

// members lists the ids of group's devices, sorted.
func (a *account) members(group string) []string { return sortedKeys(a.byGroup[group]) }

// join and leave keep byGroup current.
func (a *account) join(group, device string) {
	if a.byGroup[group] == nil {
		a.byGroup[group] = map[string]struct{}{}
	}
	a.byGroup[group][device] = struct{}{}
}

func (a *account) leave(group, device string) {
	delete(a.byGroup[group], device)
	if len(a.byGroup[group]) == 0 {
		delete(a.byGroup, group)
	}
}

// putRecord encodes rec deterministically and writes it at key if the
// key's version is expect.
func putRecord(ctx context.Context, s persistence.Store, key string, rec proto.Message, expect uint64) (uint64, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return 0, err
	}
	return s.Put(ctx, key, b, expect)
}

// debug shows the account with its first debugListLimit groups and
// devices by id (scanIDs: no sort of every id) and their counts.
func (a *account) debug(ctx context.Context) proto.Message {
	st := &actorpb.AccountDebug{}
	if a.acct == nil {
		return st
	}
	st.Account, st.Version = a.acct.rec, a.acct.version
	st.GroupCount, st.DeviceCount = uint32(len(a.groups)), uint32(len(a.devices))
	groups, _, err := scanIDs(ctx, a.store(), groupPrefix(a.id), "", debugListLimit, func(id string) bool { return a.groups[id] != nil })
	if err != nil {
		a.sys.log.Warn("debug view: listing groups failed", "account", a.id, "err", err)
	}
	for _, id := range groups {
		st.Groups = append(st.Groups, a.groups[id].rec)
	}
	devices, _, err := scanIDs(ctx, a.store(), devicePrefix(a.id), "", debugListLimit, func(id string) bool { return a.devices[id] != nil })
	if err != nil {
		a.sys.log.Warn("debug view: listing devices failed", "account", a.id, "err", err)
	}
	for _, id := range devices {
		st.Devices = append(st.Devices, redactDevice(a.devices[id].rec))
	}
	return st
}

// redactDevice returns a copy of d without credentials.
func redactDevice(d *actorpb.Device) *actorpb.Device {
	c := proto.Clone(d).(*actorpb.Device)
	c.Ha1Md5, c.Ha1Sha256, c.SealedPassword = nil, nil, nil
	return c
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// resetCredentials gives a device a new random secret (fraud containment,
// asked by the account's messaging supervisor): new HA1s derived from 32
// a random password that is never stored in clear nor shown, so that the
// old password fails at the next digest check anywhere (the edge reads
// HA1s from GetSecretEdgeView on every request). The password is sealed to the
// device's provisioning key: its rightful user, who holds the
// provisioning secret, gets it from the provisioning document.
func (a *account) resetCredentials(t *turn, m *actorpb.ResetDeviceCredentials) proto.Message {
	cur := a.devices[m.Device] // handle checked that it exists
	password, err := provisioning.NewPassword(a.sys.cfg.Random)
	if err != nil {
		return &actorpb.DeviceReply{Error: unavailable("drawing a new secret failed: %v", err)}
	}
	h := credential.Derive(m.Device, a.acct.rec.DnsName, password)
	rec := proto.Clone(cur.rec).(*actorpb.Device)
	rec.Ha1Md5, rec.Ha1Sha256, rec.SealedPassword = h.MD5, h.SHA256, nil
	if len(rec.ProvisioningKey) > 0 {
		// Only the holder of the provisioning secret (the real phone)
		// reads the new password, from its provisioning document.
		if rec.SealedPassword, err = provisioning.Seal(a.sys.cfg.Random, rec.ProvisioningKey, password); err != nil {
			return &actorpb.DeviceReply{Error: unavailable("sealing the new password failed: %v", err)}
		}
	}
	rec.UpdatedAt = timestamppb.New(a.sys.cfg.Clock.Now())
	rec.CredentialsResetAt = rec.UpdatedAt
	v, err := putRecord(t.ctx, a.store(), deviceKey(a.id, m.Device), rec, cur.version)
	if err != nil {
		return &actorpb.DeviceReply{Error: storeFailed(t, err, "device "+m.Device)}
	}
	a.devices[m.Device] = &versioned[*actorpb.Device]{rec: rec, version: v}
	a.sys.log.Info("device credentials reset", "account", a.id, "device", m.Device, "incident", m.Incident)
	return &actorpb.DeviceReply{Device: redactDevice(rec), Version: v}
}

// digestAnswered records that a device authenticated with SHA-256, once:
// from then on it is challenged with SHA-256 alone (sipauth.Offer). The
// write does not touch updated_at, which tells when the configuration
// changed.
func (a *account) digestAnswered(t *turn, m *actorpb.DigestAnswered) proto.Message {
	cur := a.devices[m.Device] // handle checked that it exists
	if m.Algorithm != sipauth.SHA256 || cur.rec.Sha256Answered {
		return &actorpb.DeviceReply{Device: redactDevice(cur.rec), Version: cur.version}
	}
	rec := proto.Clone(cur.rec).(*actorpb.Device)
	rec.Sha256Answered = true
	v, err := putRecord(t.ctx, a.store(), deviceKey(a.id, m.Device), rec, cur.version)
	if err != nil {
		return &actorpb.DeviceReply{Error: storeFailed(t, err, "device "+m.Device)}
	}
	a.devices[m.Device] = &versioned[*actorpb.Device]{rec: rec, version: v}
	return &actorpb.DeviceReply{Device: redactDevice(rec), Version: v}
}
