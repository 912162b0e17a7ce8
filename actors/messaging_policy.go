package actors

import (
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

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
	cur := m.policies[level]
	key := fraudPolicyKey(m.id, level)
	if len(r.PolicyJson) == 0 {
		if cur != nil {
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
	expect := persistence.MustNotExist
	if cur != nil {
		expect = cur.version
	}
	v, err := m.store().Put(t.ctx, key, r.PolicyJson, expect)
	if err != nil {
		return &actorpb.FraudPolicyReply{Error: storeFailed(t, err, "fraud policy")}
	}
	m.policies[level] = &storedPolicy{raw: r.PolicyJson, version: v}
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
