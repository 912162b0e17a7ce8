package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// gauge reads an unlabelled series of the node's /metrics.
func gauge(t *testing.T, n *proc, name string) string {
	t.Helper()
	body := string(n.call(t, http.MethodGet, "/metrics", nil).Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	return m[1]
}

// The collector is paced by a memory limit, not a fixed GC percent:
// --memory-limit sets the process's limit (over GOMEMLIMIT), GOMEMLIMIT
// alone is honoured, and the GC percent is Go's default 100.
func TestProcess_MemoryLimitPacesTheCollector(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args, env []string
		limit     string
	}{
		{"flag wins over GOMEMLIMIT", []string{"--memory-limit", "256MiB"}, []string{"GOMEMLIMIT=1GiB"}, "2.68435456e+08"},
		{"environment variable of the flag", nil, []string{"SWITCHBOARD_MEMORY_LIMIT=3GiB"}, "3.221225472e+09"},
		{"GOMEMLIMIT alone", nil, []string{"GOMEMLIMIT=1GiB"}, "1.073741824e+09"},
		{"off lifts GOMEMLIMIT", []string{"--memory-limit", "off"}, []string{"GOMEMLIMIT=1GiB"}, "9.223372036854776e+18"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, nodeOptions{args: append([]string{"--data", t.TempDir()}, tc.args...), env: tc.env})
			if got := gauge(t, n, "go_gc_gomemlimit_bytes"); got != tc.limit {
				t.Errorf("go_gc_gomemlimit_bytes = %s, want %s", got, tc.limit)
			}
			if got := gauge(t, n, "go_gc_gogc_percent"); got != "100" {
				t.Errorf("go_gc_gogc_percent = %s, want Go's default 100", got)
			}
		})
	}
}

// A memory limit that is not a size stops the node at start, naming the
// flag and the sizes it takes.
func TestProcess_BadMemoryLimitIsAClearError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		args, env []string
		want      string
	}{
		{"unknown unit", []string{"--memory-limit", "512MB"}, nil, `"--memory-limit" flag: memory limit "512MB"`},
		{"negative", []string{"--memory-limit", "-1GiB"}, nil, `"--memory-limit" flag: memory limit "-1GiB"`},
		{"environment", nil, []string{"SWITCHBOARD_MEMORY_LIMIT=lots"}, `SWITCHBOARD_MEMORY_LIMIT: memory limit "lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"node", "--data", t.TempDir(), "--http", "127.0.0.1:0"}, tc.args...)
			res := runToExit(t, 30*time.Second, tc.env, args...)
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) || !strings.Contains(res.stderr, "512MiB, 2GiB") {
				t.Fatalf("exit %d, stderr %q; want a failure saying %s and which sizes work", res.code, res.stderr, tc.want)
			}
		})
	}
}
