//go:build unix

package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProcess_TrustedSourceFlag proves --sip-trusted-source takes CIDR
// prefixes and addresses, repeated or comma-separated, and that a value
// that is not one stops the node at once with an error naming the flag
// (or the environment variable) and the value.
func TestProcess_TrustedSourceFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want string
		args, env  []string
	}{
		{"flag", `"--sip-trusted-source"`, []string{"--sip-trusted-source", "127.0.0.1,203.0.113.0/33"}, nil},
		{"environment", "SWITCHBOARD_SIP_TRUSTED_SOURCE", nil, []string{"SWITCHBOARD_SIP_TRUSTED_SOURCE=203.0.113.0/33"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"node", "--name", "badtrust", "--data", t.TempDir(), "--http", "127.0.0.1:" + freePort(t), "--gossip", "127.0.0.1:0",
				"--actor", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--dns", "127.0.0.1:0"}, tc.args...)
			res := runToExit(t, 30*time.Second, tc.env, args...)
			if res.code == 0 {
				t.Fatalf("exited 0 with a bad trusted source; stderr:\n%s", res.stderr)
			}
			if !strings.Contains(res.stderr, tc.want) || !strings.Contains(res.stderr, "203.0.113.0/33") || !strings.Contains(res.stderr, "not a CIDR prefix") {
				t.Fatalf("stderr does not name %s, the value and what is wrong:\n%s", tc.want, res.stderr)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		n := startNode(t, nodeOptions{args: []string{"--data", t.TempDir(),
			"--sip-trusted-source", "127.0.0.1,10.0.0.0/8", "--sip-trusted-source", "2001:db8::/48", "--sip-trusted-rate", "100"}})
		want(t, n.call(t, http.MethodGet, "/healthz", nil), http.StatusOK, "GET /healthz")
		n.stop(t)
	})
}
