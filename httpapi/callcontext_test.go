package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

const adminToken = "admin-secret"

// appFixture provisions accounts acme (devices alice, bob, carol) and
// other (device dave) and registers apps; tokens by name.
func appFixture(t *testing.T) (*fixture, map[string]string) {
	t.Helper()
	f := newFixture(t, adminToken)
	for _, acct := range []struct {
		a    string
		devs []string
	}{{"acme", []string{"alice", "bob", "carol"}}, {"other", []string{"dave"}}} {
		f.must(http.StatusCreated, "PUT", "/v1/accounts/"+acct.a, `{}`)
		f.must(http.StatusCreated, "PUT", "/v1/accounts/"+acct.a+"/groups/g", `{}`)
		for _, d := range acct.devs {
			f.must(http.StatusCreated, "PUT", "/v1/accounts/"+acct.a+"/devices/"+d, `{"group":"g","password":"pw-`+d+`-long-enough"}`)
		}
	}
	tokens := map[string]string{}
	for _, app := range []struct{ key, account, body string }{
		{"crm", "acme", `{"name":"crm","scopes":["calls:read","context:write","events:read"]}`},
		{"helpdesk", "acme", `{"name":"helpdesk","scopes":["calls:read","context:write"]}`},
		{"bob-crm", "acme", `{"name":"crm","scopes":["calls:read","context:write","events:read"],"user":"bob"}`},
		{"carol-crm", "acme", `{"name":"crm","scopes":["calls:read","context:write","events:read"],"user":"carol"}`},
		{"reader", "acme", `{"name":"wallboard","scopes":["calls:read"]}`},
		{"other", "other", `{"name":"crm","scopes":["calls:read","context:write","events:read"]}`},
	} {
		r := f.must(http.StatusCreated, "POST", "/v1/accounts/"+app.account+"/apps", app.body)
		tok, _ := r.json(t)["token"].(string)
		if !strings.HasPrefix(tok, "sbapp_") {
			t.Fatalf("registering %s: token %q", app.key, tok)
		}
		tokens[app.key] = tok
	}
	rec := &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "bob"}
	rep, err := f.sys.Request(context.Background(), actors.KindCall, "call-1", &actorpb.StartCall{Call: rec})
	if err != nil || rep.(*actorpb.CallReply).Error != nil {
		t.Fatalf("starting a call: %v %v", err, rep)
	}
	return f, tokens
}

func (f *fixture) as(token, method, path, body string, hdr ...string) response {
	f.t.Helper()
	h := []string{"Authorization", "Bearer " + token}
	if body != "" && method == "PATCH" {
		h = append(h, "Content-Type", mediaMergePatch)
	}
	return f.do(method, path, body, append(h, hdr...)...)
}

// TestIntegrationAPI_TenancyMatrix: issue 11, section 6.
func TestIntegrationAPI_TenancyMatrix(t *testing.T) {
	f, tok := appFixture(t)
	tests := []struct {
		name, token, method, path, body string
		want                            int
	}{
		{"account-wide app reads", tok["crm"], "GET", "/v1/calls/call-1/context", "", 200},
		{"callee's app reads", tok["bob-crm"], "GET", "/v1/calls/call-1/context", "", 200},
		{"another user's app: 404", tok["carol-crm"], "GET", "/v1/calls/call-1/context", "", 404},
		{"another user's app writes: 404", tok["carol-crm"], "PATCH", "/v1/calls/call-1/context", `{"a":1}`, 404},
		{"another account: 404", tok["other"], "GET", "/v1/calls/call-1/context", "", 404},
		{"another account writes: 404", tok["other"], "PATCH", "/v1/calls/call-1/context", `{"a":1}`, 404},
		{"no such call: 404", tok["crm"], "GET", "/v1/calls/nope/context", "", 404},
		{"no write scope: 403", tok["reader"], "PATCH", "/v1/calls/call-1/context", `{"a":1}`, 403},
		{"no events scope: 403", tok["helpdesk"], "GET", "/v1/events", "", 403},
		{"fraud events are not an app's: 403", tok["crm"], "GET", "/v1/events?type=fraud.", "", 403},
		{"a user token asks for another user's events: 403", tok["bob-crm"], "GET", "/v1/events?user=alice", "", 403},
		{"a user token lists another user's calls: 403", tok["bob-crm"], "GET", "/v1/calls?user=alice", "", 403},
		{"admin token on an app route: 401", adminToken, "GET", "/v1/calls/call-1/context", "", 401},
		{"bad token: 401", "sbapp_acme.0123456789abcdef.forged", "GET", "/v1/calls/call-1/context", "", 401},
		{"app token on an admin route: 401", tok["crm"], "GET", "/v1/accounts/acme", "", 401},
		{"app token cannot register apps: 401", tok["crm"], "POST", "/v1/accounts/acme/apps", `{"name":"x","scopes":["calls:read"]}`, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []string{}
			if tc.method == "POST" {
				hdr = append(hdr, "Content-Type", "application/json")
			}
			if r := f.as(tc.token, tc.method, tc.path, tc.body, hdr...); r.code != tc.want {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.want)
			}
		})
	}
	// A refused write changed nothing.
	if r := f.as(tok["crm"], "GET", "/v1/calls/call-1/context", ""); r.header.Get("ETag") != `"0"` {
		t.Fatalf("ETag %q after refused writes, want \"0\"", r.header.Get("ETag"))
	}
}

func TestIntegrationAPI_PatchMergesIntoTheAppsNamespace_RFC7396(t *testing.T) {
	f, tok := appFixture(t)
	r := f.as(tok["crm"], "PATCH", "/v1/calls/call-1/context", `{"customer":{"name":"Ada","tier":"gold"},"ticket":"T-1"}`)
	if r.code != 200 || r.header.Get("ETag") != `"1"` {
		t.Fatalf("crm patch: %d %s etag %s", r.code, r.body, r.header.Get("ETag"))
	}
	r = f.as(tok["helpdesk"], "PATCH", "/v1/calls/call-1/context", `{"case":7}`, "If-Match", `"1"`)
	if r.code != 200 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("helpdesk patch with If-Match: %d %s", r.code, r.body)
	}
	// Stale If-Match: 412 naming If-Match, nothing changed.
	r = f.as(tok["crm"], "PATCH", "/v1/calls/call-1/context", `{"ticket":"T-2"}`, "If-Match", `"1"`)
	if r.code != http.StatusPreconditionFailed || r.json(t)["field"] != "If-Match" || r.header.Get("ETag") != `"2"` {
		t.Fatalf("stale If-Match: %d %s", r.code, r.body)
	}
	// null deletes; a nested member merges.
	r = f.as(tok["bob-crm"], "PATCH", "/v1/calls/call-1/context", `{"ticket":null,"customer":{"tier":null}}`)
	if r.code != 200 {
		t.Fatalf("null patch: %d %s", r.code, r.body)
	}
	v := f.as(tok["crm"], "GET", "/v1/calls/call-1/context", "").json(t)
	apps := v["apps"].(map[string]any)
	if got := fmt.Sprint(apps["crm"]); got != "map[customer:map[name:Ada]]" {
		t.Errorf("crm = %s", got)
	}
	if got := fmt.Sprint(apps["helpdesk"]); got != "map[case:7]" {
		t.Errorf("helpdesk = %s", got)
	}
	writers := v["writers"].(map[string]any)
	if w := writers["crm"].(map[string]any); w["user"] != "bob" || w["version"] != 3.0 {
		t.Errorf("crm writer = %v", w)
	}
	if v["live"] != true || v["version"] != 3.0 || v["call"].(map[string]any)["caller"] != "alice" {
		t.Errorf("context = %v", v)
	}
}

func TestIntegrationAPI_BadPatches(t *testing.T) {
	f, tok := appFixture(t)
	deep := strings.Repeat(`{"x":`, 9) + "1" + strings.Repeat("}", 9)
	tests := []struct {
		name, body, ctype string
		want              int
		field             string
	}{
		{"too deep", deep, "", 400, "body/x/x/x/x/x/x/x/x"},
		{"empty key", `{"a":{"":1}}`, "", 400, "body/a/"},
		{"not an object", `[1,2]`, "", 400, "body"},
		{"malformed", `{"a":`, "", 400, "body"},
		{"over 64 KiB", `{"blob":"` + strings.Repeat("x", 65<<10) + `"}`, "", 413, "body"},
		{"plain JSON is not a merge patch", `{"a":1}`, "application/json", 415, "Content-Type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []string{}
			if tc.ctype != "" {
				hdr = append(hdr, "Content-Type", tc.ctype)
			}
			r := f.as(tok["crm"], "PATCH", "/v1/calls/call-1/context", tc.body, hdr...)
			if r.code != tc.want || r.json(t)["field"] != tc.field {
				t.Fatalf("%d %s, want %d naming %q", r.code, r.body, tc.want, tc.field)
			}
		})
	}
	if r := f.as(tok["crm"], "PATCH", "/v1/calls/call-1/context", `{"a":1}`, "If-Match", "soon"); r.code != 400 || r.json(t)["field"] != "If-Match" {
		t.Fatalf("bad If-Match: %d %s", r.code, r.body)
	}
	if r := f.as(tok["crm"], "GET", "/v1/calls/call-1/context", ""); r.header.Get("ETag") != `"0"` {
		t.Fatalf("a refused patch changed the context: ETag %s", r.header.Get("ETag"))
	}
}

func TestApps_RevocationIsImmediateAndTokensAreNotStored(t *testing.T) {
	f, tok := appFixture(t)
	list := f.must(http.StatusOK, "GET", "/v1/accounts/acme/apps", "")
	if strings.Contains(list.body, "sbapp_") || strings.Contains(list.body, "token") {
		t.Fatalf("the app list shows tokens: %s", list.body)
	}
	var id string
	for _, a := range list.json(t)["apps"].([]any) {
		if m := a.(map[string]any); m["user"] == "carol" {
			id = m["id"].(string)
		}
	}
	if r := f.as(tok["carol-crm"], "GET", "/v1/calls?user=carol", ""); r.code != 200 {
		t.Fatalf("before revocation: %d %s", r.code, r.body)
	}
	f.must(http.StatusNoContent, "DELETE", "/v1/accounts/acme/apps/"+id, "")
	if r := f.as(tok["carol-crm"], "GET", "/v1/calls?user=carol", ""); r.code != 401 {
		t.Fatalf("after revocation: %d %s", r.code, r.body)
	}
	f.must(http.StatusNotFound, "DELETE", "/v1/accounts/acme/apps/"+id, "")
	for _, bad := range []struct{ body, field string }{
		{`{"name":"crm","scopes":["calls:write"]}`, "scopes"},
		{`{"name":"crm","scopes":[]}`, "scopes"},
		{`{"name":"CRM!","scopes":["calls:read"]}`, "name"},
		{`{"name":"crm","scopes":["calls:read"],"user":"zed"}`, "user"},
	} {
		r := f.do("POST", "/v1/accounts/acme/apps", bad.body)
		if r.code != 400 || r.json(t)["field"] != bad.field {
			t.Errorf("%s: %d %s, want 400 naming %s", bad.body, r.code, r.body, bad.field)
		}
	}
}

func TestIntegrationAPI_RecentCallsPageFromTheIndex(t *testing.T) {
	f, tok := appFixture(t)
	for i := range 5 {
		id := fmt.Sprintf("past-%d", i)
		rec := &actorpb.CallRecord{Account: "acme", Caller: "bob", Callee: "carol"}
		if _, err := f.sys.Request(context.Background(), actors.KindCall, id, &actorpb.StartCall{Call: rec}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sys.Request(context.Background(), actors.KindCall, id, &actorpb.EndCall{Status: 200, EndedBy: "caller"}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	after := ""
	for page := 0; page < 5; page++ {
		r := f.as(tok["bob-crm"], "GET", "/v1/calls?limit=2&after="+after, "")
		if r.code != 200 {
			t.Fatalf("page %d: %d %s", page, r.code, r.body)
		}
		body := r.json(t)
		for _, c := range body["calls"].([]any) {
			m := c.(map[string]any)
			seen = append(seen, m["id"].(string))
			if m["role"] != "caller" {
				t.Errorf("role %v", m["role"])
			}
		}
		next, _ := body["next"].(string)
		if next == "" {
			break
		}
		after = next
	}
	if want := []string{"past-4", "past-3", "past-2", "past-1", "past-0"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("bob's calls = %v, want newest first %v", seen, want)
	}
	// carol (callee) has them too; the live call-1 is not listed (the
	// index is written when a call ends).
	if r := f.as(tok["crm"], "GET", "/v1/calls?user=carol&limit=200", ""); strings.Count(r.body, `"role": "callee"`) != 5 {
		t.Fatalf("carol's calls: %s", r.body)
	}
	for _, q := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=500", "limit"}, {"since=yesterday", "since"}, {"after=../x", "after"},
	} {
		if r := f.as(tok["bob-crm"], "GET", "/v1/calls?"+q.query, ""); r.code != 400 || r.json(t)["field"] != q.field {
			t.Errorf("?%s: %d %s", q.query, r.code, r.body)
		}
	}
	if r := f.as(tok["crm"], "GET", "/v1/calls", ""); r.code != 400 || r.json(t)["field"] != "user" {
		t.Errorf("an account-wide token without ?user=: %d %s", r.code, r.body)
	}
}
