package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// registerApp registers an app on account a and returns its token.
func registerApp(t *testing.T, p *proc, a string, body map[string]any) string {
	t.Helper()
	r := p.call(t, http.MethodPost, "/v1/accounts/"+a+"/apps", body)
	want(t, r, http.StatusCreated, "registering an app")
	return decode[struct {
		Token string `json:"token"`
	}](t, r).Token
}

// asApp sends one request with an app token.
func asApp(t *testing.T, p *proc, token, method, path, body string, hdr ...string) reply {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + token}}
	var b any
	if body != "" {
		b = body
		h.Set("Content-Type", "application/merge-patch+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	r, err := p.Do(context.Background(), method, path, b, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

type sseEvent struct{ id, typ, data string }

// subscribe reads GET /v1/events with an app token until the test ends;
// events() returns those received so far.
func subscribe(t *testing.T, p *proc, token, query string) func() []sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+"/v1/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("subscribing: %v %v", err, resp)
	}
	var mu sync.Mutex
	var got []sseEvent
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			case line == "" && cur.typ != "":
				mu.Lock()
				got = append(got, cur)
				mu.Unlock()
				cur = sseEvent{}
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return func() []sseEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]sseEvent(nil), got...)
	}
}

func waitEvents(t *testing.T, events func() []sseEvent, n int) []sseEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if evs := events(); len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events after 10s, want %d: %v", len(events()), n, events())
		}
		time.Sleep(20 * time.Millisecond) // polling the stream reader
	}
}

// TestContext_Abstract1_SIPpCallPopsAndTwoAppsSupplementIt: a SIPp call
// produces call.ringing (with the context), call.answered and call.ended
// on GET /v1/events, in order; then a CRM and a helpdesk supplement its
// context concurrently, both see both, each write attributed to its app;
// a stale If-Match gets 412 and null deletes a member.
func TestContext_Abstract1_SIPpCallPopsAndTwoAppsSupplementIt(t *testing.T) {
	t.Parallel()
	n := startSIPNode(t)
	provisionSIPAccount(t, n, "acme", "")
	vm := sipp.StartUAS(t, sipp.UAS, "127.0.0.1:0")
	putFeature(t, n, "voicemail", vm.Addr)
	putRoutes(t, n, "acme", [3]string{"INVITE", "*97", "voicemail"})
	all := []string{"calls:read", "context:write", "events:read"}
	crm := registerApp(t, n.proc, "acme", map[string]any{"name": "crm", "scopes": all, "user": "alice"})
	helpdesk := registerApp(t, n.proc, "acme", map[string]any{"name": "helpdesk", "scopes": all})
	events := subscribe(t, n.proc, crm, "?type=call.")

	o := deviceCall("acme", "alice", "*97")
	o.Calls, o.CallLength = 1, 50*time.Millisecond
	res := runUAC(t, sipp.UACInviteAuth, n.sip, o)
	wantAllSuccessful(t, "INVITE *97", res, 1)
	id := callIDs(res)[0]
	evs := waitEvents(t, events, 3)
	for i, typ := range []string{"call.ringing", "call.answered", "call.ended"} {
		if evs[i].typ != typ || !strings.Contains(evs[i].data, `"call":"`+id+`"`) {
			t.Fatalf("event %d = %s %s, want %s of call %s", i, evs[i].typ, evs[i].data, typ, id)
		}
	}
	if !strings.Contains(evs[0].data, `"context":{"call":{`) || !strings.Contains(evs[0].data, `"caller":"alice"`) {
		t.Fatalf("call.ringing does not carry the context: %s", evs[0].data)
	}

	// Two apps, concurrently, many writes each.
	path := "/v1/calls/" + id + "/context"
	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for _, app := range []struct{ token, name string }{{crm, "crm"}, {helpdesk, "helpdesk"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				r, err := n.Do(context.Background(), http.MethodPatch, path, fmt.Sprintf(`{"n%d":%d,"by":%q}`, i, i, app.name),
					http.Header{"Authorization": {"Bearer " + app.token}, "Content-Type": {"application/merge-patch+json"}})
				if err != nil || r.Status != http.StatusOK {
					errs <- fmt.Sprintf("%s write %d: %v %s", app.name, i, err, r)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, tok := range []string{crm, helpdesk} {
		r := asApp(t, n.proc, tok, http.MethodGet, path, "")
		want(t, r, http.StatusOK, "reading the context")
		v := decode[struct {
			Live    bool                      `json:"live"`
			Apps    map[string]map[string]any `json:"apps"`
			Version int                       `json:"version"`
			Writers map[string]struct {
				App, User string
			} `json:"writers"`
		}](t, r)
		if v.Version != 20 || len(v.Apps["crm"]) != 11 || len(v.Apps["helpdesk"]) != 11 || v.Apps["crm"]["by"] != "crm" || v.Apps["helpdesk"]["by"] != "helpdesk" {
			t.Fatalf("context after 20 writes: %s", r)
		}
		if v.Writers["crm"].User != "alice" || v.Writers["helpdesk"].App != "helpdesk" || v.Writers["helpdesk"].User != "" || r.Header.Get("ETag") != `"20"` {
			t.Fatalf("writers %+v ETag %s", v.Writers, r.Header.Get("ETag"))
		}
	}
	want(t, asApp(t, n.proc, crm, http.MethodPatch, path, `{"n0":null}`, "If-Match", `"19"`), http.StatusPreconditionFailed, "a stale If-Match")
	r := asApp(t, n.proc, crm, http.MethodPatch, path, `{"n0":null}`, "If-Match", `"20"`)
	want(t, r, http.StatusOK, "null with the current If-Match")
	if v := decode[struct {
		Apps map[string]map[string]any `json:"apps"`
	}](t, r); v.Apps["crm"]["n0"] != nil || v.Apps["helpdesk"]["n0"] == nil || r.Header.Get("ETag") != `"21"` {
		t.Fatalf("null did not delete n0: %s", r)
	}
	// The context.changed event names the writer and the removed member.
	changed := subscribe(t, n.proc, helpdesk, "?type=context.&call="+id)
	evs = waitEvents(t, changed, 21)
	if last := evs[20]; !strings.Contains(last.data, `"removed":["/n0"]`) || !strings.Contains(last.data, `"app":"crm"`) || !strings.Contains(last.data, `"version":21`) {
		t.Fatalf("last context.changed = %s", last.data)
	}
	// The caller's recent calls list it.
	if r := asApp(t, n.proc, crm, http.MethodGet, "/v1/calls", ""); !strings.Contains(string(r.Body), id) {
		t.Fatalf("alice's recent calls: %s", r)
	}
}

// TestProcessCluster_ContextSurvivesSIGKILLOfItsNode: an acknowledged
// PATCH is in PostgreSQL before its 200 (write-through), so when the node
// that hosts the context is killed (-9), the context reactivates on a
// survivor intact.
func TestProcessCluster_ContextSurvivesSIGKILLOfItsNode(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	nodes := startCluster(t, dsn, 3)
	acct := clusterAccountPrefix("ctxkill") + "a"
	want(t, nodes[0].call(t, http.MethodPut, "/v1/accounts/"+acct, map[string]string{}), http.StatusCreated, "PUT account")
	want(t, nodes[0].call(t, http.MethodPut, "/v1/accounts/"+acct+"/groups/hq", map[string]string{}), http.StatusCreated, "PUT group")
	want(t, nodes[0].call(t, http.MethodPut, "/v1/accounts/"+acct+"/devices/alice", map[string]string{"group": "hq", "password": "alice-password-1"}), http.StatusCreated, "PUT device")
	crm := registerApp(t, nodes[0].proc, acct, map[string]any{"name": "crm", "scopes": []string{"calls:read", "context:write"}})
	r := nodes[1].call(t, http.MethodPost, "/v1/calls", map[string]any{"account": acct, "device": "alice", "callee": "5551234", "hold_seconds": 0.2})
	want(t, r, http.StatusCreated, "POST /v1/calls")
	id := decode[callJSON](t, r).ID
	path := "/v1/calls/" + id + "/context"
	for i, n := range nodes {
		want(t, asApp(t, n.proc, crm, http.MethodPatch, path, fmt.Sprintf(`{"k%d":"v%d"}`, i, i)), http.StatusOK, "PATCH through "+n.name)
	}
	var host string
	r = nodes[0].call(t, http.MethodGet, "/debug/actors?scope=cluster&kind=callcontext", nil)
	for _, a := range decode[clActivations](t, r).Activations {
		if a.ID == id {
			host = a.NodeID
		}
	}
	victim := slices.IndexFunc(nodes, func(n *clusterNode) bool { return n.id == host })
	if victim < 0 {
		t.Fatalf("no node hosts the context of %s: %s", id, r)
	}
	nodes[victim].Kill()
	survivor := nodes[(victim+1)%len(nodes)]
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = asApp(t, survivor.proc, crm, http.MethodGet, path, "")
		if r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the context of %s after killing %s: %s", id, nodes[victim].name, r)
		}
		time.Sleep(100 * time.Millisecond) // polling until the survivors route the identity anew
	}
	v := decode[struct {
		Apps    map[string]map[string]string `json:"apps"`
		Version int                          `json:"version"`
	}](t, r)
	if v.Version != 3 || len(v.Apps["crm"]) != 3 || v.Apps["crm"]["k2"] != "v2" {
		t.Fatalf("context after kill -9 of its node: %s", r)
	}
}
