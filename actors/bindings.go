package actors

import (
	"cmp"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// This file is the registrar's decision (RFC 3261 section 10.3, steps 6
// to 8) as pure functions of the stored bindings, the request and the
// time; the devicegroup actor stores what they return. It passes one
// device's bindings (its record), so a decision costs that device's
// bindings, not the group's.

// MaxBindingsPerDevice bounds the contacts one device may have registered.
const MaxBindingsPerDevice = 10

// ApplyRegister returns the bindings after the REGISTER m at now, expired
// bindings purged and the rest sorted as SortBindings does, or an error
// and nothing changed. The caller has checked that m.Device belongs to the
// group.
//
// For each contact: expires 0 removes the device's binding of that URI,
// expires > 0 adds or refreshes it; remove_all ("Contact: *") removes all
// of the device's bindings. A binding of the same Call-ID whose CSeq is not
// lower than the request's refuses the whole request (step 7: a replayed or
// reordered REGISTER must not undo a newer one).
func ApplyRegister(bindings []*actorpb.Binding, m *actorpb.Register, now time.Time) ([]*actorpb.Binding, *actorpb.Error) {
	if m.CallId == "" {
		return nil, invalid("call_id", "a REGISTER needs its Call-ID")
	}
	if m.RemoveAll && len(m.Contacts) > 0 {
		return nil, invalid("contacts", "remove_all (Contact: *) goes alone, without contacts")
	}
	live := LiveBindings(bindings, "", now)
	// Step 7, against the bindings as they were before this request.
	current := map[string]*actorpb.Binding{}
	for _, b := range live {
		if b.Device == m.Device {
			current[b.Contact] = b
		}
	}
	if i := slices.IndexFunc(m.Contacts, func(c *actorpb.ContactUpdate) bool { return c.GetUri() == "" }); i >= 0 {
		return nil, invalid("contacts", "contacts[%d] has no URI", i)
	}
	for _, b := range current {
		touched := m.RemoveAll || slices.ContainsFunc(m.Contacts, func(c *actorpb.ContactUpdate) bool { return c.Uri == b.Contact })
		if touched && b.CallId == m.CallId && b.Cseq >= m.Cseq {
			return nil, conflict("cseq", "contact %q was updated by CSeq %d of this Call-ID; CSeq %d is a replayed or out-of-order REGISTER (RFC 3261 section 10.3 step 7)", b.Contact, b.Cseq, m.Cseq)
		}
	}
	out := live
	if m.RemoveAll {
		out = slices.DeleteFunc(out, func(b *actorpb.Binding) bool { return b.Device == m.Device })
	}
	at := timestamppb.New(now)
	for _, c := range m.Contacts {
		out = slices.DeleteFunc(out, func(b *actorpb.Binding) bool { return b.Device == m.Device && b.Contact == c.Uri })
		if c.Expires == 0 {
			continue
		}
		out = append(out, &actorpb.Binding{
			Device: m.Device, Contact: c.Uri, Source: m.Source, CallId: m.CallId, Cseq: m.Cseq,
			ExpiresAt: timestamppb.New(now.Add(time.Duration(c.Expires) * time.Second)), UpdatedAt: at,
			QMilli: c.QMilli, EdgeNode: m.EdgeNode, UserAgent: m.UserAgent,
		})
	}
	n := 0
	for _, b := range out {
		if b.Device == m.Device {
			n++
		}
	}
	if n > MaxBindingsPerDevice {
		return nil, invalid("contacts", "device %q would have %d registered contacts; at most %d", m.Device, n, MaxBindingsPerDevice)
	}
	SortBindings(out)
	return out, nil
}

// LiveBindings returns a new slice of the bindings of device ("" for every
// device) that have not expired at now, sorted as SortBindings does.
func LiveBindings(bindings []*actorpb.Binding, device string, now time.Time) []*actorpb.Binding {
	var out []*actorpb.Binding
	for _, b := range bindings {
		if (device == "" || b.Device == device) && b.ExpiresAt.AsTime().After(now) {
			out = append(out, b)
		}
	}
	SortBindings(out)
	return out
}

// SortBindings orders bindings most recently updated first, then by
// device and contact, so that every reader sees one stable order.
func SortBindings(bs []*actorpb.Binding) {
	slices.SortStableFunc(bs, func(a, b *actorpb.Binding) int {
		return cmp.Or(b.UpdatedAt.AsTime().Compare(a.UpdatedAt.AsTime()), compareBindingKeys(a, b))
	})
}

// sameBindings reports whether a and b hold the same bindings in order.
func sameBindings(a, b []*actorpb.Binding) bool {
	return slices.EqualFunc(a, b, func(x, y *actorpb.Binding) bool { return proto.Equal(x, y) })
}
