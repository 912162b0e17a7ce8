package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/internal/leaktest"
	"github.com/switchboard-pbx/switchboard/persistence"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

type fixture struct {
	t      *testing.T
	srv    *httptest.Server
	token  string
	health *atomic.Value
	// sys is the actor system behind the API, for what has no HTTP route
	// (the SIP edge's messages).
	sys *actors.System
	// store is sys's store, for records no route can write.
	store persistence.Store
	// api is the handler under test.
	api *server
	// drains counts Config.Drain calls.
	drains *atomic.Int32
}

func newFixture(t *testing.T, token string) *fixture {
	t.Helper()
	return newFixtureOn(t, token, clock.Real{})
}

// newFixtureOn is newFixture with the actors and the API on clk.
func newFixtureOn(t *testing.T, token string, clk clock.Clock) *fixture {
	t.Helper()
	return newFixtureWith(t, token, clk, nil)
}

// newFixtureWith is newFixtureOn with the actors' Config changed by mod.
func newFixtureWith(t *testing.T, token string, clk clock.Clock, mod func(*actors.Config)) *fixture {
	t.Helper()
	store := persistence.NewMemory()
	acfg := actors.Config{Store: store, Zone: "sip.test", Clock: clk}
	if mod != nil {
		mod(&acfg)
	}
	sys, err := actors.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Close() })
	reg := prometheus.NewRegistry()
	health := &atomic.Value{}
	health.Store("serving")
	drains := &atomic.Int32{}
	h, err := New(Config{
		Actors: sys, Zone: "sip.test", Node: "n1", AdminToken: token,
		Health: func() string { return health.Load().(string) }, Registerer: reg, Gatherer: reg, Clock: clk,
		Drain: func() { drains.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, token: token, health: health, sys: sys, store: store, api: h.(*server), drains: drains}
}

type response struct {
	code   int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("reply is not a JSON object: %q", r.body)
	}
	return m
}

// do sends a request with the fixture's token and, with a body,
// Content-Type: application/json; hdr (name, value, ...) sets more
// headers or replaces those, and a value "" removes one.
func (f *fixture) do(method, path, body string, hdr ...string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1] // Go sends req.Host, never a Host header
			continue
		}
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{code: res.StatusCode, header: res.Header, body: string(b)}
}

func (f *fixture) must(code int, method, path, body string) response {
	f.t.Helper()
	r := f.do(method, path, body)
	if r.code != code {
		f.t.Fatalf("%s %s: %d %s, want %d", method, path, r.code, r.body, code)
	}
	return r
}

func (f *fixture) seed() {
	f.t.Helper()
	f.must(201, "PUT", "/v1/accounts/acme", `{"display_name":"Acme"}`)
	f.must(201, "PUT", "/v1/accounts/acme/groups/hq", `{"labels":{"region":"eu"}}`)
	f.must(201, "PUT", "/v1/accounts/acme/devices/alice", `{"group":"hq","password":"s3cret-pass"}`)
}

func TestProvisioning_RoundTrip(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	a := f.must(200, "GET", "/v1/accounts/acme", "").json(t)
	if a["dns_name"] != "acme.sip.test" || a["devices"] != 1.0 || a["groups"] != 1.0 {
		t.Fatalf("account: %v", a)
	}
	g := f.must(200, "GET", "/v1/accounts/acme/groups/hq", "").json(t)
	if m, _ := g["members"].([]any); len(m) != 1 || m[0] != "alice" {
		t.Fatalf("group members: %v", g)
	}
	// Tier 1's choice is stored on the group and shown with its reason.
	if g["assigned_pool"] != "default" || g["pool_reason"] == nil || g["pool_assigned_at"] == nil {
		t.Fatalf("group without its assigned pool and reason: %v", g)
	}
	d := f.must(200, "GET", "/v1/accounts/acme/devices/alice", "")
	if d.header.Get("ETag") == "" {
		t.Fatal("device GET without ETag")
	}
	if dm := d.json(t); dm["realm"] != "acme.sip.test" || dm["group"] != "hq" || dm["username"] != "alice" {
		t.Fatalf("device: %v", dm)
	}
	f.must(200, "PUT", "/v1/accounts/acme/devices/alice", `{"group":"hq","display_name":"Alice"}`)
	// The group actor is active now; a change of the group shows with its
	// new version and ETag at once.
	put := f.must(200, "PUT", "/v1/accounts/acme/groups/hq", `{"display_name":"HQ"}`)
	got := f.must(200, "GET", "/v1/accounts/acme/groups/hq", "")
	if got.header.Get("ETag") != put.header.Get("ETag") || got.json(t)["display_name"] != "HQ" {
		t.Fatalf("group after update: ETag %s vs %s, %s", got.header.Get("ETag"), put.header.Get("ETag"), got.body)
	}
	l := f.must(200, "GET", "/v1/accounts/acme/devices?group=hq&limit=10", "").json(t)
	if devs, _ := l["devices"].([]any); len(devs) != 1 {
		t.Fatalf("list: %v", l)
	}
	f.must(409, "DELETE", "/v1/accounts/acme/groups/hq", "")
	f.must(204, "DELETE", "/v1/accounts/acme/devices/alice", "")
	f.must(204, "DELETE", "/v1/accounts/acme/groups/hq", "")
	f.must(204, "DELETE", "/v1/accounts/acme", "")
	f.must(404, "GET", "/v1/accounts/acme", "")
}

func TestProvisioning_DeviceListPages(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	for _, d := range []string{"d1", "d2", "d3", "d4", "d5"} {
		f.must(201, "PUT", "/v1/accounts/acme/devices/"+d, `{"group":"hq","password":"password-`+d+`"}`)
	}
	var seen []string
	after := ""
	for range 10 {
		l := f.must(200, "GET", "/v1/accounts/acme/devices?limit=2&after="+after, "").json(t)
		for _, d := range l["devices"].([]any) {
			seen = append(seen, d.(map[string]any)["id"].(string))
		}
		next, ok := l["next_after"].(string)
		if !ok {
			break
		}
		after = next
	}
	if got := strings.Join(seen, ","); got != "alice,d1,d2,d3,d4,d5" {
		t.Fatalf("paged listing = %s", got)
	}
}

// badRequest is a request that must fail with code, naming field.
type badRequest struct {
	name, method, path, body string
	hdr                      []string
	code                     int
	field                    string
}

// expectBad sends each request in a subtest and checks its code, that it
// says what is wrong, and the field it names.
func (f *fixture) expectBad(t *testing.T, tests []badRequest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(tt.method, tt.path, tt.body, tt.hdr...)
			if r.code != tt.code {
				t.Fatalf("code %d (%s), want %d", r.code, r.body, tt.code)
			}
			m := r.json(t)
			if msg, _ := m["error"].(string); msg == "" {
				t.Fatalf("no error message: %s", r.body)
			}
			if got, _ := m["field"].(string); got != tt.field {
				t.Fatalf("field %q, want %q (%s)", got, tt.field, r.body)
			}
		})
	}
}

// Every bad request gets 4xx with the field at fault and changes nothing.
func TestProvisioning_BadInputChangesNothing(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	snapshot := func() string {
		return f.must(200, "GET", "/v1/accounts/acme", "").body +
			f.must(200, "GET", "/v1/accounts/acme/groups/hq", "").body +
			f.must(200, "GET", "/v1/accounts/acme/devices?limit=1000", "").body
	}
	before := snapshot()
	stale := `"999999"`
	f.expectBad(t, []badRequest{
		{"malformed json", "PUT", "/v1/accounts/acme", `{"display_name":`, nil, 400, "body"},
		{"array body", "PUT", "/v1/accounts/acme", `[1,2]`, nil, 400, "body"},
		{"string body", "PUT", "/v1/accounts/acme", `"x"`, nil, 400, "body"},
		{"null body", "PUT", "/v1/accounts/acme", `null`, nil, 400, "body"},
		{"weak If-Match", "PUT", "/v1/accounts/acme", `{}`, []string{"If-Match", `W/"1"`}, 400, "If-Match"},
		{"two objects", "PUT", "/v1/accounts/acme", `{} {}`, nil, 400, "body"},
		{"unknown field", "PUT", "/v1/accounts/acme", `{"colour":"red"}`, nil, 400, "colour"},
		{"wrong type", "PUT", "/v1/accounts/acme/devices/alice", `{"group":7}`, nil, 400, "group"},
		{"uppercase id", "PUT", "/v1/accounts/Acme", `{}`, nil, 400, "account"},
		{"leading dash", "PUT", "/v1/accounts/-acme", `{}`, nil, 400, "account"},
		{"64 characters", "PUT", "/v1/accounts/" + strings.Repeat("a", 64), `{}`, nil, 400, "account"},
		{"unicode id", "PUT", "/v1/accounts/acme/groups/h%C3%A9", `{}`, nil, 400, "group"},
		{"bad device id", "PUT", "/v1/accounts/acme/devices/a%20b", `{"group":"hq","password":"12345678"}`, nil, 400, "device"},
		{"group missing", "PUT", "/v1/accounts/acme/devices/bob", `{"password":"12345678"}`, nil, 400, "group"},
		{"group does not exist", "PUT", "/v1/accounts/acme/devices/bob", `{"group":"sales","password":"12345678"}`, nil, 400, "group"},
		{"short password", "PUT", "/v1/accounts/acme/devices/alice", `{"group":"hq","password":"1234567"}`, nil, 400, "password"},
		{"empty password", "PUT", "/v1/accounts/acme/devices/alice", `{"group":"hq","password":""}`, nil, 400, "password"},
		{"new device without password", "PUT", "/v1/accounts/acme/devices/bob", `{"group":"hq"}`, nil, 400, "password"},
		{"bad pool", "PUT", "/v1/accounts/acme/groups/hq", `{"pool":"EU West"}`, nil, 400, "pool"},
		{"bad label", "PUT", "/v1/accounts/acme/groups/hq", `{"labels":{"Bad Key":"x"}}`, nil, 400, "labels"},
		{"unknown account digest algorithm", "PUT", "/v1/accounts/acme", `{"digest_algorithm":"SHA-512"}`, nil, 400, "digest_algorithm"},
		{"trusted source not a CIDR", "PUT", "/v1/accounts/acme", `{"sip_trusted_sources":["203.0.113.0/33"]}`, nil, 400, "sip_trusted_sources"},
		{"trusted source too wide", "PUT", "/v1/accounts/acme", `{"sip_trusted_sources":["203.0.0.0/16"]}`, nil, 400, "sip_trusted_sources"},
		{"trusted IPv6 source too wide", "PUT", "/v1/accounts/acme", `{"sip_trusted_sources":["2001:db8::/32"]}`, nil, 400, "sip_trusted_sources"},
		{"too many trusted sources", "PUT", "/v1/accounts/acme", `{"sip_trusted_sources":["192.0.2.1","192.0.2.2","192.0.2.3","192.0.2.4","192.0.2.5","192.0.2.6","192.0.2.7","192.0.2.8","192.0.2.9","192.0.2.10","192.0.2.11","192.0.2.12","192.0.2.13","192.0.2.14","192.0.2.15","192.0.2.16","192.0.2.17"]}`, nil, 400, "sip_trusted_sources"},
		{"trusted sources not a list", "PUT", "/v1/accounts/acme", `{"sip_trusted_sources":"203.0.113.0/24"}`, nil, 400, "sip_trusted_sources"},
		{"strict_min_expires not a bool", "PUT", "/v1/accounts/acme", `{"strict_min_expires":"yes"}`, nil, 400, "strict_min_expires"},
		{"unknown device digest algorithm", "PUT", "/v1/accounts/acme/devices/alice", `{"group":"hq","digest_algorithm":"SHA256"}`, nil, 400, "digest_algorithm"},
		{"control char in name", "PUT", "/v1/accounts/acme", "{\"display_name\":\"a\\u0007b\"}", nil, 400, "display_name"},
		{"stale If-Match", "PUT", "/v1/accounts/acme", `{"display_name":"x"}`, []string{"If-Match", stale}, 409, "version"},
		{"garbage If-Match", "PUT", "/v1/accounts/acme", `{"display_name":"x"}`, []string{"If-Match", "abc"}, 400, "If-Match"},
		{"bad limit", "GET", "/v1/accounts/acme/devices?limit=0", "", nil, 400, "limit"},
		{"unknown account", "GET", "/v1/accounts/nobody", "", nil, 404, "account"},
		{"unknown device", "GET", "/v1/accounts/acme/devices/nobody", "", nil, 404, "device"},
		{"device of unknown account", "PUT", "/v1/accounts/nobody/devices/x", `{"group":"hq","password":"12345678"}`, nil, 404, "account"},
		{"unknown route", "GET", "/v1/nothing", "", nil, 404, ""},
		{"wrong method", "POST", "/v1/accounts/acme", "", nil, 405, ""},
	})
	if after := snapshot(); after != before {
		t.Fatalf("bad requests changed state:\nbefore %s\nafter  %s", before, after)
	}
}

func TestProvisioning_IfMatchAndETag(t *testing.T) {
	f := newFixture(t, "")
	r := f.must(201, "PUT", "/v1/accounts/acme", `{}`)
	etag := r.header.Get("ETag")
	r2 := f.do("PUT", "/v1/accounts/acme", `{"display_name":"x"}`, "If-Match", etag)
	if r2.code != 200 || r2.header.Get("ETag") == etag {
		t.Fatalf("conditional PUT with the current ETag: %d %s", r2.code, r2.body)
	}
	if r3 := f.do("DELETE", "/v1/accounts/acme", "", "If-Match", etag); r3.code != 409 {
		t.Fatalf("DELETE with a stale ETag: %d", r3.code)
	}
}

func TestPasswordNeverInAReply(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	const pw = "unique-PW-7f3a9"
	var bodies []string
	bodies = append(bodies, f.must(201, "PUT", "/v1/accounts/acme/devices/bob", `{"group":"hq","password":"`+pw+`"}`).body)
	bodies = append(bodies, f.do("PUT", "/v1/accounts/acme/devices/carol", `{"group":"nope","password":"`+pw+`"}`).body)
	for _, p := range []string{
		"/v1/accounts/acme/devices/bob", "/v1/accounts/acme/devices", "/v1/accounts/acme/trunks", "/v1/accounts/acme/routes",
		"/v1/accounts/acme/groups/hq/bindings", "/debug/actors", "/debug/actors/account/acme", "/debug/actors/devicegroup/acme/hq",
	} {
		bodies = append(bodies, f.must(200, "GET", p, "").body)
	}
	for _, b := range bodies {
		if strings.Contains(b, pw) || strings.Contains(strings.ToLower(b), "ha1") {
			t.Fatalf("a reply leaked a credential: %s", b)
		}
	}
}

func TestAuth_AdminAndDebugNeedTheToken(t *testing.T) {
	f := newFixture(t, "tok-123")
	for _, p := range []string{"/v1/accounts/acme", "/debug/actors", "/debug/pprof/"} {
		req, _ := http.NewRequest("GET", f.srv.URL+p, nil)
		req.Header.Set("Authorization", "Bearer wrong")
		res, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s with a wrong token: %d", p, res.StatusCode)
		}
	}
	f.must(404, "GET", "/v1/accounts/acme", "") // with the token
	if r := f.do("GET", "/v1/accounts/acme", "", "Authorization", "bearer tok-123"); r.code != 404 {
		t.Fatalf("lower-case bearer scheme: %d", r.code)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		res, err := f.srv.Client().Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s without a token: %d", p, res.StatusCode)
		}
	}
}

func TestHealthz_503UnlessServing(t *testing.T) {
	f := newFixture(t, "")
	for _, st := range []string{"starting", "draining"} {
		f.health.Store(st)
		r := f.do("GET", "/healthz", "")
		if r.code != 503 || r.json(t)["status"] != st {
			t.Fatalf("%s: %d %s", st, r.code, r.body)
		}
	}
	f.health.Store("serving")
	f.must(200, "GET", "/healthz", "")
}

func TestDebug_ActorsShowsActivations(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	f.must(200, "GET", "/v1/accounts/acme/groups/hq", "")
	l := f.must(200, "GET", "/debug/actors?kind=devicegroup", "").json(t)
	acts := l["activations"].([]any)
	if len(acts) != 1 || acts[0].(map[string]any)["id"] != "acme/hq" || acts[0].(map[string]any)["node"] != "n1" {
		t.Fatalf("activations: %v", l)
	}
	d := f.must(200, "GET", "/debug/actors/account/acme", "").json(t)
	st := d["state"].(map[string]any)
	if st["account"].(map[string]any)["id"] != "acme" || d["node"] != "n1" {
		t.Fatalf("describe: %v", d)
	}
	f.must(400, "GET", "/debug/actors?kind=nope", "")
	f.must(400, "GET", "/debug/actors/devicegroup/no-slash", "")
}

func TestMetrics_CountRequestsByRoute(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	body := f.must(200, "GET", "/metrics", "").body
	for _, want := range []string{
		`switchboard_http_requests_total{code="201",method="PUT",route="PUT /v1/accounts/{a}/devices/{d}"} 1`,
		`switchboard_http_request_seconds_bucket`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

func TestPools_PrescribedConditionsValidated(t *testing.T) {
	f := newFixture(t, "")
	tests := []struct {
		name, body string
		code       int
		field      string
	}{
		{"zero capacity", `{"call_capacity_per_node":0}`, 400, "call_capacity_per_node"},
		{"high water above 1", `{"high_water":1.5}`, 400, "high_water"},
		{"overflow into itself", `{"overflow":"p1"}`, 400, "overflow"},
		{"bad overflow id", `{"overflow":"P 2"}`, 400, "overflow"},
		{"unknown field", `{"capacity":3}`, 400, "capacity"},
		{"created", `{"call_capacity_per_node":50,"high_water":0.8,"overflow":"p2","labels":{"region":"eu"}}`, 201, ""},
		{"replaced", `{"call_capacity_per_node":50,"high_water":0.8,"overflow":"p2","labels":{"region":"eu"}}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do("PUT", "/v1/pools/p1", tt.body)
			if r.code != tt.code {
				t.Fatalf("%d %s, want %d", r.code, r.body, tt.code)
			}
			if got, _ := r.json(t)["field"].(string); got != tt.field {
				t.Fatalf("field %q, want %q", got, tt.field)
			}
		})
	}
	r := f.must(200, "PUT", "/v1/pools/p1", `{"call_capacity_per_node":60}`).json(t)
	if r["call_capacity_per_node"] != 60.0 || r["high_water"] != 0.85 {
		t.Fatalf("pool with defaults filled: %v", r)
	}
}

// DELETE /v1/pools/{p} removes a pool's prescribed conditions: 204, then
// 404; 409 while another pool overflows into it; a bad name is 400.
func TestPools_Delete(t *testing.T) {
	f := newFixture(t, "")
	f.must(201, "PUT", "/v1/pools/p1", `{"call_capacity_per_node":50}`)
	f.must(201, "PUT", "/v1/pools/p2", `{"overflow":"p1"}`)
	if r := f.do("DELETE", "/v1/pools/p1", ""); r.code != 409 || r.json(t)["field"] != "pool" {
		t.Fatalf("deleting a pool another overflows into: %d %s, want 409 naming pool", r.code, r.body)
	}
	f.must(204, "DELETE", "/v1/pools/p2", "")
	f.must(204, "DELETE", "/v1/pools/p1", "")
	if r := f.do("DELETE", "/v1/pools/p1", ""); r.code != 404 {
		t.Fatalf("deleting it again: %d %s, want 404", r.code, r.body)
	}
	if r := f.do("DELETE", "/v1/pools/P%201", ""); r.code != 400 || r.json(t)["field"] != "pool" {
		t.Fatalf("bad pool name: %d %s, want 400 naming pool", r.code, r.body)
	}
	// Created anew: 201 again.
	f.must(201, "PUT", "/v1/pools/p1", `{"call_capacity_per_node":50}`)
}

// POST /v1/calls starts a call of a device in its group's pool; it ends by
// itself after its hold time and leaves its record.
func TestCalls_StartAndEnd(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	for _, tt := range []struct{ body, field string }{
		{`{"account":"acme","device":"alice","hold_seconds":1}`, "callee"},
		{`{"account":"acme","device":"alice","callee":"100","hold_seconds":0}`, "hold_seconds"},
		{`{"account":"Acme","device":"alice","callee":"100","hold_seconds":1}`, "account"},
	} {
		if r := f.do("POST", "/v1/calls", tt.body); r.code != 400 || r.json(t)["field"] != tt.field {
			t.Fatalf("%s: %d %s", tt.body, r.code, r.body)
		}
	}
	if r := f.do("POST", "/v1/calls", `{"account":"acme","device":"nobody","callee":"100","hold_seconds":1}`); r.code != 404 {
		t.Fatalf("unknown device: %d %s", r.code, r.body)
	}
	c := f.must(201, "POST", "/v1/calls", `{"account":"acme","device":"alice","callee":"100","hold_seconds":0.05}`).json(t)
	if c["state"] != "active" || c["pool"] != "default" || c["group"] != "hq" {
		t.Fatalf("started call: %v", c)
	}
	id := c["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.must(200, "GET", "/v1/calls/"+id, "").json(t)
		if got["state"] == "ended" {
			if got["disposition"] != "completed" || got["duration_ms"].(float64) < 50 {
				t.Fatalf("call record: %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call never ended: %v", got)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}
