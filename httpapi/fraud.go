package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// Fraud policies and incidents (issue 10 sections 4 and 6), answered by
// the account's messaging supervisor (actors.KindMessaging). A policy is
// a fraud.Policy in JSON; the supervisor validates it with package
// fraud, so that a bad threshold gets a 400 naming its JSON path.

// askPolicy asks the account's messaging supervisor msg(group, device)
// about the policy of the route's level, group and device ("" when the
// route is the account's), and writes its error if any. A device's group
// is looked up, for its effective policy and for validating the merge.
func (s *server) askPolicy(w http.ResponseWriter, r *http.Request, names []string, msg func(group, device string) proto.Message) (*actorpb.FraudPolicyReply, bool) {
	ids, ok := pathIDs(w, r, names...)
	if !ok {
		return nil, false
	}
	var group, device string
	switch names[len(names)-1] {
	case "g":
		group = ids[1]
		rep, ok := askAs[*actorpb.GroupReply](s, w, r, actors.KindAccount, ids[0], &actorpb.DescribeGroup{Group: group})
		if !ok || replyError(w, rep.Error) {
			return nil, false
		}
	case "d":
		device = ids[1]
		rep, ok := askAs[*actorpb.DeviceReply](s, w, r, actors.KindAccount, ids[0], &actorpb.GetDevice{Device: device})
		if !ok || replyError(w, rep.Error) {
			return nil, false
		}
		group = rep.Device.Group
	}
	rep, ok := askAs[*actorpb.FraudPolicyReply](s, w, r, actors.KindMessaging, ids[0], msg(group, device))
	return rep, ok && !replyError(w, rep.Error)
}

func (s *server) putFraudPolicy(names ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := pathIDs(w, r, names...); !ok {
			return
		}
		raw, fe := s.readJSONObject(w, r)
		if fe == nil {
			fe = fromActor(actors.ValidateFraudPolicy(raw))
		}
		if badInput(w, fe) {
			return
		}
		if rep, ok := s.askPolicy(w, r, names, func(group, device string) proto.Message {
			return &actorpb.PutFraudPolicy{Group: group, Device: device, PolicyJson: raw}
		}); ok {
			writeRawJSON(w, http.StatusOK, rep.PolicyJson)
		}
	}
}

func (s *server) deleteFraudPolicy(names ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.askPolicy(w, r, names, func(group, device string) proto.Message {
			return &actorpb.PutFraudPolicy{Group: group, Device: device}
		}); ok {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// getFraudPolicy answers the level's own policy, or with ?effective=true
// the merged one (defaults, account, group, device) that applies.
func (s *server) getFraudPolicy(names ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		effective := false
		if v := r.URL.Query().Get("effective"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				badInput(w, badField("effective", "effective must be true or false"))
				return
			}
			effective = b
		}
		if rep, ok := s.askPolicy(w, r, names, func(group, device string) proto.Message {
			return &actorpb.GetFraudPolicy{Group: group, Device: device, Effective: effective}
		}); ok {
			writeRawJSON(w, http.StatusOK, rep.PolicyJson)
		}
	}
}

// readJSONObject reads a body that must be one JSON object, within the
// body limit, and returns it compacted.
func (s *server) readJSONObject(w http.ResponseWriter, r *http.Request) ([]byte, *fieldError) {
	raw, fe := s.readBody(w, r)
	if fe != nil {
		return nil, fe
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, badField("body", "the fraud policy must be one JSON object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, badField("body", "malformed JSON: %v", err)
	}
	return out.Bytes(), nil
}

func writeRawJSON(w http.ResponseWriter, code int, raw []byte) {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		out.Reset()
		out.Write(raw)
	}
	out.WriteByte('\n')
	writeBody(w, code, out.Bytes())
}

// listIncidents answers GET /v1/accounts/{a}/fraud/incidents
// [?state=open|resolved][&limit=N][&after=ID], by id (oldest first).
func (s *server) listIncidents(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	if !ok {
		return
	}
	q := r.URL.Query()
	msg := &actorpb.ListIncidents{State: q.Get("state"), After: q.Get("after")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			badInput(w, badField("limit", "limit must be a positive integer"))
			return
		}
		msg.Limit = uint32(n)
	}
	if badInput(w, checkOptionalID("after", msg.After)) {
		return
	}
	rep, ok := askAs[*actorpb.IncidentListReply](s, w, r, actors.KindMessaging, ids[0], msg)
	if !ok || replyError(w, rep.Error) {
		return
	}
	body := map[string]any{"incidents": each(rep.Incidents, actors.IncidentView)}
	if rep.Next != "" {
		body["next"] = rep.Next
	}
	writeJSON(w, http.StatusOK, body)
}

// incident answers a request msg(id) to the account's supervisor about
// one of its incidents: GetIncident shows it, ResolveIncident lifts its
// blocks and its sender's suspension. Another account's incident is not
// found there (404).
func (s *server) incident(msg func(id string) proto.Message) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ids, ok := pathIDs(w, r, "a")
		id := r.PathValue("id")
		if !ok || badInput(w, checkID("incident", id)) {
			return
		}
		rep, ok := askAs[*actorpb.IncidentReply](s, w, r, actors.KindMessaging, ids[0], msg(id))
		if !ok || replyError(w, rep.Error) {
			return
		}
		writeJSON(w, http.StatusOK, actors.IncidentView(rep.Incident))
	}
}
