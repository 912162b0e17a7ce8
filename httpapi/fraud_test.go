package httpapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
)

// Issue 10 section 4: "Bad thresholds get a 400 naming the field."
func TestFraudPolicy_Issue10_BadInputNamesTheField(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	const p = "/v1/accounts/acme/fraud-policy"
	f.expectBad(t, []badRequest{
		{name: "warning above critical", method: "PUT", path: p, body: `{"indicators":{"rate_per_minute":{"warning":9,"critical":3}}}`, code: 400, field: "indicators.rate_per_minute.critical"},
		{name: "threshold not a number", method: "PUT", path: p, body: `{"indicators":{"rate_per_minute":{"critical":"many"}}}`, code: 400, field: "indicators.rate_per_minute.critical"},
		{name: "negative threshold", method: "PUT", path: p, body: `{"indicators":{"burst_per_second":{"critical":-1}}}`, code: 400, field: "indicators.burst_per_second.critical"},
		{name: "unknown field", method: "PUT", path: p, body: `{"thresholds":{}}`, code: 400, field: "thresholds"},
		{name: "not an object", method: "PUT", path: p, body: `[1]`, code: 400, field: "body"},
		{name: "critical under the account's warning", method: "PUT", path: "/v1/accounts/acme/devices/alice/fraud-policy", body: `{"indicators":{"rate_per_minute":{"critical":5}}}`, code: 400, field: "indicators.rate_per_minute.critical"},
		{name: "unknown group", method: "PUT", path: "/v1/accounts/acme/groups/nope/fraud-policy", body: `{}`, code: 404, field: "group"},
		{name: "unknown device", method: "GET", path: "/v1/accounts/acme/devices/nope/fraud-policy", code: 404, field: "device"},
		{name: "bad effective", method: "GET", path: p + "?effective=perhaps", code: 400, field: "effective"},
		{name: "no policy at the level", method: "GET", path: p, code: 404, field: "policy"},
	})
}

func TestFraudPolicy_LevelsAndEffective(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	f.must(200, "PUT", "/v1/accounts/acme/fraud-policy", `{"indicators":{"rate_per_minute":{"warning":20,"critical":40}}}`)
	f.must(200, "PUT", "/v1/accounts/acme/groups/hq/fraud-policy", `{"safe_list":["+4420*"]}`)
	f.must(200, "PUT", "/v1/accounts/acme/devices/alice/fraud-policy", `{"monitor":true}`)
	own := f.must(200, "GET", "/v1/accounts/acme/devices/alice/fraud-policy", "").json(t)
	if own["monitor"] != true || own["indicators"] != nil {
		t.Fatalf("device's own level: %v", own)
	}
	eff := f.must(200, "GET", "/v1/accounts/acme/devices/alice/fraud-policy?effective=true", "").json(t)
	rate := eff["indicators"].(map[string]any)["rate_per_minute"].(map[string]any)
	if eff["monitor"] != true || rate["critical"] != 40.0 || fmt.Sprint(eff["safe_list"]) != "[+4420*]" {
		t.Fatalf("effective policy of alice: %v", eff)
	}
	f.must(204, "DELETE", "/v1/accounts/acme/devices/alice/fraud-policy", "")
	eff = f.must(200, "GET", "/v1/accounts/acme/devices/alice/fraud-policy?effective=true", "").json(t)
	if eff["monitor"] != false {
		t.Fatalf("after the device's policy was removed: monitor %v", eff["monitor"])
	}
	f.must(404, "GET", "/v1/accounts/nobody/fraud-policy?effective=true", "")
}

// Issue 10 sections 6 and 7: incidents list, show and resolve; another
// account's incidents answer 404.
func TestFraudIncidents_Issue10_ListResolveAndTenancy(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	f := newFixtureOn(t, "", clk)
	f.seed()
	f.must(201, "PUT", "/v1/accounts/other", `{}`)
	f.must(200, "PUT", "/v1/accounts/acme/fraud-policy", `{"indicators":{"rate_per_minute":{"warning":2,"critical":3},
		"burst_per_second":{"enabled":false},"distinct_destinations":{"enabled":false},"sequential_destinations":{"enabled":false},
		"new_source":{"enabled":false},"history_deviation":{"enabled":false},"same_body":{"enabled":false}},
		"actions":{"block_destinations":true,"terminate_in_flight":true,"reset_credentials":false}}`)
	var incident string
	for i := range 10 {
		clk.Advance(2 * time.Second)
		rep, err := f.sys.Request(context.Background(), actors.KindMessaging, "acme", &actorpb.CheckMessage{
			Kind: "message", Device: "alice", Group: "hq", Destination: fmt.Sprintf("+1555010%02d", i), MessageId: fmt.Sprint("m", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		if c := rep.(*actorpb.CheckReply); c.Verdict == "refuse" {
			incident = c.Incident
			break
		}
	}
	if incident == "" {
		t.Fatal("no incident opened")
	}
	list := f.must(200, "GET", "/v1/accounts/acme/fraud/incidents?state=open", "").json(t)
	incs := list["incidents"].([]any)
	if len(incs) != 1 {
		t.Fatalf("open incidents: %v", list)
	}
	got := incs[0].(map[string]any)
	if got["id"] != incident || got["device"] != "alice" || got["indicator"] != "rate_per_minute" || got["state"] != "open" ||
		fmt.Sprint(got["actions"]) != "[terminate_in_flight block_destinations restore]" || got["policy_level"] != "account" {
		t.Fatalf("incident: %v", got)
	}
	f.must(200, "GET", "/v1/accounts/acme/fraud/incidents/"+incident, "")
	// Tenancy: the other account does not have it.
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/accounts/other/fraud/incidents/" + incident},
		{"POST", "/v1/accounts/other/fraud/incidents/" + incident + "/resolve"},
	} {
		if res := f.do(r.method, r.path, ""); res.code != 404 {
			t.Fatalf("%s %s: %d %s, want 404", r.method, r.path, res.code, res.body)
		}
	}
	if l := f.must(200, "GET", "/v1/accounts/other/fraud/incidents", "").json(t); len(l["incidents"].([]any)) != 0 {
		t.Fatalf("other account lists %v", l)
	}
	res := f.must(200, "POST", "/v1/accounts/acme/fraud/incidents/"+incident+"/resolve", "").json(t)
	if res["state"] != "resolved" || res["resolved_at"] == nil {
		t.Fatalf("resolved: %v", res)
	}
	if l := f.must(200, "GET", "/v1/accounts/acme/fraud/incidents?state=open", "").json(t); len(l["incidents"].([]any)) != 0 {
		t.Fatalf("still open: %v", l)
	}
	f.expectBad(t, []badRequest{
		{name: "bad state", method: "GET", path: "/v1/accounts/acme/fraud/incidents?state=maybe", code: 400, field: "state"},
		{name: "bad limit", method: "GET", path: "/v1/accounts/acme/fraud/incidents?limit=0", code: 400, field: "limit"},
		{name: "bad id", method: "GET", path: "/v1/accounts/acme/fraud/incidents/" + strings.Repeat("x", 70), code: 400, field: "incident"},
		{name: "unknown id", method: "GET", path: "/v1/accounts/acme/fraud/incidents/123-001", code: 404, field: "incident"},
	})
}
