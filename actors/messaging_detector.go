package actors

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/fraud"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// This file is the one seam between the messaging supervisor and package
// fraud, the pure detector: policies (decode, validate, merge, store),
// senders' state and their histories. The supervisor decides nothing about
// indicators itself.

// policyLevels are the stored policies (fraud.Policy JSON) that apply to
// one sender, nil where a level has none.
type policyLevels struct {
	account, group, device []byte
}

// decodePolicy reads a policy level strictly (unknown fields refused).
func decodePolicy(b []byte) (fraud.Policy, *actorpb.Error) {
	var p fraud.Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&p)
	if err == nil && dec.More() {
		err = errors.New("the policy must be one JSON object")
	}
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &te) && te.Field != "":
		return p, invalid(te.Field, "%s must be a JSON %s, not %s", te.Field, te.Type.Kind(), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return p, invalid(f, "unknown field %q in the fraud policy", f)
	}
	return p, invalid("policy", "the fraud policy is not valid JSON: %v", err)
}

// policyError turns fraud's validation error into one naming the field.
func policyError(err error) *actorpb.Error {
	if err == nil {
		return nil
	}
	var fe *fraud.FieldError
	if errors.As(err, &fe) {
		return invalid(fe.Field, "%s", fe.Error())
	}
	return invalid("policy", "%v", err)
}

// ValidateFraudPolicy checks one level's fraud policy (fraud.Policy JSON)
// on its own, as the supervisor does before storing it, so that the HTTP
// API refuses bad input before it reaches an actor. The supervisor also
// validates the merge with the levels above, which only it holds.
func ValidateFraudPolicy(b []byte) *actorpb.Error {
	p, e := decodePolicy(b)
	if e != nil {
		return e
	}
	return policyError(p.Validate())
}

// policyLevel names the level of a PutFraudPolicy or GetFraudPolicy: the
// device's when device is set, else the group's, else the account's.
func policyLevel(group, device string) (string, *actorpb.Error) {
	switch {
	case device != "":
		if !ValidID(device) {
			return "", invalid("device", "%q is not a valid device id", device)
		}
		return "dev/" + device, nil
	case group != "":
		if !ValidID(group) {
			return "", invalid("group", "%q is not a valid group id", group)
		}
		return "grp/" + group, nil
	}
	return "account", nil
}

// putPolicy stores one level's policy (an empty one removes it) after
// the detector validated it; merged policies are computed anew.
func (m *messaging) putPolicy(t *turn, r *actorpb.PutFraudPolicy) proto.Message {
	level, e := policyLevel(r.Group, r.Device)
	if e != nil {
		return &actorpb.FraudPolicyReply{Error: e}
	}
	cur, ok := m.policies[level]
	key := fraudPolicyKey(m.id, level)
	if len(r.PolicyJson) == 0 {
		if ok {
			if err := m.store().Delete(t.ctx, key, cur.version); err != nil {
				return &actorpb.FraudPolicyReply{Error: storeFailed(t, err, "fraud policy")}
			}
			delete(m.policies, level)
		}
		clear(m.eff)
		return &actorpb.FraudPolicyReply{}
	}
	if e := ValidateFraudPolicy(r.PolicyJson); e != nil {
		return &actorpb.FraudPolicyReply{Error: e}
	}
	// The merged policy too: a layer's critical under an inherited
	// warning is refused (for a device, with its group's layer when the
	// caller names the group).
	l := m.levelsFor(r.Group, r.Device)
	switch {
	case r.Device != "":
		l.device = r.PolicyJson
	case r.Group != "":
		l.group = r.PolicyJson
	default:
		l.account = r.PolicyJson
	}
	if _, err := mergePolicy(l); err != nil {
		return &actorpb.FraudPolicyReply{Error: policyError(err)}
	}
	v, err := m.store().Put(t.ctx, key, r.PolicyJson, cur.version)
	if err != nil {
		return &actorpb.FraudPolicyReply{Error: storeFailed(t, err, "fraud policy")}
	}
	m.policies[level] = storedPolicy{raw: r.PolicyJson, version: v}
	clear(m.eff)
	return &actorpb.FraudPolicyReply{PolicyJson: r.PolicyJson}
}

// getPolicy answers one level's own policy, or with effective the merged
// one that applies to a sender of that group and device.
func (m *messaging) getPolicy(r *actorpb.GetFraudPolicy) proto.Message {
	level, e := policyLevel(r.Group, r.Device)
	if e != nil {
		return &actorpb.FraudPolicyReply{Error: e}
	}
	if r.Effective {
		if r.Group != "" && !ValidID(r.Group) {
			return &actorpb.FraudPolicyReply{Error: invalid("group", "%q is not a valid group id", r.Group)}
		}
		p, err := m.policyFor(r.Group, r.Device)
		if err != nil {
			return &actorpb.FraudPolicyReply{Error: unavailable("merging the fraud policy: %v", err)}
		}
		b, err := p.json()
		if err != nil {
			return &actorpb.FraudPolicyReply{Error: unavailable("encoding the fraud policy: %v", err)}
		}
		return &actorpb.FraudPolicyReply{PolicyJson: b}
	}
	cur, ok := m.policies[level]
	if !ok {
		return &actorpb.FraudPolicyReply{Error: notFound("policy", "no fraud policy is set at this level; ?effective=true shows the one that applies")}
	}
	return &actorpb.FraudPolicyReply{PolicyJson: cur.raw}
}

// mergedPolicy is fraud.Merge's result and the layers it came from.
type mergedPolicy struct {
	p      fraud.Policy
	layers []fraud.Policy
	names  []string
}

// mergePolicy merges the defaults and the levels, and validates the
// result (a layer's critical under an inherited warning is refused).
func mergePolicy(l policyLevels) (*mergedPolicy, error) {
	out := &mergedPolicy{}
	for i, b := range [][]byte{l.account, l.group, l.device} {
		if b == nil {
			continue
		}
		p, e := decodePolicy(b)
		if e != nil {
			return nil, errors.New(e.Message)
		}
		out.layers = append(out.layers, p)
		out.names = append(out.names, []string{"account", "group", "device"}[i])
	}
	out.p = fraud.Merge(out.layers...)
	if err := out.p.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *mergedPolicy) json() ([]byte, error) { return json.Marshal(p.p) }

// safe tells a destination on the safe list: never refused or blocked.
func (p *mergedPolicy) safe(dest string) bool { return p.p.SafeListed(dest) }

// levelOf names the layer whose threshold fired ("default" when none of
// the account's layers sets it).
func (p *mergedPolicy) levelOf(indicator string, l fraud.Level) string {
	if i := fraud.Origin("indicators."+indicator+"."+l.String(), p.layers...); i >= 0 {
		return p.names[i]
	}
	return "default"
}

// throttleRetryAfter is the Retry-After of a throttled request.
const throttleRetryAfter = 10 * time.Second

// fraudEvent builds the detector's view of a request.
func fraudEvent(account string, c *actorpb.CheckMessage, now time.Time) fraud.Event {
	ev := fraud.Event{
		Kind: fraud.KindMessage, Account: account, Group: c.Group, Device: c.Device,
		Destination: c.Destination, Internal: c.Internal, Network: fraud.NetworkOf(c.Source),
		UserAgent: c.UserAgent, Time: now,
	}
	if c.Kind == "call" {
		ev.Kind = fraud.KindCall
	}
	if len(c.BodyHash) >= 8 {
		ev.BodyHash = binary.BigEndian.Uint64(c.BodyHash[:8])
	}
	return ev
}

// ---- histories ----

// history is a persisted fraud.History: a device's (or trunk's), a
// group's or the account's, shared by the account's senders.
type history struct {
	key   string
	h     *fraud.History
	dirty bool
}

// historyKey names the history of a sender ("dev.<d>", "trunk.<t>"), a
// group ("grp.<g>") or the account ("account").
func groupHistoryKey(group string) string { return "grp." + group }

const accountHistoryKey = "account"

// historyFor returns a history, reading it from the store on first use
// by this activation.
func (m *messaging) historyFor(ctx context.Context, key string, p *mergedPolicy) (*history, error) {
	if h, ok := m.histories[key]; ok {
		return h, nil
	}
	retention := 28
	if r := p.p.History.RetentionDays; r != nil {
		retention = *r
	}
	h := &history{key: key, h: fraud.NewHistory(retention)}
	it, err := m.store().Get(ctx, fraudHistoryKey(m.id, key))
	switch {
	case err == nil:
		if err := h.h.UnmarshalBinary(it.Value); err != nil {
			m.sys.log.Warn("a fraud history could not be decoded; it starts anew", "account", m.id, "history", key, "err", err)
			h.h = fraud.NewHistory(retention)
		}
	case !errors.Is(err, persistence.ErrNotFound):
		return nil, err
	}
	m.histories[key] = h
	return h, nil
}

// storeHistory writes a history that changed.
func (m *messaging) storeHistory(ctx context.Context, h *history) {
	if !h.dirty {
		return
	}
	b, err := h.h.MarshalBinary()
	if err == nil {
		_, err = m.store().Put(ctx, fraudHistoryKey(m.id, h.key), b, persistence.AnyVersion)
	}
	if err != nil {
		m.sys.log.Warn("storing a fraud history failed; retried at the next fold or passivation", "account", m.id, "history", h.key, "err", err)
		return
	}
	h.dirty = false
}

// folded stores the histories of a sender whose hour just folded into
// them: at most once an hour per sender (bounded writes).
func (m *messaging) folded(ctx context.Context, s *sender) {
	for _, h := range s.hist {
		if h != nil {
			h.dirty = true
			m.storeHistory(ctx, h)
		}
	}
}
