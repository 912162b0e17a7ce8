package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/integration"
	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
)

// proxyUpstream is a minimal stand-in for a node's integration API: one
// context behind the app token, and an event stream with one event.
func proxyUpstream(t *testing.T, token string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/calls/{id}/context", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprintf(w, `{"call":{"id":%q},"live":null,"apps":{},"version":1}`, r.PathValue("id"))
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\nevent: call.ringing\ndata: {\"seq\":1}\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":"bad token"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// getWithToken GETs url with a bearer token and returns status and body.
func getWithToken(t *testing.T, c *http.Client, url, token string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitDiscovery polls for the discovery file and reads it.
func waitDiscovery(t *testing.T, path string) integration.Discovery {
	t.Helper()
	var d integration.Discovery
	eventually(t, 10*time.Second, "the discovery file", func() (bool, string) {
		var err error
		d, err = integration.ReadDiscovery(path)
		return err == nil, fmt.Sprint(err)
	})
	return d
}

// TestProxyCommand_TokenFromFileAndDiscovery runs `switchboard proxy` in
// process: the app token from --token-file reaches the server, the
// discovery file (mode 0600) holds the port and the local token, a bad
// Origin is refused, and stopping the command removes the file.
func TestProxyCommand_TokenFromFileAndDiscovery(t *testing.T) {
	t.Parallel()
	srv := proxyUpstream(t, "app-secret")
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("app-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	disc := filepath.Join(dir, "cfg", "proxy.json")
	var out, errOut bytes.Buffer
	root := newRootCommand(&out, &errOut)
	root.SetArgs([]string{"proxy", "--server", srv.URL, "--token-file", tokFile, "--discovery", disc,
		"--queue-file", "none", "--allow-origin", "https://crm.example.com"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	d := waitDiscovery(t, disc)
	if st, _ := os.Stat(disc); st.Mode().Perm() != 0o600 {
		t.Fatalf("discovery file mode %v, want 0600", st.Mode().Perm())
	}
	if !strings.HasPrefix(d.URL, "http://127.0.0.1:") || d.Port == 0 || len(d.Token) < 32 {
		t.Fatalf("discovery %+v", d)
	}
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	if code, body := getWithToken(t, c, d.URL+"/v1/calls/c1/context", d.Token); code != 200 || !strings.Contains(body, `"c1"`) {
		t.Fatalf("context through the proxy: %d %s", code, body)
	}
	if code, _ := getWithToken(t, c, d.URL+"/v1/calls/c1/context", d.Token, "Origin", "https://evil.example"); code != 403 {
		t.Fatalf("bad Origin: %d, want 403", code)
	}
	if code, _ := getWithToken(t, c, d.URL+"/v1/calls/c1/context", "app-secret"); code != 401 {
		t.Fatalf("the app token used locally: %d, want 401 (apps present the local token)", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("proxy command: %v\n%s", err, errOut.String())
	}
	done <- nil // for the cleanup
	if _, err := os.Stat(disc); !os.IsNotExist(err) {
		t.Errorf("discovery file left after stop: %v", err)
	}
	if !strings.Contains(out.String(), d.URL) {
		t.Errorf("stdout %q does not name the proxy's URL", out.String())
	}
}

// TestProxyCommand_RefusesBadFlags: what is wrong is said, and what to do.
func TestProxyCommand_RefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no token", []string{"--server", "http://127.0.0.1:1"}, "SWITCHBOARD_APP_TOKEN"},
		{"no server", []string{"--token", "x"}, "--server"},
		{"both token flags", []string{"--server", "http://127.0.0.1:1", "--token", "x", "--token-file", "/nonexistent"}, "not both"},
		{"listen off loopback", []string{"--server", "http://127.0.0.1:1", "--token", "x", "--listen", "0.0.0.0:0"}, "loopback"},
		{"origin with path", []string{"--server", "http://127.0.0.1:1", "--token", "x", "--allow-origin", "https://a.example/x"}, "no path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(appTokenEnv, "")
			os.Unsetenv(appTokenEnv)
			root := newRootCommand(io.Discard, io.Discard)
			root.SetArgs(append([]string{"proxy", "--discovery", filepath.Join(t.TempDir(), "p.json")}, tc.args...))
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestProxyProcess_AppTokenFromEnvAndSIGTERM runs the built binary as a
// user would: the app token from SWITCHBOARD_APP_TOKEN, the discovery
// file in $XDG_CONFIG_HOME/switchboard, removed on SIGTERM.
func TestProxyProcess_AppTokenFromEnvAndSIGTERM(t *testing.T) {
	t.Parallel()
	bin := switchboardBinary(t)
	srv := proxyUpstream(t, "env-secret")
	cfgHome := t.TempDir()
	cmd := exec.Command(bin, "proxy", "--server", srv.URL)
	cmd.Env = nodeproc.Env("SWITCHBOARD_APP_TOKEN=env-secret", "XDG_CONFIG_HOME="+cfgHome, "HOME="+cfgHome)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	disc := filepath.Join(cfgHome, "switchboard", "proxy.json")
	d := waitDiscovery(t, disc)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	if code, body := getWithToken(t, c, d.URL+"/v1/calls/c9/context", d.Token); code != 200 || !strings.Contains(body, `"c9"`) {
		t.Fatalf("context through the proxy process: %d %s\n%s", code, body, out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("proxy exited with %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("proxy did not stop on SIGTERM\n%s", out.String())
	}
	if _, err := os.Stat(disc); !os.IsNotExist(err) {
		t.Errorf("discovery file left after SIGTERM: %v", err)
	}
}

// TestProxyProcess_RealNode runs `switchboard node` and `switchboard
// proxy` as a user would: an app registered with the admin API, its token
// given to the proxy, and a local app talking to the proxy only. The
// proxy holds one event stream on the node, passes the node's answers
// through (404 for an unknown call), and says 503 once the node is gone.
func TestProxyProcess_RealNode(t *testing.T) {
	t.Parallel()
	node := startNode(t, nodeOptions{args: []string{"--data", t.TempDir(), "--admin-token", "adm-proxy-test"}, token: "adm-proxy-test"})
	account := "acme" + randomID()
	provisionAccountAndGroup(t, node, account, "desk")
	r := node.call(t, http.MethodPost, "/v1/accounts/"+account+"/apps",
		map[string]any{"name": "crm", "scopes": []string{"calls:read", "context:write", "events:read"}})
	want(t, r, http.StatusCreated, "POST app")
	app := decode[struct{ Token string }](t, r)
	if app.Token == "" {
		t.Fatalf("no app token in %s", r)
	}

	dir := t.TempDir()
	disc := filepath.Join(dir, "proxy.json")
	cmd := exec.Command(switchboardBinary(t), "proxy", "--server", "http://"+node.Addr, "--discovery", disc,
		"--queue-file", filepath.Join(dir, "queue.json"))
	cmd.Env = nodeproc.Env("SWITCHBOARD_APP_TOKEN=" + app.Token)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("proxy output:\n%s", nodeproc.Tail(out.String()))
		}
	})
	d := waitDiscovery(t, disc)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()

	if code, body := getWithToken(t, c, d.URL+"/v1/calls?user=alice&limit=5", d.Token); code != 200 || !strings.Contains(body, `"calls"`) {
		t.Fatalf("GET /v1/calls through the proxy: %d %s", code, body)
	}
	if code, body := getWithToken(t, c, d.URL+"/v1/calls/no-such-call/context", d.Token); code != 404 {
		t.Fatalf("unknown call through the proxy: %d %s, want the node's 404", code, body)
	}
	eventually(t, 10*time.Second, "the proxy's event stream open on the node", func() (bool, string) {
		m := node.call(t, http.MethodGet, "/metrics", nil)
		line := ""
		for _, l := range strings.Split(string(m.Body), "\n") {
			if strings.HasPrefix(l, "switchboard_events_subscribers ") {
				line = l
			}
		}
		return line == "switchboard_events_subscribers 1", line
	})

	node.stop(t)
	eventually(t, 10*time.Second, "the proxy to see the node gone", func() (bool, string) {
		code, body := getWithToken(t, c, d.URL+"/proxy/status", d.Token)
		return code == 200 && strings.Contains(body, `"online": false`), body
	})
	if code, body := getWithToken(t, c, d.URL+"/v1/calls?user=alice", d.Token); code != http.StatusServiceUnavailable {
		t.Fatalf("GET /v1/calls with the node down: %d %s, want 503", code, body)
	}
}
