//go:build unix

package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestProcess_BadInput sends malformed, unknown, invalid, missing and
// conflicting input to a node with one account, group and device, and
// proves each is refused with the right status and a JSON error naming the
// field at fault, and that none of them changed anything.
func TestProcess_BadInput(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOptions{args: []string{"--data", t.TempDir()}})
	const a = "/v1/accounts/acme"
	// Each resource is written twice, so that its first version is stale.
	stale := map[string]string{}
	for _, w := range []struct {
		name, path    string
		first, second any
	}{
		{"account", a, map[string]string{"display_name": "Acme"}, map[string]string{"display_name": "Acme Corp"}},
		{"group", a + "/groups/hq", map[string]string{"display_name": "HQ"}, map[string]string{"display_name": "Headquarters"}},
		{"device", a + "/devices/phone1", map[string]string{"group": "hq", "password": "first-password"}, map[string]string{"group": "hq", "display_name": "Desk"}},
	} {
		r := n.call(t, http.MethodPut, w.path, w.first)
		want(t, r, http.StatusCreated, "PUT "+w.name)
		stale[w.name] = strconv.Quote(strconv.FormatUint(decode[struct{ Version uint64 }](t, r).Version, 10))
		want(t, n.call(t, http.MethodPut, w.path, w.second), http.StatusOK, "PUT "+w.name+" again")
	}
	reads := []string{a, a + "/groups", a + "/groups/hq", a + "/devices/phone1", a + "/devices"}
	snapshot := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, p := range reads {
			r := n.call(t, http.MethodGet, p, nil)
			want(t, r, http.StatusOK, "GET "+p)
			out[p] = string(r.Body) + "ETag: " + r.Header.Get("ETag")
		}
		return out
	}
	before := snapshot()

	id64 := strings.Repeat("a", 64)
	cases := []struct {
		name      string
		method    string
		path      string
		ifMatch   string
		body      any
		wantCode  int
		wantField string
	}{
		// Malformed JSON.
		{"truncated JSON", http.MethodPut, a, "", `{"display_name":`, 400, "body"},
		{"JSON syntax error", http.MethodPut, a + "/devices/phone1", "", `{"group": hq, "password": "long-enough"}`, 400, "body"},
		{"two JSON objects", http.MethodPut, a, "", `{"display_name":"x"} {"display_name":"y"}`, 400, "body"},
		{"body over 1 MiB", http.MethodPut, a, "", `{"display_name":"` + strings.Repeat("x", 1<<20) + `"}`, 400, "body"},
		{"array where an object is due", http.MethodPut, a + "/groups/hq", "", `{"labels":["site"]}`, 400, "labels"},
		{"number where a string is due", http.MethodPut, a, "", `{"display_name":5}`, 400, "display_name"},
		// Unknown fields.
		{"unknown account field", http.MethodPut, a, "", `{"displayname":"x"}`, 400, "displayname"},
		{"unknown group field", http.MethodPut, a + "/groups/hq", "", `{"display_name":"x","colour":"red"}`, 400, "colour"},
		{"unknown device field", http.MethodPut, a + "/devices/phone1", "", `{"group":"hq","password":"long-enough","pin":"1234"}`, 400, "pin"},
		// Ids outside [a-z0-9][a-z0-9._-]{0,62}.
		{"uppercase account id", http.MethodPut, "/v1/accounts/Acme", "", `{}`, 400, "account"},
		{"account id with a leading dash", http.MethodPut, "/v1/accounts/-acme", "", `{}`, 400, "account"},
		{"account id of 64 characters", http.MethodPut, "/v1/accounts/" + id64, "", `{}`, 400, "account"},
		{"account id of 63 characters is valid, and absent", http.MethodGet, "/v1/accounts/" + id64[1:], "", nil, 404, "account"},
		{"unicode account id", http.MethodPut, "/v1/accounts/" + url.PathEscape("acmé"), "", `{}`, 400, "account"},
		{"uppercase group id", http.MethodPut, a + "/groups/HQ", "", `{}`, 400, "group"},
		{"group id with a leading dot", http.MethodPut, a + "/groups/.hq", "", `{}`, 400, "group"},
		{"device id of 64 characters", http.MethodPut, a + "/devices/" + id64, "", `{"group":"hq","password":"long-enough"}`, 400, "device"},
		{"unicode device id", http.MethodPut, a + "/devices/" + url.PathEscape("phöne"), "", `{"group":"hq","password":"long-enough"}`, 400, "device"},
		{"invalid group id in the body", http.MethodPut, a + "/devices/phone1", "", `{"group":"HQ"}`, 400, "group"},
		{"invalid pool id", http.MethodPut, a + "/groups/hq", "", `{"pool":"Pool 1"}`, 400, "pool"},
		{"invalid label key", http.MethodPut, a + "/groups/hq", "", `{"labels":{"Bad Key":"v"}}`, 400, "labels"},
		{"control character in display name", http.MethodPut, a, "", `{"display_name":"a\u0007b"}`, 400, "display_name"},
		{"display name over 200 characters", http.MethodPut, a, "", `{"display_name":"` + strings.Repeat("é", 201) + `"}`, 400, "display_name"},
		{"invalid group filter", http.MethodGet, a + "/devices?group=HQ", "", nil, 400, "group"},
		{"list limit 0", http.MethodGet, a + "/devices?limit=0", "", nil, 400, "limit"},
		{"list limit 1001", http.MethodGet, a + "/devices?limit=1001", "", nil, 400, "limit"},
		{"invalid If-Match", http.MethodPut, a, "abc", `{}`, 400, "If-Match"},
		{"If-Match 0", http.MethodPut, a, `"0"`, `{}`, 400, "If-Match"},
		{"unknown actor kind", http.MethodGet, "/debug/actors/nosuch/x", "", nil, 400, "kind"},
		// Missing groups and bad passwords.
		{"new device in a missing group", http.MethodPut, a + "/devices/phone2", "", `{"group":"nope","password":"long-enough"}`, 400, "group"},
		{"device moved to a missing group", http.MethodPut, a + "/devices/phone1", "", `{"group":"nope"}`, 400, "group"},
		{"device without a group", http.MethodPut, a + "/devices/phone2", "", `{"password":"long-enough"}`, 400, "group"},
		{"new device without a password", http.MethodPut, a + "/devices/phone2", "", `{"group":"hq"}`, 400, "password"},
		{"password of 7 characters", http.MethodPut, a + "/devices/phone1", "", `{"group":"hq","password":"seven77"}`, 400, "password"},
		{"password of 129 characters", http.MethodPut, a + "/devices/phone1", "", `{"group":"hq","password":"` + strings.Repeat("p", 129) + `"}`, 400, "password"},
		{"password not a string", http.MethodPut, a + "/devices/phone1", "", `{"group":"hq","password":12345678}`, 400, "password"},
		// Unknown resources.
		{"unknown account", http.MethodGet, "/v1/accounts/nosuch", "", nil, 404, "account"},
		{"group in an unknown account", http.MethodPut, "/v1/accounts/nosuch/groups/hq", "", `{}`, 404, "account"},
		{"unknown group", http.MethodGet, a + "/groups/nosuch", "", nil, 404, "group"},
		{"list of an unknown group", http.MethodGet, a + "/devices?group=nosuch", "", nil, 404, "group"},
		{"unknown device", http.MethodGet, a + "/devices/nosuch", "", nil, 404, "device"},
		{"delete of an unknown device", http.MethodDelete, a + "/devices/nosuch", "", nil, 404, "device"},
		{"unknown route", http.MethodGet, "/v1/nothing", "", nil, 404, ""},
		{"method not allowed", http.MethodPost, a, "", `{}`, 405, ""},
		// Version conflicts.
		{"stale account version", http.MethodPut, a, stale["account"], `{"display_name":"x"}`, 409, "version"},
		{"stale group version", http.MethodPut, a + "/groups/hq", stale["group"], `{"display_name":"x"}`, 409, "version"},
		{"stale device version", http.MethodPut, a + "/devices/phone1", stale["device"], `{"group":"hq","password":"new-password"}`, 409, "version"},
		{"delete at a stale device version", http.MethodDelete, a + "/devices/phone1", stale["device"], nil, 409, "version"},
		{"delete at a stale account version", http.MethodDelete, a, stale["account"], nil, 409, "version"},
		{"If-Match on an account that does not exist", http.MethodPut, "/v1/accounts/newacct", `"5"`, `{}`, 409, "version"},
		{"delete of a group with devices", http.MethodDelete, a + "/groups/hq", "", nil, 409, "group"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.ifMatch != "" {
				hdr = []string{"If-Match", tc.ifMatch}
			}
			r := n.call(t, tc.method, tc.path, tc.body, hdr...)
			want(t, r, tc.wantCode, tc.method+" "+tc.path)
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			e := decode[errorJSON](t, r)
			if e.Error == "" || e.Field != tc.wantField {
				t.Errorf("error body %s: want a message and field %q", r.Body, tc.wantField)
			}
		})
	}

	after := snapshot()
	for _, p := range reads {
		if before[p] != after[p] {
			t.Errorf("GET %s changed:\nbefore: %s\nafter:  %s", p, before[p], after[p])
		}
	}
	for _, p := range []string{"/v1/accounts/nosuch", "/v1/accounts/newacct", a + "/devices/phone2"} {
		want(t, n.call(t, http.MethodGet, p, nil), http.StatusNotFound, "GET "+p+" after the bad input")
	}
}
