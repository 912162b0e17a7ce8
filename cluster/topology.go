package cluster

import (
	"maps"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cespare/xxhash/v2"

	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

// Well-known actor names on every member.
const (
	directoryName = "switchboard-directory"
	activatorName = "switchboard-activator"
)

// topology is one view of the members that own and host activations: the
// members protoactor's MemberList reports, in id order.
type topology struct {
	hash  uint64
	ids   []string
	addrs map[string]string // member id -> actor address
}

func newTopology(addrs map[string]string) topology {
	ids := slices.Sorted(maps.Keys(addrs))
	return topology{hash: xxhash.Sum64String(strings.Join(ids, "\x00")), ids: ids, addrs: addrs}
}

func (t topology) has(id string) bool {
	_, ok := t.addrs[id]
	return ok
}

// owner is the directory owner of (kind, identity): its rendezvous owner.
func (t topology) owner(kind, identity string) string {
	return placement.Owner(entryKey(kind, identity), t.ids)
}

func (t topology) directory(member string) *actor.PID {
	return actor.NewPID(t.addrs[member], directoryName)
}

func (t topology) activator(member string) *actor.PID {
	return actor.NewPID(t.addrs[member], activatorName)
}

// memberAt returns the id of the member at an actor address.
func (t topology) memberAt(addr string) (string, bool) {
	for id, a := range t.addrs {
		if a == addr {
			return id, true
		}
	}
	return "", false
}

// entryKey is an identity's directory key: placement.Key, the one rule.
func entryKey(kind, identity string) string { return placement.Key(kind, identity) }

func toRef(pid *actor.PID) *clusterpb.Ref {
	if pid == nil {
		return nil
	}
	return &clusterpb.Ref{Address: pid.Address, Id: pid.Id}
}

func fromRef(r *clusterpb.Ref) *actor.PID {
	if r == nil || r.Id == "" {
		return nil
	}
	return actor.NewPID(r.Address, r.Id)
}

func samePID(a, b *actor.PID) bool {
	return a != nil && b != nil && a.Address == b.Address && a.Id == b.Id
}

func sameRef(a, b *clusterpb.Ref) bool {
	return a.GetId() != "" && b.GetId() != "" && a.Address == b.Address && a.Id == b.Id
}
