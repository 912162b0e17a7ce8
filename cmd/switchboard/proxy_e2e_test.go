package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/integration"
	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// switchableFront is the server's one address as the proxies see it, in
// front of whichever node process serves now: a node restart on a new
// port looks like a restart in place. While no node serves it answers
// 502, as a load balancer would.
type switchableFront struct {
	srv    *httptest.Server
	target atomic.Pointer[url.URL]
}

func newSwitchableFront(t *testing.T) *switchableFront {
	t.Helper()
	f := &switchableFront{}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(f.target.Load()); pr.Out.Host = pr.In.Host },
		FlushInterval: -1,
		Transport:     &http.Transport{},
		ErrorHandler:  func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	f.srv = httptest.NewServer(rp)
	t.Cleanup(func() { f.srv.Close(); rp.Transport.(*http.Transport).CloseIdleConnections() })
	return f
}

func (f *switchableFront) point(addr string) {
	u, _ := url.Parse("http://" + addr)
	f.target.Store(u)
}

// proxyProc is a running `switchboard proxy` and what its discovery file
// says.
type proxyProc struct {
	d      integration.Discovery
	client *http.Client
}

func startProxyProc(t *testing.T, server, appToken string) *proxyProc {
	t.Helper()
	dir := t.TempDir()
	disc := filepath.Join(dir, "proxy.json")
	cmd := exec.Command(switchboardBinary(t), "proxy", "--server", server, "--discovery", disc,
		"--queue-file", filepath.Join(dir, "queue.json"), "--backoff-max", "1s")
	cmd.Env = nodeproc.Env("SWITCHBOARD_APP_TOKEN=" + appToken)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p := &proxyProc{client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		p.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("proxy output:\n%s", nodeproc.Tail(out.String()))
		}
	})
	p.d = waitDiscovery(t, disc)
	return p
}

// do sends a request to the proxy with its local token.
func (p *proxyProc) do(t *testing.T, method, path, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.d.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+p.d.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s through the proxy: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// localEvent is one frame of a proxy's local event stream.
type localEvent struct{ id, typ, data string }

// subscribeLocal opens GET /v1/events on the proxy, as a local app, and
// returns a function that reports the frames so far.
func (p *proxyProc) subscribeLocal(t *testing.T, query string) func() []localEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.d.URL+"/v1/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+p.d.Token)
	c := &http.Client{Transport: &http.Transport{}}
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("local event stream: %v %v", err, resp)
	}
	var mu sync.Mutex
	var got []localEvent
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var e localEvent
		for sc.Scan() {
			l := sc.Text()
			switch {
			case l == "":
				if e.typ != "" {
					mu.Lock()
					got = append(got, e)
					mu.Unlock()
				}
				e = localEvent{}
			case strings.HasPrefix(l, "id: "):
				e.id = l[4:]
			case strings.HasPrefix(l, "event: "):
				e.typ = l[7:]
			case strings.HasPrefix(l, "data: "):
				e.data += l[6:]
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done; c.CloseIdleConnections() })
	return func() []localEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]localEvent(nil), got...)
	}
}

// contextView is the part of a context the test reads.
type contextView struct {
	Apps    map[string]map[string]any `json:"apps"`
	Version int                       `json:"version"`
}

// TestProxyProcess_Abstract1_TwoAppsThroughProxiesAcrossServerRestart is
// issue 11's "done when": a CRM and a helpdesk on a user's machine,
// through `switchboard proxy`, pop the context of a SIPp call, supplement
// it, and see each other's data, across a server restart. While the node
// is down the helpdesk reads its cached copy (stale header) and writes
// offline (202); after the restart the write is replayed with its
// If-Match, and the CRM's local event stream, resumed by the proxy, has
// every context change in order.
func TestProxyProcess_Abstract1_TwoAppsThroughProxiesAcrossServerRestart(t *testing.T) {
	t.Parallel()
	sipp.Require(t)
	data := t.TempDir()
	nodeArgs := append([]string{"--name", "sip1", "--data", data}, sipArgs...)
	n := sipEndpoints(t, startNode(t, nodeOptions{args: nodeArgs}), "sip1")
	provisionSIPAccount(t, n, "acme", "")
	vm := sipp.StartUAS(t, sipp.UAS, "127.0.0.1:0")
	putFeature(t, n, "voicemail", vm.Addr)
	putRoutes(t, n, "acme", [3]string{"INVITE", "*97", "voicemail"})
	tokens := map[string]string{}
	for _, app := range []string{"crm", "helpdesk"} {
		r := n.call(t, http.MethodPost, "/v1/accounts/acme/apps",
			map[string]any{"name": app, "scopes": []string{"calls:read", "context:write", "events:read"}})
		want(t, r, http.StatusCreated, "POST app "+app)
		tokens[app] = decode[struct{ Token string }](t, r).Token
	}
	front := newSwitchableFront(t)
	front.point(n.Addr)
	crm := startProxyProc(t, front.srv.URL, tokens["crm"])
	helpdesk := startProxyProc(t, front.srv.URL, tokens["helpdesk"])
	crmEvents := crm.subscribeLocal(t, "?type=call.ringing,context.changed")

	o := deviceCall("acme", "alice", "*97")
	o.Calls, o.CallLength = 1, 50*time.Millisecond
	res := runUAC(t, sipp.UACInviteAuth, n.sip, o)
	wantAllSuccessful(t, "INVITE *97", res, 1)
	id := callIDs(res)[0]
	eventually(t, 10*time.Second, "call.ringing at the CRM through its proxy (the pop)", func() (bool, string) {
		evs := crmEvents()
		return len(evs) > 0 && evs[0].typ == "call.ringing" && strings.Contains(evs[0].data, id), fmt.Sprint(evs)
	})

	path := "/v1/calls/" + id + "/context"
	want(t, crm.do(t, http.MethodPatch, path, `{"crm_case":"42"}`), http.StatusOK, "CRM supplements the context")
	want(t, helpdesk.do(t, http.MethodPatch, path, `{"ticket":"T-7"}`), http.StatusOK, "helpdesk supplements the context")
	read := func(p *proxyProc, who string) (contextView, reply) {
		r := p.do(t, http.MethodGet, path, "")
		want(t, r, http.StatusOK, who+" reads the context")
		return decode[contextView](t, r), r
	}
	for who, p := range map[string]*proxyProc{"crm": crm, "helpdesk": helpdesk} {
		v, _ := read(p, who)
		if v.Apps["crm"]["crm_case"] != "42" || v.Apps["helpdesk"]["ticket"] != "T-7" {
			t.Fatalf("%s sees %+v, want both apps' data", who, v.Apps)
		}
	}
	_, r := read(helpdesk, "helpdesk")
	etag := r.Header.Get("ETag")

	// The server restarts: down, then the same store on a new process.
	n.stop(t)
	eventually(t, 10*time.Second, "the helpdesk's proxy to see the node down", func() (bool, string) {
		r := helpdesk.do(t, http.MethodGet, "/proxy/status", "")
		return strings.Contains(string(r.Body), `"online": false`), r.String()
	})
	if v, r := read(helpdesk, "helpdesk, offline"); !strings.HasPrefix(r.Header.Get(integration.HeaderCache), "stale") || v.Apps["crm"]["crm_case"] != "42" {
		t.Fatalf("offline read: %s %+v, want the cached copy marked stale", r.Header.Get(integration.HeaderCache), v.Apps)
	}
	r = helpdesk.do(t, http.MethodPatch, path, `{"ticket_state":"open"}`, "If-Match", etag)
	want(t, r, http.StatusAccepted, "offline write")

	n2 := startNode(t, nodeOptions{args: nodeArgs})
	front.point(n2.Addr)
	eventually(t, 20*time.Second, "the offline write replayed", func() (bool, string) {
		r := helpdesk.do(t, http.MethodGet, "/proxy/queue", "")
		var q struct {
			Results []struct{ Status int } `json:"results"`
		}
		_ = json.Unmarshal(r.Body, &q)
		return len(q.Results) == 1 && q.Results[0].Status == http.StatusOK, r.String()
	})
	eventually(t, 10*time.Second, "the CRM to read the helpdesk's offline write, fresh", func() (bool, string) {
		r := crm.do(t, http.MethodGet, path, "")
		v := decode[contextView](t, r)
		return r.Status == 200 && r.Header.Get(integration.HeaderCache) == "fresh" && v.Apps["helpdesk"]["ticket_state"] == "open" &&
			v.Apps["crm"]["crm_case"] == "42", r.String()
	})
	// Every context change reached the CRM's local stream once, in order,
	// across the restart: crm_case, ticket, ticket_state.
	eventually(t, 10*time.Second, "three context.changed at the CRM", func() (bool, string) {
		var ids []string
		for _, e := range crmEvents() {
			if e.typ == "context.changed" {
				ids = append(ids, e.id)
			}
		}
		return len(ids) == 3, fmt.Sprint(ids)
	})
	var last int
	for _, e := range crmEvents() {
		if e.id == "" {
			continue // the proxy's own proxy.Status frames carry no id
		}
		var seq int
		if _, err := fmt.Sscan(e.id, &seq); err != nil || seq <= last {
			t.Fatalf("CRM's stream out of order or repeated at %q: %v", e.id, crmEvents())
		}
		last = seq
	}
}
