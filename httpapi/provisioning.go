package httpapi

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/credential"
)

// ---- wire shapes ----

type accountIn struct {
	DisplayName string `json:"display_name"`
	// DigestAlgorithm is what the account's devices are challenged with
	// when they name none: "MD5" (default, "") or "SHA-256".
	DigestAlgorithm string `json:"digest_algorithm"`
	// StrictMinExpires answers a too-short REGISTER with 423 instead of
	// raising its expiry to the minimum.
	StrictMinExpires bool `json:"strict_min_expires"`
	// SIPTrustedSources are CIDR prefixes (an SBC, a site's NAT) exempt
	// from the SIP edge's per-source flood limit; they share the limit of
	// all trusted sources instead.
	SIPTrustedSources []string `json:"sip_trusted_sources"`
}

type accountOut struct {
	ID          string     `json:"id"`
	DisplayName string     `json:"display_name,omitempty"`
	DNSName     string     `json:"dns_name"`
	Realm       string     `json:"realm"`
	Version     uint64     `json:"version"`
	Groups      uint32     `json:"groups"`
	Devices     uint32     `json:"devices"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
	// DigestAlgorithm is the account's setting ("" for the default, MD5).
	DigestAlgorithm  string `json:"digest_algorithm,omitempty"`
	StrictMinExpires bool   `json:"strict_min_expires"`
	// SIPTrustedSources are the account's declared trusted SIP sources,
	// canonical (masked, sorted).
	SIPTrustedSources []string `json:"sip_trusted_sources,omitempty"`
}

type groupIn struct {
	DisplayName string            `json:"display_name"`
	Pool        string            `json:"pool"`
	Labels      map[string]string `json:"labels"`
}

type groupOut struct {
	ID          string            `json:"id"`
	Account     string            `json:"account"`
	DisplayName string            `json:"display_name,omitempty"`
	Pool        string            `json:"pool,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// AssignedPool and PoolReason are tier 1's choice for the group and
	// why; empty until the group's first placement.
	AssignedPool   string     `json:"assigned_pool,omitempty"`
	PoolReason     string     `json:"pool_reason,omitempty"`
	PoolAssignedAt *time.Time `json:"pool_assigned_at,omitempty"`
	Version        uint64     `json:"version"`
	Members        []string   `json:"members,omitempty"`
	CreatedAt      *time.Time `json:"created_at,omitempty"`
	UpdatedAt      *time.Time `json:"updated_at,omitempty"`
}

type deviceIn struct {
	Group string `json:"group"`
	// Password is optional when updating a device: absent keeps its
	// current credentials.
	Password    *string `json:"password"`
	DisplayName string  `json:"display_name"`
	// DigestAlgorithm is what the device is challenged with: "" (its
	// history, then the account's setting), "MD5" or "SHA-256".
	DigestAlgorithm string `json:"digest_algorithm"`
}

// deviceOut never carries a password or a hash.
type deviceOut struct {
	ID          string     `json:"id"`
	Account     string     `json:"account"`
	Group       string     `json:"group"`
	DisplayName string     `json:"display_name,omitempty"`
	Username    string     `json:"username"`
	Realm       string     `json:"realm"`
	Version     uint64     `json:"version"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
	// DigestAlgorithm is the device's setting; SHA256Answered says it has
	// answered SHA-256, so it is challenged with SHA-256 alone.
	DigestAlgorithm string `json:"digest_algorithm,omitempty"`
	SHA256Answered  bool   `json:"sha256_answered,omitempty"`
	// ProvisioningSecret is shown once, in the reply of the PUT that drew
	// it (the device's first password): the phone's key to its
	// provisioning document, GET /provision/{account}/{device}.
	ProvisioningSecret string `json:"provisioning_secret,omitempty"`
}

func ts(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime().UTC()
	return &v
}

func (s *server) realm(account string) string { return account + "." + s.cfg.Zone }

func toAccountOut(r *actorpb.AccountReply) accountOut {
	a := r.Account
	return accountOut{
		ID: a.Id, DisplayName: a.DisplayName, DNSName: a.DnsName, Realm: a.DnsName, Version: r.Version,
		Groups: r.GroupCount, Devices: r.DeviceCount, CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt),
		DigestAlgorithm: a.DigestAlgorithm, StrictMinExpires: a.StrictMinExpires, SIPTrustedSources: a.SipTrustedSources,
	}
}

func toGroupOut(account string, g *actorpb.Group, version uint64, members []string) groupOut {
	return groupOut{
		ID: g.Id, Account: account, DisplayName: g.DisplayName, Pool: g.Pool, Labels: g.Labels,
		AssignedPool: g.AssignedPool, PoolReason: g.PoolReason, PoolAssignedAt: ts(g.PoolAssignedAt),
		Version: version, Members: members, CreatedAt: ts(g.CreatedAt), UpdatedAt: ts(g.UpdatedAt),
	}
}

func (s *server) toDeviceOut(account string, d *actorpb.Device, version uint64) deviceOut {
	return deviceOut{
		ID: d.Id, Account: account, Group: d.Group, DisplayName: d.DisplayName, Username: d.Id,
		Realm: s.realm(account), Version: version, CreatedAt: ts(d.CreatedAt), UpdatedAt: ts(d.UpdatedAt),
		DigestAlgorithm: d.DigestAlgorithm, SHA256Answered: d.Sha256Answered,
	}
}

// askAs sends msg to an actor and returns its reply as T, or writes the
// failure.
func askAs[T proto.Message](s *server, w http.ResponseWriter, r *http.Request, kind, id string, msg proto.Message) (T, bool) {
	var zero T
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	rep, err := s.cfg.Actors.Request(ctx, kind, id, msg)
	if err != nil {
		s.log.Warn("actor request failed", "kind", kind, "id", id, "err", err)
		unavailable(w, fmt.Sprintf("%s %s did not answer; retry: %v", kind, id, err))
		return zero, false
	}
	t, ok := rep.(T)
	if !ok {
		s.log.Error("actor replied with an unexpected type", "kind", kind, "id", id, "type", fmt.Sprintf("%T", rep))
		writeError(w, http.StatusInternalServerError, "", "internal error")
		return zero, false
	}
	return t, true
}

// errorReply is an actor reply that may carry an error.
type errorReply interface {
	proto.Message
	GetError() *actorpb.Error
}

// versionedReply is an actor reply that carries an error, or a record at
// a version.
type versionedReply interface {
	errorReply
	GetVersion() uint64
}

// answer asks (kind, id) with msg and writes the reply: the actor's error,
// or out(reply) with its version as ETag (none for version 0: no record
// yet), 201 when the reply says the record was created, else 200.
func answer[T versionedReply](s *server, w http.ResponseWriter, r *http.Request, kind, id string, msg proto.Message, out func(T) any) {
	rep, ok := askAs[T](s, w, r, kind, id, msg)
	if !ok || replyError(w, rep.GetError()) {
		return
	}
	if v := rep.GetVersion(); v != 0 {
		setETag(w, v)
	}
	code := http.StatusOK
	if c, ok := any(rep).(interface{ GetCreated() bool }); ok && c.GetCreated() {
		code = http.StatusCreated
	}
	writeJSON(w, code, out(rep))
}

// pathIDs validates the named path values as ids: accounts ("a") and
// features ("f") by checkLabelID, the others by checkID.
func pathIDs(w http.ResponseWriter, r *http.Request, names ...string) ([]string, bool) {
	out := make([]string, len(names))
	fields := map[string]string{"a": "account", "g": "group", "d": "device", "t": "trunk", "f": "feature"}
	for i, n := range names {
		out[i] = r.PathValue(n)
		var fe *fieldError
		if n == "a" || n == "f" {
			fe = checkLabelID(r, fields[n], out[i])
		} else {
			fe = checkID(fields[n], out[i])
		}
		if badInput(w, fe) {
			return nil, false
		}
	}
	return out, true
}

// ---- accounts ----

func (s *server) putAccount(w http.ResponseWriter, r *http.Request) {
	var in accountIn
	ids, ok := s.pathBody(w, r, &in, "a")
	if !ok {
		return
	}
	alg, algBad := checkDigestAlgorithm(in.DigestAlgorithm)
	trusted, trustedBad := checkTrustedSources(in.SIPTrustedSources)
	im, imBad := ifMatch(r)
	if badInput(w, cmp.Or(checkDisplayName(in.DisplayName), algBad, trustedBad, imBad)) {
		return
	}
	answer(s, w, r, actors.KindAccount, ids[0], &actorpb.PutAccount{DisplayName: in.DisplayName, IfMatch: im,
		DigestAlgorithm: alg, StrictMinExpires: in.StrictMinExpires, SipTrustedSources: trusted},
		func(rep *actorpb.AccountReply) any { return toAccountOut(rep) })
}

func (s *server) getAccount(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	if !ok {
		return
	}
	answer(s, w, r, actors.KindAccount, ids[0], &actorpb.GetAccount{}, func(rep *actorpb.AccountReply) any { return toAccountOut(rep) })
}

func (s *server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	s.remove(w, r, actors.KindAccount, []string{"a"}, func(_ []string, im *uint64) proto.Message { return &actorpb.DeleteAccount{IfMatch: im} })
}

// remove carries out a DELETE: the path ids are validated, If-Match is
// honoured, the actor (kind, first path id) is asked with msg, and 204
// answers success.
func (s *server) remove(w http.ResponseWriter, r *http.Request, kind string, names []string, msg func(ids []string, im *uint64) proto.Message) {
	ids, ok := pathIDs(w, r, names...)
	im, fe := ifMatch(r)
	if !ok || badInput(w, fe) {
		return
	}
	rep, ok := askAs[errorReply](s, w, r, kind, ids[0], msg(ids, im))
	if !ok || replyError(w, rep.GetError()) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- groups ----

func (s *server) listGroups(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	after, limit, fe := parseIDPage(r.URL.Query())
	if !ok || badInput(w, fe) {
		return
	}
	rep, ok := askAs[*actorpb.GroupListReply](s, w, r, actors.KindAccount, ids[0], &actorpb.ListGroups{After: after, Limit: limit})
	if !ok || replyError(w, rep.Error) {
		return
	}
	out := each(rep.Groups, func(g *actorpb.GroupReply) groupOut { return toGroupOut(ids[0], g.Group, g.Version, nil) })
	writeJSON(w, http.StatusOK, pageBody(map[string]any{"groups": out}, rep.NextAfter))
}

func (s *server) putGroup(w http.ResponseWriter, r *http.Request) {
	var in groupIn
	ids, ok := s.pathBody(w, r, &in, "a", "g")
	if !ok {
		return
	}
	im, imBad := ifMatch(r)
	if badInput(w, cmp.Or(checkDisplayName(in.DisplayName), checkOptionalID("pool", in.Pool), checkLabels(in.Labels), imBad)) {
		return
	}
	g := &actorpb.Group{Id: ids[1], DisplayName: in.DisplayName, Pool: in.Pool, Labels: in.Labels}
	answer(s, w, r, actors.KindAccount, ids[0], &actorpb.PutGroup{Group: g, IfMatch: im},
		func(rep *actorpb.GroupReply) any { return toGroupOut(ids[0], rep.Group, rep.Version, nil) })
}

// getGroup asks the devicegroup actor, which holds the group's members.
func (s *server) getGroup(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a", "g")
	if !ok {
		return
	}
	rep, ok := askAs[*actorpb.GroupView](s, w, r, actors.KindDeviceGroup, ids[0]+"/"+ids[1], &actorpb.GetGroupView{})
	if !ok || replyError(w, rep.Error) {
		return
	}
	setETag(w, rep.Version)
	members := append([]string{}, rep.Members...)
	writeJSON(w, http.StatusOK, struct {
		groupOut
		Members []string `json:"members"`
	}{toGroupOut(ids[0], rep.Group, rep.Version, members), members})
}

func (s *server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	s.remove(w, r, actors.KindAccount, []string{"a", "g"}, func(ids []string, im *uint64) proto.Message {
		return &actorpb.DeleteGroup{Group: ids[1], IfMatch: im}
	})
}

// ---- devices ----

func (s *server) putDevice(w http.ResponseWriter, r *http.Request) {
	var in deviceIn
	ids, ok := s.pathBody(w, r, &in, "a", "d")
	if !ok {
		return
	}
	groupBad := checkID("group", in.Group)
	if in.Group == "" {
		groupBad = badField("group", "group is required: the device group this device belongs to")
	}
	alg, algBad := checkDigestAlgorithm(in.DigestAlgorithm)
	im, imBad := ifMatch(r)
	if badInput(w, cmp.Or(groupBad, checkDisplayName(in.DisplayName), algBad, imBad)) {
		return
	}
	msg := &actorpb.PutDevice{Device: ids[1], Group: in.Group, DisplayName: in.DisplayName, IfMatch: im, DigestAlgorithm: alg}
	secret := ""
	if in.Password != nil {
		if err := credential.CheckPassword(*in.Password); err != nil {
			badInput(w, badField("password", "%s", err.Error()))
			return
		}
		h := credential.Derive(ids[1], s.realm(ids[0]), *in.Password)
		msg.Ha1Md5, msg.Ha1Sha256 = h.MD5, h.SHA256
		// Sealed for the device's provisioning document (provision.go).
		if secret, ok = s.sealForDevice(w, r, ids[0], msg, *in.Password); !ok {
			return
		}
	}
	answer(s, w, r, actors.KindAccount, ids[0], msg, func(rep *actorpb.DeviceReply) any {
		out := s.toDeviceOut(ids[0], rep.Device, rep.Version)
		out.ProvisioningSecret = secret
		return out
	})
}

func (s *server) getDevice(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a", "d")
	if !ok {
		return
	}
	answer(s, w, r, actors.KindAccount, ids[0], &actorpb.GetDevice{Device: ids[1]},
		func(rep *actorpb.DeviceReply) any { return s.toDeviceOut(ids[0], rep.Device, rep.Version) })
}

func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	s.remove(w, r, actors.KindAccount, []string{"a", "d"}, func(ids []string, im *uint64) proto.Message {
		return &actorpb.DeleteDevice{Device: ids[1], IfMatch: im}
	})
}

func (s *server) listDevices(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	q := r.URL.Query()
	msg := &actorpb.ListDevices{Group: q.Get("group")}
	var fe *fieldError
	msg.After, msg.Limit, fe = parseIDPage(q)
	if !ok || badInput(w, cmp.Or(checkOptionalID("group", msg.Group), fe)) {
		return
	}
	rep, ok := askAs[*actorpb.DeviceListReply](s, w, r, actors.KindAccount, ids[0], msg)
	if !ok || replyError(w, rep.Error) {
		return
	}
	out := each(rep.Devices, func(d *actorpb.DeviceReply) deviceOut { return s.toDeviceOut(ids[0], d.Device, d.Version) })
	writeJSON(w, http.StatusOK, pageBody(map[string]any{"devices": out}, rep.NextAfter))
}
