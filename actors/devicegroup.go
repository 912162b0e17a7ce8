package actors

import (
	"context"
	"errors"
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
// owns itself (DeviceGroupState) it persists under dgrp/.
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
	return g.loadState(ctx)
}

// loadState reads the group's own state, creating it on first activation.
func (g *deviceGroup) loadState(ctx context.Context) error {
	s := g.sys.cfg.Store
	key := deviceGroupKey(g.account, g.group)
	it, err := s.Get(ctx, key)
	if errors.Is(err, persistence.ErrNotFound) {
		st := &actorpb.DeviceGroupState{Account: g.account, Group: g.group, FirstActivatedAt: timestamppb.New(g.sys.cfg.Clock.Now())}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(st)
		if err != nil {
			return err
		}
		v, err := s.Put(ctx, key, b, persistence.MustNotExist)
		if err != nil {
			return err
		}
		g.state, g.stateVersion = st, v
		return nil
	}
	if err != nil {
		return err
	}
	st := &actorpb.DeviceGroupState{}
	if err := proto.Unmarshal(it.Value, st); err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	g.state, g.stateVersion = st, it.Version
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
	}
	return errorReply(msg, invalid("", "devicegroup actor does not handle %T", msg))
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
}

func (g *deviceGroup) view() *actorpb.GroupView {
	return &actorpb.GroupView{Group: g.cfg, Version: g.cfgVersion, Members: g.members, State: g.state}
}

func (g *deviceGroup) debug() proto.Message { return g.view() }
