//go:build unix

package main

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestProcess_Demo proves --demo prints working credentials for alice and
// bob of account acme, and provisions them so the API lists them.
func TestProcess_Demo(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	n := startNode(t, nodeOptions{args: []string{"--data", data, "--demo"}})
	out := waitOutput(t, n.Stdout, "bob-demo-1234", 10*time.Second)
	for _, d := range []struct{ id, password string }{{"alice", "alice-demo-1234"}, {"bob", "bob-demo-1234"}} {
		line := regexp.MustCompile(`device\s+` + d.id + `\s+username\s+` + d.id + `\s+password\s+` + regexp.QuoteMeta(d.password) + `\n`)
		if !line.MatchString(out) {
			t.Errorf("stdout has no credentials line for %s with password %s:\n%s", d.id, d.password, out)
		}
	}
	if !strings.Contains(out, "acme."+zone) {
		t.Errorf("stdout does not name the realm acme.%s:\n%s", zone, out)
	}
	r := n.call(t, http.MethodGet, "/v1/accounts/acme/devices", nil)
	want(t, r, http.StatusOK, "list the demo devices")
	noSecretFields(t, r)
	var ids []string
	for _, d := range decode[deviceListJSON](t, r).Devices {
		ids = append(ids, d.ID)
		if d.Group != "hq" || d.Username != d.ID || d.Realm != "acme."+zone {
			t.Errorf("demo device %+v", d)
		}
	}
	if !slices.Equal(ids, []string{"alice", "bob"}) {
		t.Errorf("demo devices %v, want [alice bob]", ids)
	}
	// The user's edit survives a restart with --demo: the demo account is
	// created once, never reset.
	want(t, n.call(t, http.MethodPut, "/v1/accounts/acme", map[string]string{"display_name": "Mine"}), http.StatusOK, "rename acme")
	n.stop(t)
	if strings.Contains(n.Stderr.String(), "demo-1234") {
		t.Errorf("the logs show a demo password; only the stdout banner may:\n%s", n.Stderr)
	}
	again := startNode(t, nodeOptions{args: []string{"--data", data, "--demo"}})
	waitOutput(t, again.Stdout, "exists already and was left as it is", 30*time.Second)
	r = again.call(t, http.MethodGet, "/v1/accounts/acme", nil)
	if a := decode[struct {
		DisplayName string `json:"display_name"`
	}](t, r); a.DisplayName != "Mine" {
		t.Errorf("a restart with --demo reset the demo account: %s", r)
	}
	again.stop(t)
}
