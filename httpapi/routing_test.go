package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
)

// actor sends msg straight to an actor (as the SIP edge does) and returns
// the reply as T.
func actor[T proto.Message](f *fixture, kind, id string, msg proto.Message) T {
	f.t.Helper()
	rep, err := f.sys.Request(context.Background(), kind, id, msg)
	if err != nil {
		f.t.Fatalf("%s %s %T: %v", kind, id, msg, err)
	}
	out, ok := rep.(T)
	if !ok {
		f.t.Fatalf("%s %s %T: reply %T", kind, id, msg, rep)
	}
	return out
}

const voicemail = `{"targets":[{"address":"127.0.0.1:5090","priority":1,"weight":1,"transport":"udp"}]}`

func TestTrunks_RoundTripAndIfMatch(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	r := f.must(201, "PUT", "/v1/accounts/acme/trunks/pstn", `{"sources":["192.0.2.1","198.51.100.0/24"],"group":"hq"}`)
	etag := r.header.Get("ETag")
	if got := r.json(t); fmt.Sprint(got["sources"]) != "[192.0.2.1/32 198.51.100.0/24]" || got["group"] != "hq" || got["account"] != "acme" || etag == "" {
		t.Fatalf("created trunk: %s (ETag %q)", r.body, etag)
	}
	upd := f.do("PUT", "/v1/accounts/acme/trunks/pstn", `{"sources":["2001:db8::/32"]}`, "If-Match", etag)
	if upd.code != 200 || upd.header.Get("ETag") == etag {
		t.Fatalf("conditional update: %d %s", upd.code, upd.body)
	}
	if c := f.do("PUT", "/v1/accounts/acme/trunks/pstn", `{"sources":["192.0.2.9"]}`, "If-Match", etag); c.code != 409 || c.json(t)["field"] != "version" {
		t.Fatalf("stale If-Match: %d %s", c.code, c.body)
	}
	g := f.must(200, "GET", "/v1/accounts/acme/trunks/pstn", "")
	if g.header.Get("ETag") != upd.header.Get("ETag") || fmt.Sprint(g.json(t)["sources"]) != "[2001:db8::/32]" {
		t.Fatalf("get: %s", g.body)
	}
	f.must(201, "PUT", "/v1/accounts/acme/trunks/carrier", `{"sources":["203.0.113.5"]}`)
	l := f.must(200, "GET", "/v1/accounts/acme/trunks", "").json(t)
	if ts, _ := l["trunks"].([]any); len(ts) != 2 || ts[0].(map[string]any)["id"] != "carrier" {
		t.Fatalf("list: %v", l)
	}
	if d := f.do("DELETE", "/v1/accounts/acme/trunks/pstn", "", "If-Match", etag); d.code != 409 {
		t.Fatalf("delete with a stale ETag: %d", d.code)
	}
	f.must(204, "DELETE", "/v1/accounts/acme/trunks/pstn", "")
	if r := f.do("GET", "/v1/accounts/acme/trunks/pstn", ""); r.code != 404 || r.json(t)["field"] != "trunk" {
		t.Fatalf("deleted trunk: %d %s", r.code, r.body)
	}
}

func TestRoutesAndFeatureServers_RoundTrip(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	empty := f.must(200, "GET", "/v1/accounts/acme/routes", "")
	if routes, _ := empty.json(t)["routes"].([]any); len(routes) != 0 || empty.header.Get("ETag") != "" {
		t.Fatalf("routes never set: %s (ETag %q)", empty.body, empty.header.Get("ETag"))
	}
	fs := f.must(201, "PUT", "/v1/feature-servers/voicemail", `{"targets":[{"address":"127.0.0.1:5090","priority":1,"weight":1},{"address":"[::1]:5091","transport":"tcp"}]}`)
	fsm := fs.json(t)
	targets := fsm["targets"].([]any)
	if len(targets) != 2 || targets[0].(map[string]any)["transport"] != "udp" || fsm["id"] != "voicemail" {
		t.Fatalf("created feature server: %s", fs.body)
	}
	fsTag := fs.header.Get("ETag")
	f.must(200, "GET", "/v1/feature-servers/voicemail", "")
	if r := f.do("PUT", "/v1/feature-servers/voicemail", voicemail, "If-Match", fsTag); r.code != 200 {
		t.Fatalf("conditional update: %d %s", r.code, r.body)
	}
	if r := f.do("PUT", "/v1/feature-servers/voicemail", voicemail, "If-Match", fsTag); r.code != 409 {
		t.Fatalf("stale If-Match: %d %s", r.code, r.body)
	}
	d := f.must(200, "GET", "/debug/actors/featureserver/voicemail", "").json(t)
	if st := d["state"].(map[string]any); st["id"] != "voicemail" || len(st["targets"].([]any)) != 1 {
		t.Fatalf("debug state: %v", d)
	}

	put := f.must(200, "PUT", "/v1/accounts/acme/routes", `{"routes":[{"method":"INVITE","user":"*97","feature":"voicemail"},{"method":"*","user":"9*","feature":"voicemail"}]}`)
	got := f.must(200, "GET", "/v1/accounts/acme/routes", "")
	if got.header.Get("ETag") != put.header.Get("ETag") || got.body != put.body {
		t.Fatalf("routes read back: %s (ETag %s), want %s (ETag %s)", got.body, got.header.Get("ETag"), put.body, put.header.Get("ETag"))
	}
	if rs := got.json(t)["routes"].([]any); len(rs) != 2 || rs[0].(map[string]any)["user"] != "*97" {
		t.Fatalf("routes: %s", got.body)
	}
	if r := f.do("PUT", "/v1/accounts/acme/routes", `{"routes":[]}`, "If-Match", `"1"`); r.code != 409 {
		t.Fatalf("stale If-Match on routes: %d %s", r.code, r.body)
	}
	f.must(200, "PUT", "/v1/accounts/acme/routes", `{"routes":[]}`)

	f.must(204, "DELETE", "/v1/feature-servers/voicemail", "")
	if r := f.do("GET", "/v1/feature-servers/voicemail", ""); r.code != 404 || r.json(t)["field"] != "feature" {
		t.Fatalf("deleted feature server: %d %s", r.code, r.body)
	}
	f.must(404, "DELETE", "/v1/feature-servers/voicemail", "")
}

// Every bad request about trunks, routes and feature servers gets a 4xx
// naming the field at fault and changes nothing.
func TestRouting_BadInputChangesNothing(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	f.must(201, "PUT", "/v1/feature-servers/voicemail", voicemail)
	f.must(201, "PUT", "/v1/accounts/acme/trunks/pstn", `{"sources":["192.0.2.1"]}`)
	f.must(200, "PUT", "/v1/accounts/acme/routes", `{"routes":[{"method":"INVITE","user":"*97","feature":"voicemail"}]}`)
	snapshot := func() string {
		return f.must(200, "GET", "/v1/accounts/acme/trunks", "").body +
			f.must(200, "GET", "/v1/accounts/acme/routes", "").body +
			f.must(200, "GET", "/v1/feature-servers/voicemail", "").body +
			f.do("GET", "/v1/feature-servers/conf", "").body
	}
	before := snapshot()
	route := func(method, user, feature string) string {
		return fmt.Sprintf(`{"routes":[{"method":"INVITE","user":"*97","feature":"voicemail"},{"method":%q,"user":%q,"feature":%q}]}`, method, user, feature)
	}
	target := func(addr string, prio, weight int, tr string) string {
		return fmt.Sprintf(`{"targets":[{"address":%q,"priority":%d,"weight":%d,"transport":%q}]}`, addr, prio, weight, tr)
	}
	tooManySources := `{"sources":["10.0.0.1"` + strings.Repeat(`,"10.0.0.1"`, actors.MaxTrunkSources) + `]}`
	tooManyRoutes := `{"routes":[{"method":"*","user":"*","feature":"voicemail"}` + strings.Repeat(`,{"method":"*","user":"*","feature":"voicemail"}`, actors.MaxRoutes) + `]}`
	tooManyTargets := `{"targets":[{"address":"192.0.2.1:1"}`
	for i := 2; i <= actors.MaxFeatureTargets+1; i++ {
		tooManyTargets += fmt.Sprintf(`,{"address":"192.0.2.1:%d"}`, i)
	}
	tooManyTargets += `]}`
	const trunk, routes, fsrv = "/v1/accounts/acme/trunks/pstn", "/v1/accounts/acme/routes", "/v1/feature-servers/conf"
	f.expectBad(t, []badRequest{
		{"trunk: bad id", "PUT", "/v1/accounts/acme/trunks/PSTN", `{"sources":["192.0.2.1"]}`, nil, 400, "trunk"},
		{"trunk: no sources", "PUT", trunk, `{}`, nil, 400, "sources"},
		{"trunk: too many sources", "PUT", trunk, tooManySources, nil, 400, "sources"},
		{"trunk: host name", "PUT", trunk, `{"sources":["192.0.2.1","carrier.example"]}`, nil, 400, "sources[1]"},
		{"trunk: prefix too long", "PUT", trunk, `{"sources":["192.0.2.0/40"]}`, nil, 400, "sources[0]"},
		{"trunk: sources not a list", "PUT", trunk, `{"sources":"192.0.2.1"}`, nil, 400, "sources"},
		{"trunk: bad group id", "PUT", trunk, `{"sources":["192.0.2.1"],"group":"H Q"}`, nil, 400, "group"},
		{"trunk: unknown group", "PUT", trunk, `{"sources":["192.0.2.1"],"group":"sales"}`, nil, 400, "group"},
		{"trunk: unknown field", "PUT", trunk, `{"sources":["192.0.2.1"],"trusted":true}`, nil, 400, "trusted"},
		{"trunk: stale If-Match", "PUT", trunk, `{"sources":["192.0.2.2"]}`, []string{"If-Match", `"999999"`}, 409, "version"},
		{"trunk: unknown account", "PUT", "/v1/accounts/nobody/trunks/pstn", `{"sources":["192.0.2.1"]}`, nil, 404, "account"},
		{"trunk: unknown trunk", "GET", "/v1/accounts/acme/trunks/nope", "", nil, 404, "trunk"},
		{"routes: missing", "PUT", routes, `{}`, nil, 400, "routes"},
		{"routes: too many", "PUT", routes, tooManyRoutes, nil, 400, "routes"},
		{"routes: lower-case method", "PUT", routes, route("invite", "*", "voicemail"), nil, 400, "routes[1].method"},
		{"routes: empty method", "PUT", routes, route("", "*", "voicemail"), nil, 400, "routes[1].method"},
		{"routes: bad user", "PUT", routes, route("INVITE", "a b", "voicemail"), nil, 400, "routes[1].user"},
		{"routes: empty user", "PUT", routes, route("INVITE", "", "voicemail"), nil, 400, "routes[1].user"},
		{"routes: user too long", "PUT", routes, route("INVITE", strings.Repeat("9", 65), "voicemail"), nil, 400, "routes[1].user"},
		{"routes: bad feature id", "PUT", routes, route("INVITE", "*98", "Voice Mail"), nil, 400, "routes[1].feature"},
		{"routes: feature server missing", "PUT", routes, route("INVITE", "*98", "conf"), nil, 400, "routes[1].feature"},
		{"routes: unknown field", "PUT", routes, `{"routes":[{"method":"INVITE","user":"*","feature":"voicemail","q":1}]}`, nil, 400, "q"},
		{"routes: stale If-Match", "PUT", routes, route("INVITE", "*98", "voicemail"), []string{"If-Match", `"999999"`}, 409, "version"},
		{"routes: unknown account", "PUT", "/v1/accounts/nobody/routes", `{"routes":[]}`, nil, 404, "account"},
		{"feature: bad id", "PUT", "/v1/feature-servers/Conf", voicemail, nil, 400, "feature"},
		{"feature: no targets", "PUT", fsrv, `{"targets":[]}`, nil, 400, "targets"},
		{"feature: too many targets", "PUT", fsrv, tooManyTargets, nil, 400, "targets"},
		{"feature: host name", "PUT", fsrv, target("conf.example:5060", 1, 1, "udp"), nil, 400, "targets[0].address"},
		{"feature: no port", "PUT", fsrv, target("192.0.2.1", 1, 1, "udp"), nil, 400, "targets[0].address"},
		{"feature: port 0", "PUT", fsrv, target("192.0.2.1:0", 1, 1, "udp"), nil, 400, "targets[0].address"},
		{"feature: negative priority", "PUT", fsrv, target("192.0.2.1:5060", -1, 1, "udp"), nil, 400, "targets[0].priority"},
		{"feature: weight too big", "PUT", fsrv, target("192.0.2.1:5060", 1, 65536, "udp"), nil, 400, "targets[0].weight"},
		{"feature: bad transport", "PUT", fsrv, target("192.0.2.1:5060", 1, 1, "ws"), nil, 400, "targets[0].transport"},
		{"feature: duplicate target", "PUT", fsrv, `{"targets":[{"address":"192.0.2.1:5060"},{"address":"192.0.2.1:5060","transport":"udp"}]}`, nil, 400, "targets[1].address"},
		{"feature: unknown field", "PUT", fsrv, `{"targets":[{"address":"192.0.2.1:5060","host":"x"}]}`, nil, 400, "host"},
		{"feature: stale If-Match", "PUT", "/v1/feature-servers/voicemail", voicemail, []string{"If-Match", `"999999"`}, 409, "version"},
		{"feature: unknown", "GET", fsrv, "", nil, 404, "feature"},
		{"bindings: unknown group", "GET", "/v1/accounts/acme/groups/sales/bindings", "", nil, 404, "group"},
	})
	if after := snapshot(); after != before {
		t.Fatalf("bad requests changed state:\nbefore %s\nafter  %s", before, after)
	}
}

// GET .../bindings lists the group's live registrations (RFC 3261 section
// 10.3) with the seconds left, on the same clock as the registrar.
func TestBindings_ListedWithExpiresIn(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	f := newFixtureOn(t, "", clk)
	f.seed()
	reg := &actorpb.Register{
		Device: "alice", CallId: "c1", Cseq: 1, Source: "udp:192.0.2.7:5060", EdgeNode: "n1", UserAgent: "phone/1",
		Contacts: []*actorpb.ContactUpdate{{Uri: "sip:alice@192.0.2.7", Expires: 120, QMilli: 1000}},
	}
	if r := actor[*actorpb.RegisterReply](f, actors.KindDeviceGroup, "acme/hq", reg); r.Error != nil {
		t.Fatal(r.Error)
	}
	clk.Advance(20 * time.Second)
	l := f.must(200, "GET", "/v1/accounts/acme/groups/hq/bindings", "").json(t)
	bs := l["bindings"].([]any)
	if len(bs) != 1 {
		t.Fatalf("bindings: %v", l)
	}
	b := bs[0].(map[string]any)
	want := map[string]any{
		"device": "alice", "contact": "sip:alice@192.0.2.7", "source": "udp:192.0.2.7:5060", "edge_node": "n1",
		"user_agent": "phone/1", "expires_in": 100.0, "expires_at": "2026-01-02T03:06:05Z",
	}
	for k, v := range want {
		if b[k] != v {
			t.Fatalf("%s = %v, want %v (%v)", k, b[k], v, b)
		}
	}
	clk.Advance(100 * time.Second)
	if bs := f.must(200, "GET", "/v1/accounts/acme/groups/hq/bindings", "").json(t)["bindings"].([]any); len(bs) != 0 {
		t.Fatalf("expired binding listed: %v", bs)
	}
}

// The SIP edge's fields of a call record show in GET /v1/calls/{id}.
func TestCalls_SIPFieldsShown(t *testing.T) {
	f := newFixture(t, "")
	rec := &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "*97", EdgeNode: "n1", Route: "voicemail"}
	actor[*actorpb.CallReply](f, actors.KindCall, "sipcall1", &actorpb.StartCall{Call: rec})
	c := f.must(200, "GET", "/v1/calls/sipcall1", "").json(t)
	if c["edge_node"] != "n1" || c["route"] != "voicemail" {
		t.Fatalf("started: %v", c)
	}
	for _, k := range []string{"target", "answered_at", "status", "ended_by"} {
		if _, ok := c[k]; ok {
			t.Fatalf("%s shown before it was set: %v", k, c)
		}
	}
	actor[*actorpb.CallReply](f, actors.KindCall, "sipcall1", &actorpb.AnswerCall{Target: "127.0.0.1:5090"})
	actor[*actorpb.CallReply](f, actors.KindCall, "sipcall1", &actorpb.EndCall{Disposition: "completed", Status: 200, EndedBy: "caller"})
	c = f.must(200, "GET", "/v1/calls/sipcall1", "").json(t)
	if c["target"] != "127.0.0.1:5090" || c["status"] != 200.0 || c["ended_by"] != "caller" || c["answered_at"] == nil || c["state"] != "ended" {
		t.Fatalf("ended: %v", c)
	}
}

// The account's edge view carries the HA1s (the SIP edge needs them); no
// HTTP reply, device or debug, ever does.
func TestEdgeView_HA1sNeverLeaveOverHTTP(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	f.must(201, "PUT", "/v1/accounts/acme/trunks/pstn", `{"sources":["192.0.2.1"],"group":"hq"}`)
	v := actor[*actorpb.SecretEdgeView](f, actors.KindAccount, "acme", &actorpb.GetSecretEdgeView{Device: "alice"})
	if len(v.Device.GetHa1Md5()) != 16 || len(v.Device.GetHa1Sha256()) != 32 {
		t.Fatalf("the edge view lacks the HA1s: %v", v.Device)
	}
	var secrets []string
	for _, h := range [][]byte{v.Device.Ha1Md5, v.Device.Ha1Sha256} {
		secrets = append(secrets, hex.EncodeToString(h), base64.StdEncoding.EncodeToString(h), base64.RawURLEncoding.EncodeToString(h))
	}
	for _, p := range []string{
		"/v1/accounts/acme/devices/alice", "/v1/accounts/acme/devices", "/v1/accounts/acme/trunks",
		"/debug/actors", "/debug/actors?scope=cluster", "/debug/actors/account/acme", "/debug/actors/devicegroup/acme/hq",
	} {
		body := f.must(200, "GET", p, "").body
		for _, s := range append(secrets, "ha1") {
			if strings.Contains(strings.ToLower(body), strings.ToLower(s)) {
				t.Fatalf("GET %s leaked %q: %s", p, s, body)
			}
		}
	}
}
