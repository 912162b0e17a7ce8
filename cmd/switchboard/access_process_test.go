//go:build unix

// Access: the admin token, and a node refusing to start without its store.

package main

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProcess_AdminToken proves that with an admin token the provisioning
// and debug endpoints demand it as a bearer token (RFC 6750 2.1) while
// /healthz and /metrics stay open, that a flag beats the environment, that
// a node refuses a non-loopback address without a token, and that
// SWITCHBOARD_ADMIN_TOKEN alone is enough to start one there.
func TestProcess_AdminToken(t *testing.T) {
	t.Parallel()
	token, envToken := rand.Text(), rand.Text()
	n := startNode(t, nodeOptions{
		args: []string{"--data", t.TempDir(), "--admin-token", token},
		env:  []string{"SWITCHBOARD_ADMIN_TOKEN=" + envToken},
	})
	// Run in order: the refused PUT comes before the accepted one.
	for _, tc := range []struct {
		name   string
		method string
		path   string
		auth   string
		want   int
	}{
		{"provisioning without a token", http.MethodGet, "/v1/accounts/x", "", 401},
		{"write without a token", http.MethodPut, "/v1/accounts/x", "", 401},
		{"wrong token", http.MethodGet, "/v1/accounts/x", "Bearer wrong-" + token, 401},
		{"token without the Bearer scheme", http.MethodGet, "/v1/accounts/x", token, 401},
		{"environment token when the flag is set", http.MethodGet, "/v1/accounts/x", "Bearer " + envToken, 401},
		{"debug without a token", http.MethodGet, "/debug/actors", "", 401},
		{"pprof without a token", http.MethodGet, "/debug/pprof/", "", 401},
		{"healthz stays open", http.MethodGet, "/healthz", "", 200},
		{"metrics stay open", http.MethodGet, "/metrics", "", 200},
		{"the refused write changed nothing", http.MethodGet, "/v1/accounts/x", "Bearer " + token, 404},
		{"write with the token", http.MethodPut, "/v1/accounts/x", "Bearer " + token, 201},
		{"read with the token", http.MethodGet, "/v1/accounts/x", "Bearer " + token, 200},
		{"debug with the token", http.MethodGet, "/debug/actors", "Bearer " + token, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			r := n.call(t, tc.method, tc.path, nil, hdr...)
			want(t, r, tc.want, tc.method+" "+tc.path)
			if tc.want != http.StatusUnauthorized {
				return
			}
			if e := decode[errorJSON](t, r); e.Error == "" || e.Field != "Authorization" {
				t.Errorf("401 body %s: want a JSON error on field Authorization", r.Body)
			}
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a WWW-Authenticate: Bearer challenge (RFC 6750 3): %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
	n.stop(t)

	t.Run("non-loopback without a token is refused", func(t *testing.T) {
		res := runToExit(t, 20*time.Second, nil, "node", "--name", "open", "--http", "0.0.0.0:"+freePort(t), "--data", t.TempDir(), "--gossip", "127.0.0.1:0", "--actor", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--dns", "127.0.0.1:0")
		if res.code == 0 {
			t.Fatalf("exited 0; want a refusal. stderr:\n%s", res.stderr)
		}
		if !strings.Contains(res.stderr, "admin token") || !strings.Contains(res.stderr, "--admin-token") {
			t.Errorf("stderr does not say that an admin token (--admin-token) is needed:\n%s", res.stderr)
		}
	})

	t.Run("non-loopback with SWITCHBOARD_ADMIN_TOKEN starts", func(t *testing.T) {
		n := startNode(t, nodeOptions{bind: "0.0.0.0", args: []string{"--data", t.TempDir()}, env: []string{"SWITCHBOARD_ADMIN_TOKEN=" + envToken}})
		want(t, n.call(t, http.MethodGet, "/v1/accounts/x", nil), http.StatusUnauthorized, "GET without a token")
		want(t, n.call(t, http.MethodGet, "/v1/accounts/x", nil, "Authorization", "Bearer "+envToken), http.StatusNotFound, "GET with the environment's token")
		n.stop(t)
	})
}

// TestProcess_UnreachablePostgres proves that a node whose PostgreSQL does
// not answer exits non-zero at once, names the address it tried, and never
// prints the DSN's password, whether the DSN came by flag or environment.
func TestProcess_UnreachablePostgres(t *testing.T) {
	t.Parallel()
	port := freePort(t) // closed: nothing listens there
	dsn := "postgres://sb:hunter2-secret@127.0.0.1:" + port + "/x"
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"flag", []string{"--store", dsn}, nil},
		{"environment", nil, []string{"SWITCHBOARD_STORE=" + dsn}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"node", "--name", "nopg", "--http", "127.0.0.1:" + freePort(t), "--gossip", "127.0.0.1:0", "--actor", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--dns", "127.0.0.1:0"}, tc.args...)
			res := runToExit(t, 30*time.Second, tc.env, args...)
			if res.code == 0 {
				t.Fatalf("exited 0 without its store; stderr:\n%s", res.stderr)
			}
			// The connect timeout is 5s; a refused connection needs none of it.
			if res.elapsed > 10*time.Second {
				t.Errorf("took %v to give up on a closed port", res.elapsed)
			}
			if !strings.Contains(res.stderr, "127.0.0.1:"+port) {
				t.Errorf("stderr does not name 127.0.0.1:%s:\n%s", port, res.stderr)
			}
			if strings.Contains(res.stdout+res.stderr, "hunter2") {
				t.Errorf("output shows the DSN's password:\n%s\n%s", res.stdout, res.stderr)
			}
		})
	}
}
