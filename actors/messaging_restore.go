package actors

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/fraud"
)

// Notifier sends the check-sync NOTIFY (Event: check-sync) that makes a
// phone re-fetch its provisioning document, to each binding, and tells
// how many answered 2xx. It is called off the actor's mailbox; it may
// take seconds (*sipedge.Edge.CheckSync).
type Notifier interface {
	CheckSync(ctx context.Context, account string, bindings []*actorpb.Binding) int
}

// knownGood keeps the bindings the rightful phone may hold: never one in
// a network the attack came from (attack), and, once the device's history
// knows any source, only those whose source network it knew before the
// incident (an hour with an incident is never learned into a history,
// package fraud, so the attacker's sources are not among them). A device
// with no history yet has only the first rule.
func knownGood(h *fraud.History, attack []string, bindings []*actorpb.Binding) []*actorpb.Binding {
	var out []*actorpb.Binding
	for _, b := range bindings {
		net := fraud.NetworkOf(b.Source)
		if slices.Contains(attack, net) {
			continue
		}
		if h != nil && h.KnownSources() > 0 {
			if known, _ := h.KnowsSource(net, b.UserAgent); !known {
				continue
			}
		}
		out = append(out, b)
	}
	return out
}

// restore gives the rightful user of an incident's device service back
// (action d): after the credentials were reset, a check-sync NOTIFY to
// the removed bindings whose source the history knew before the incident.
// The phone re-fetches its provisioning document, which only its
// provisioning secret opens, and registers with the new password; the
// attacker, who had only the SIP password, stays out.
// It returns how many bindings it notifies.
func (m *messaging) restore(t *turn, inc *versioned[*actorpb.Incident]) (ok bool, detail string, notified int) {
	r := inc.rec
	if r.CredentialsResetAt == nil {
		return false, "the credentials were not reset: nothing to restore", 0
	}
	h, err := m.deviceHistory(t.ctx, r.Device)
	if err != nil {
		return false, "the device's history could not be read: " + err.Error(), 0
	}
	good := knownGood(h, r.AttackNetworks, r.RemovedBindings)
	m.checkSync(r.Device, good)
	return true, fmt.Sprintf("check-sync NOTIFY to %d of %d removed bindings (sources known before the incident)", len(good), len(r.RemovedBindings)), len(good)
}

// deviceHistory is the fraud history of a device, from memory or the store.
func (m *messaging) deviceHistory(ctx context.Context, device string) (*fraud.History, error) {
	key := senderKey(device, "")
	if s, ok := m.senders[key]; ok && s.hist[0] != nil {
		return s.hist[0].h, nil
	}
	p, err := m.policyFor("", device)
	if err != nil {
		return nil, err
	}
	h, err := m.historyFor(ctx, key, p)
	if err != nil {
		return nil, err
	}
	return h.h, nil
}

// checkSync hands the NOTIFYs to the Notifier off the mailbox.
func (m *messaging) checkSync(device string, bindings []*actorpb.Binding) {
	n := m.sys.cfg.Notifier
	if n == nil || len(bindings) == 0 {
		return
	}
	sys, account := m.sys, m.id
	sys.background.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ok := n.CheckSync(ctx, account, bindings)
		sys.log.Info("check-sync NOTIFY sent for a restore", "account", account, "device", device, "bindings", len(bindings), "answered", ok)
	})
}

// restoreDevice is the restore path by hand (POST .../devices/{d}/restore):
// reset the device's credentials, remove its bindings, and send the
// check-sync NOTIFY to those whose source its history knew.
func (m *messaging) restoreDevice(t *turn, r *actorpb.RestoreDevice) proto.Message {
	res, err := m.sys.Request(t.ctx, KindAccount, m.id, &actorpb.GetDevice{Device: r.Device})
	dr, ok := res.(*actorpb.DeviceReply)
	switch {
	case err != nil || !ok:
		return &actorpb.RestoreReply{Error: unavailable("account %s did not answer; retry", m.id)}
	case dr.Error != nil:
		return &actorpb.RestoreReply{Error: dr.Error}
	}
	now := m.sys.cfg.Clock.Now()
	inc := &versioned[*actorpb.Incident]{rec: &actorpb.Incident{
		Id: fmt.Sprintf("restore-%d", now.UnixMilli()), Account: m.id, Device: r.Device, Group: dr.Device.Group,
	}}
	ok, detail := m.resetCredentials(t, inc, now)
	m.audit(t.ctx, inc.rec, "reset_credentials", ok, "by hand: "+detail)
	if !ok {
		return &actorpb.RestoreReply{Error: unavailable("resetting the credentials failed: %s", detail)}
	}
	ok, detail, good := m.restore(t, inc)
	m.audit(t.ctx, inc.rec, "restore", ok, "by hand: "+detail)
	m.event(t.ctx, "fraud.action", r.Device, map[string]any{"action": "restore", "ok": ok, "detail": detail, "by_hand": true})
	return &actorpb.RestoreReply{CredentialsResetAt: timestamppb.New(now), BindingsRemoved: uint32(len(inc.rec.RemovedBindings)),
		BindingsNotified: uint32(good), Detail: detail}
}
