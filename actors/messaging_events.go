package actors

import (
	"context"
	"encoding/json"
	"time"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// EventSink receives the messaging supervisor's events for its account's
// stream: fraud.incident.opened, fraud.action, fraud.incident.resolved and
// fraud.warning. user is the device the event is about ("" for none);
// data is a JSON object. Implementations are safe for concurrent use.
type EventSink interface {
	AppendEvent(ctx context.Context, account, typ, user string, data []byte) error
}

// event appends one event when Config.Events is set. A failure is logged
// and does not undo what happened: the audit log (stored before) is the
// record.
func (m *messaging) event(ctx context.Context, typ, user string, data any) {
	sink := m.sys.cfg.Events
	if sink == nil {
		return
	}
	b, err := json.Marshal(data)
	if err == nil {
		err = sink.AppendEvent(ctx, m.id, typ, user, b)
	}
	if err != nil {
		m.sys.log.Warn("appending a fraud event failed", "account", m.id, "type", typ, "err", err)
	}
}

// IncidentJSON is an incident as the HTTP API and events show it.
type IncidentJSON struct {
	ID                  string     `json:"id"`
	Account             string     `json:"account"`
	Device              string     `json:"device,omitempty"`
	Trunk               string     `json:"trunk,omitempty"`
	Group               string     `json:"group,omitempty"`
	Indicator           string     `json:"indicator"`
	Value               float64    `json:"value"`
	Threshold           float64    `json:"threshold"`
	PolicyLevel         string     `json:"policy_level"`
	Actions             []string   `json:"actions"`
	BlockedDestinations []string   `json:"blocked_destinations,omitempty"`
	MessagesContained   uint32     `json:"messages_contained"`
	Node                string     `json:"node,omitempty"`
	State               string     `json:"state"`
	Monitor             bool       `json:"monitor"`
	OpenedAt            *time.Time `json:"opened_at,omitempty"`
	ResolvedAt          *time.Time `json:"resolved_at,omitempty"`
	BlocksExpireAt      *time.Time `json:"blocks_expire_at,omitempty"`
	CredentialsResetAt  *time.Time `json:"credentials_reset_at,omitempty"`
}

// IncidentView is the JSON shape of an incident, shared by the HTTP API
// and the events, so that the two never differ.
func IncidentView(i *actorpb.Incident) IncidentJSON {
	return IncidentJSON{
		ID: i.Id, Account: i.Account, Device: i.Device, Trunk: i.Trunk, Group: i.Group,
		Indicator: i.Indicator, Value: i.Value, Threshold: i.Threshold, PolicyLevel: i.PolicyLevel,
		Actions: append([]string{}, i.Actions...), BlockedDestinations: i.BlockedDestinations,
		MessagesContained: i.MessagesContained, Node: i.Node, State: i.State, Monitor: i.Monitor,
		OpenedAt: tsJSON(i.OpenedAt), ResolvedAt: tsJSON(i.ResolvedAt), BlocksExpireAt: tsJSON(i.BlocksExpireAt),
		CredentialsResetAt: tsJSON(i.CredentialsResetAt),
	}
}
