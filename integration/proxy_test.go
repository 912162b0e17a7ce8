package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-pbx/switchboard/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// harness is a proxy in front of a fake server, with a fake clock that
// the proxy's backoff advances instead of waiting.
type harness struct {
	t      testing.TB
	fake   *fakeServer
	p      *Proxy
	clk    *clock.Fake
	client *http.Client

	mu     sync.Mutex
	sleeps []time.Duration
}

// startProxy runs a proxy against fake. edit adjusts its Config.
func startProxy(t testing.TB, fake *fakeServer, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, fake: fake, clk: clock.NewFake(t0),
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	cfg := DefaultConfig()
	cfg.Server = fake.srv.URL
	cfg.Token = fake.token
	cfg.AllowOrigins = []string{"https://crm.example.com"}
	cfg.Clock = h.clk
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		h.mu.Lock()
		h.sleeps = append(h.sleeps, d)
		h.mu.Unlock()
		h.clk.Advance(d)
		return ctx.Err()
	}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = p.Close()
		if err := <-runErr; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Run: %v", err)
		}
		h.client.CloseIdleConnections()
	})
	return h
}

// do sends a request to the proxy with the local token.
func (h *harness) do(method, path, body string, hdr map[string]string) *http.Response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.p.URL()+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.p.LocalToken())
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readBody reads and closes resp's body.
func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// localSub is a local app's event stream through the proxy.
type localSub struct {
	frames chan frame
}

// subscribe opens GET /v1/events on the proxy; lastID "" means none.
func (h *harness) subscribe(lastID string) *localSub {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.p.URL()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.p.LocalToken())
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		h.t.Fatalf("GET /v1/events: %d %s", resp.StatusCode, readBody(h.t, resp))
	}
	s := &localSub{frames: make(chan frame, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.frames)
		rd := newSSEReader(resp.Body)
		for {
			f, err := rd.next(nil)
			if err != nil {
				return
			}
			s.frames <- f
		}
	}()
	h.t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return s
}

// next returns the next frame that is not the proxy's own status, or
// fails after 10 s.
func (s *localSub) next(t testing.TB, skipProxy bool) frame {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				t.Fatal("the local event stream ended")
			}
			if skipProxy && strings.HasPrefix(f.Event, "proxy.") {
				continue
			}
			return f
		case <-timeout:
			t.Fatal("no event within 10 s")
		}
	}
}

// wantIDs reads frames and checks their ids in order.
func (s *localSub) wantIDs(t testing.TB, ids ...uint64) {
	t.Helper()
	for _, want := range ids {
		f := s.next(t, true)
		if got, _ := f.seq(); got != want || f.Event == "reset" {
			t.Fatalf("event %q id %q, want id %d", f.Event, f.ID, want)
		}
	}
}

// TestProxy_EventsResumeAfter30sOutage_NothingLost covers issue 11's
// "events resume after a 30 s server outage with nothing lost": the
// proxy's one upstream stream reconnects with backoff (100 ms doubling,
// jittered) and resumes by Last-Event-ID, and every local app gets every
// event once, in order; a late app resumes from the proxy's buffer.
func TestProxy_EventsResumeAfter30sOutage_NothingLost(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	for range 3 {
		fake.publish("call.ringing", "c1")
	}
	h := startProxy(t, fake, nil)
	s1 := h.subscribe("")
	s1.wantIDs(t, 1, 2, 3)
	s2 := h.subscribe("2")
	s2.wantIDs(t, 3)

	fake.setDown(true)
	eventually(t, "the proxy to see the server down", func() bool { return !h.p.Status().Online })
	for range 5 {
		fake.publish("call.answered", "c1") // 4..8, while the proxy cannot reach the server
	}
	eventually(t, "30 s of outage on the proxy's clock", func() bool { return h.clk.Now().Sub(t0) >= 30*time.Second })
	fake.setDown(false)
	fake.publish("call.ended", "c1") // 9
	s1.wantIDs(t, 4, 5, 6, 7, 8, 9)
	s2.wantIDs(t, 4, 5, 6, 7, 8, 9)
	s3 := h.subscribe("5")
	s3.wantIDs(t, 6, 7, 8, 9)

	_, maxOpen, resumes := fake.stats()
	if maxOpen != 1 {
		t.Errorf("%d upstream streams open at once, want 1 per proxy", maxOpen)
	}
	if last := resumes[len(resumes)-1]; last != "3" {
		t.Errorf("the reconnect resumed after %q, want Last-Event-ID 3", last)
	}
	// The waits between attempts: 100 ms doubling, each in [d/2, d].
	h.mu.Lock()
	sleeps := append([]time.Duration(nil), h.sleeps...)
	h.mu.Unlock()
	if len(sleeps) < 5 {
		t.Fatalf("only %d reconnect waits over a 30 s outage", len(sleeps))
	}
	for i, d := range sleeps[:min(len(sleeps), 10)] {
		hi := min(100*time.Millisecond<<i, 30*time.Second)
		if d < hi/2 || d > hi {
			t.Errorf("wait %d was %s, want within [%s, %s]", i, d, hi/2, hi)
		}
	}
}

// TestProxy_SilentStreamReopenedAfterStallTimeout: an upstream event
// stream that sends nothing for StallTimeout, on the proxy's clock, is
// dropped and opened again, resuming after the last event it delivered.
func TestProxy_SilentStreamReopenedAfterStallTimeout(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	fake.publish("call.ringing", "c1")
	h := startProxy(t, fake, nil)
	h.subscribe("").wantIDs(t, 1) // read upstream: the stall timer restarted at t0

	h.clk.Advance(h.p.cfg.StallTimeout - time.Second)
	if _, _, resumes := fake.stats(); len(resumes) != 1 {
		t.Fatalf("the stream was reopened %d times before StallTimeout", len(resumes)-1)
	}
	h.clk.Advance(time.Second)
	eventually(t, "the silent stream to be reopened", func() bool {
		_, _, resumes := fake.stats()
		return len(resumes) == 2
	})
	if _, _, resumes := fake.stats(); resumes[1] != "1" {
		t.Errorf("the reopened stream resumed after %q, want Last-Event-ID 1", resumes[1])
	}
}

// TestProxy_ServerResetPassesThrough: when the proxy's resume point is
// past the server's retention, the server's "event: reset" reaches the
// local apps, then the events after it.
func TestProxy_ServerResetPassesThrough(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	fake.publish("call.ringing", "c1")
	h := startProxy(t, fake, nil)
	s := h.subscribe("")
	s.wantIDs(t, 1)
	fake.setDown(true)
	eventually(t, "the proxy to see the server down", func() bool { return !h.p.Status().Online })
	for range 4 {
		fake.publish("call.answered", "c1") // 2..5
	}
	fake.prune(3)
	fake.setDown(false)
	if f := s.next(t, true); f.Event != "reset" || f.ID != "3" {
		t.Fatalf("got %q id %q, want the server's reset with id 3", f.Event, f.ID)
	}
	s.wantIDs(t, 4, 5)
}

// TestProxy_LocalResumeOlderThanBufferGetsReset: a local app resuming
// from before what the proxy kept is told so, in the server's layout.
func TestProxy_LocalResumeOlderThanBufferGetsReset(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	h := startProxy(t, fake, func(c *Config) { c.EventBuffer = 3 })
	for range 6 {
		fake.publish("call.ringing", "c1")
	}
	eventually(t, "the proxy to read 6 events", func() bool { return h.p.Status().LastEventID == 6 })
	s := h.subscribe("1")
	f := s.next(t, true)
	if f.Event != "reset" || f.ID != "3" || !strings.Contains(f.Data, `"after":1`) {
		t.Fatalf("got %q id %q %s, want a reset with id 3 after 1", f.Event, f.ID, f.Data)
	}
	s.wantIDs(t, 4, 5, 6)
}

// getContext reads a context through the proxy.
func (h *harness) getContext(call string) (*http.Response, string) {
	h.t.Helper()
	resp := h.do(http.MethodGet, "/v1/calls/"+call+"/context", "", nil)
	return resp, readBody(h.t, resp)
}

// TestProxy_ReadsServedFromCacheWhileServerDown covers "reads are served
// from cache while the server is down" and the abstract's memory cache
// that apps read: the copy comes with a header saying it is stale and
// how old.
func TestProxy_ReadsServedFromCacheWhileServerDown(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	fake.addCall("c2")
	fake.patchDirect("c1", "helpdesk", map[string]any{"ticket": "T-1"})
	h := startProxy(t, fake, nil)
	resp, fresh := h.getContext("c1")
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderCache) != "fresh" || !strings.Contains(fresh, "T-1") {
		t.Fatalf("fresh read: %d %q %s", resp.StatusCode, resp.Header.Get(HeaderCache), fresh)
	}
	etag := resp.Header.Get("ETag")

	fake.setDown(true)
	h.clk.Advance(7 * time.Second)
	resp, stale := h.getContext("c1")
	if resp.StatusCode != http.StatusOK || stale != fresh {
		t.Fatalf("stale read: %d %s, want 200 with the copy %s", resp.StatusCode, stale, fresh)
	}
	age := h.clk.Now().Sub(t0) / time.Second // the backoff moves the clock too
	if got := resp.Header.Get(HeaderCache); !strings.HasPrefix(got, "stale; age=") {
		t.Errorf("%s: %q, want stale; age=N", HeaderCache, got)
	}
	if got, _ := strconv.Atoi(resp.Header.Get("Age")); got < 7 || time.Duration(got) > age {
		t.Errorf("Age %q, want 7..%d", resp.Header.Get("Age"), age)
	}
	if resp.Header.Get("ETag") != etag {
		t.Errorf("stale ETag %q, want %q", resp.Header.Get("ETag"), etag)
	}
	resp, _ = h.getContext("c2")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("uncached read while down: %d, want 503", resp.StatusCode)
	}
	fake.setDown(false)
	eventually(t, "a fresh read after the server is back", func() bool {
		resp, _ := h.getContext("c1")
		return resp.Header.Get(HeaderCache) == "fresh"
	})
}

// queueState is GET /proxy/queue.
type queueState struct {
	Online  bool          `json:"online"`
	Pending []queuedWrite `json:"pending"`
	Results []writeResult `json:"results"`
}

func (h *harness) queue() queueState {
	h.t.Helper()
	var q queueState
	if err := json.Unmarshal([]byte(readBody(h.t, h.do(http.MethodGet, "/proxy/queue", "", nil))), &q); err != nil {
		h.t.Fatal(err)
	}
	return q
}

// patch writes through the proxy with If-Match.
func (h *harness) patch(call, body, ifMatch string) *http.Response {
	h.t.Helper()
	hdr := map[string]string{"Content-Type": "application/merge-patch+json"}
	if ifMatch != "" {
		hdr["If-Match"] = ifMatch
	}
	return h.do(http.MethodPatch, "/v1/calls/"+call+"/context", body, hdr)
}

// TestProxy_OfflineWrite covers "an offline write is replayed, or comes
// back as 412": a PATCH made while the server is down is answered 202
// and queued; on reconnect it is replayed with its If-Match; if the
// context changed meanwhile the app sees the server's 412 (GET
// /proxy/queue and a proxy.write event), and the other write stands.
func TestProxy_OfflineWrite(t *testing.T) {
	for _, tc := range []struct {
		name       string
		meanwhile  bool // another app writes while the proxy is cut off
		wantStatus int
	}{
		{"replayed", false, http.StatusOK},
		{"conflict is 412", true, http.StatusPreconditionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeServer(t)
			fake.addCall("c1")
			h := startProxy(t, fake, func(c *Config) { c.QueueFile = filepath.Join(t.TempDir(), "queue.json") })
			s := h.subscribe("")
			resp, _ := h.getContext("c1")
			etag := resp.Header.Get("ETag")

			fake.setDown(true)
			eventually(t, "the proxy to see the server down", func() bool { return !h.p.Status().Online })
			resp = h.patch("c1", `{"crm_case":"42"}`, etag)
			if resp.StatusCode != http.StatusAccepted || resp.Header.Get(HeaderQueued) == "" {
				t.Fatalf("offline PATCH: %d %s, want 202 with %s", resp.StatusCode, readBody(t, resp), HeaderQueued)
			}
			id := resp.Header.Get(HeaderQueued)
			if q := h.queue(); len(q.Pending) != 1 || q.Pending[0].ID != id || q.Pending[0].IfMatch != etag {
				t.Fatalf("queue %+v, want %s pending with If-Match %s", q, id, etag)
			}
			resp, _ = h.getContext("c1")
			if resp.Header.Get(HeaderPending) != "1" {
				t.Errorf("stale read: %s %q, want 1", HeaderPending, resp.Header.Get(HeaderPending))
			}
			if tc.meanwhile {
				fake.patchDirect("c1", "crm", map[string]any{"crm_case": "41"})
			}
			fake.setDown(false)
			eventually(t, "the replay", func() bool { return len(h.queue().Results) == 1 })
			q := h.queue()
			if len(q.Pending) != 0 || q.Results[0].ID != id || q.Results[0].Status != tc.wantStatus {
				t.Fatalf("after replay: %+v, want %s done with %d", q, id, tc.wantStatus)
			}
			want := "42"
			if tc.meanwhile {
				want = "41" // not silently overwritten
			}
			if got := fake.app("c1", "crm")["crm_case"]; got != want {
				t.Errorf("server's crm_case = %v, want %s", got, want)
			}
			for {
				f := s.next(t, false)
				if f.Event != "proxy.write" {
					continue
				}
				var r writeResult
				if err := json.Unmarshal([]byte(f.Data), &r); err != nil || r.ID != id || r.Status != tc.wantStatus {
					t.Fatalf("proxy.write %s, want %s with %d", f.Data, id, tc.wantStatus)
				}
				break
			}
		})
	}
}

// TestProxy_OfflineQueueSurvivesRestart: with a queue file, writes queued
// by one launch are replayed by the next.
func TestProxy_OfflineQueueSurvivesRestart(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	qf := filepath.Join(t.TempDir(), "queue.json")
	h := startProxy(t, fake, func(c *Config) { c.QueueFile = qf })
	fake.setDown(true)
	eventually(t, "the proxy to see the server down", func() bool { return !h.p.Status().Online })
	if resp := h.patch("c1", `{"note":"while offline"}`, `"v1"`); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("offline PATCH: %d", resp.StatusCode)
	}
	_ = h.p.Close()
	if st, err := os.Stat(qf); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("queue file: %v %v, want mode 0600", st, err)
	}
	fake.setDown(false)
	h2 := startProxy(t, fake, func(c *Config) { c.QueueFile = qf })
	eventually(t, "the replay by the next launch", func() bool { return h2.p.Status().Queued == 0 })
	if got := fake.app("c1", "crm")["note"]; got != "while offline" {
		t.Errorf("server's note = %v", got)
	}
}

// TestProxy_PatchForwardedWhenOnline: the proxy adds the app token and
// passes the server's answers through, 412 included.
func TestProxy_PatchForwardedWhenOnline(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	h := startProxy(t, fake, nil)
	resp := h.patch("c1", `{"a":1}`, `"v1"`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"v2"` {
		t.Fatalf("PATCH: %d %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if resp := h.patch("c1", `{"a":2}`, `"v1"`); resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale PATCH: %d, want 412", resp.StatusCode)
	}
	if resp := h.do(http.MethodGet, "/v1/calls?user=alice&limit=5", "", nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(readBody(t, resp), `"user":"alice"`) {
		t.Fatalf("GET /v1/calls: %d", resp.StatusCode)
	}
}

// TestProxy_LocalSecurity covers issue 11's local security: the local
// token (401 without it: a fixed header is no secret), the Origin allow
// list on plain requests, SSE and WebSocket-style upgrades (403), CORS
// preflights for allowed origins only, and the Host check against DNS
// rebinding.
func TestProxy_LocalSecurity(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	h := startProxy(t, fake, nil)
	good, bad := "https://crm.example.com", "https://evil.example"
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	port := strconv.Itoa(h.p.port)
	for _, tc := range []struct {
		name, method, path string
		token              string // "" none, "good", or a wrong one
		hdr                map[string]string
		want               int
	}{
		{"no token", "GET", "/v1/calls/c1/context", "", nil, 401},
		{"wrong token", "GET", "/v1/calls/c1/context", "x" + strings.Repeat("0", 63), nil, 401},
		{"fixed header is no token", "GET", "/v1/calls/c1/context", "", map[string]string{"X-Requested-With": "XMLHttpRequest"}, 401},
		{"native app with token", "GET", "/v1/calls/c1/context", "good", nil, 200},
		{"allowed origin", "GET", "/v1/calls/c1/context", "good", map[string]string{"Origin": good}, 200},
		{"bad origin, plain", "GET", "/v1/calls/c1/context", "good", map[string]string{"Origin": bad}, 403},
		{"bad origin, PATCH", "PATCH", "/v1/calls/c1/context", "good", map[string]string{"Origin": bad, "Content-Type": "application/merge-patch+json"}, 403},
		{"bad origin, SSE", "GET", "/v1/events", "good", map[string]string{"Origin": bad, "Accept": "text/event-stream"}, 403},
		{"bad origin, SSE with query token", "GET", "/v1/events?access_token=" + h.p.LocalToken(), "", map[string]string{"Origin": bad}, 403},
		{"bad origin, upgrade", "GET", "/v1/events", "good", with(upgrade, "Origin", bad), 403},
		{"null origin", "GET", "/v1/calls/c1/context", "good", map[string]string{"Origin": "null"}, 403},
		{"upgrade, allowed origin", "GET", "/v1/events", "good", with(upgrade, "Origin", good), 501},
		{"preflight, bad origin", "OPTIONS", "/v1/calls/c1/context", "", map[string]string{"Origin": bad, "Access-Control-Request-Method": "PATCH"}, 403},
		{"preflight, allowed origin", "OPTIONS", "/v1/calls/c1/context", "", map[string]string{"Origin": good, "Access-Control-Request-Method": "PATCH"}, 204},
		{"preflight without origin", "OPTIONS", "/v1/calls/c1/context", "", map[string]string{"Access-Control-Request-Method": "PATCH"}, 403},
		{"rebound host", "GET", "/v1/calls/c1/context", "good", map[string]string{"Host": "evil.example:" + port}, 403},
		{"rebound host, no port", "GET", "/v1/calls/c1/context", "good", map[string]string{"Host": "evil.example"}, 403},
		{"loopback host, other port", "GET", "/v1/calls/c1/context", "good", map[string]string{"Host": "127.0.0.1:1"}, 403},
		{"localhost host", "GET", "/v1/calls/c1/context", "good", map[string]string{"Host": "localhost:" + port}, 200},
		{"status needs token", "GET", "/proxy/queue", "", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, h.p.URL()+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			switch tc.token {
			case "":
			case "good":
				req.Header.Set("Authorization", "Bearer "+h.p.LocalToken())
			default:
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			for k, v := range tc.hdr {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
			acao := resp.Header.Get("Access-Control-Allow-Origin")
			if o := tc.hdr["Origin"]; o == good && acao != good {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", acao, good)
			} else if o != good && acao != "" {
				t.Errorf("Access-Control-Allow-Origin %q for origin %q", acao, o)
			}
		})
	}
}

// TestProxy_DiscoveryFile covers "the discovery file is mode 0600": it
// holds the port and the per-launch token (256 bits), works as
// documented, and is removed when the proxy stops.
func TestProxy_DiscoveryFile(t *testing.T) {
	fake := newFakeServer(t)
	fake.addCall("c1")
	path := filepath.Join(t.TempDir(), "cfg", "switchboard", "proxy.json")
	h := startProxy(t, fake, func(c *Config) { c.Discovery = path })
	eventually(t, "the discovery file", func() bool { _, err := os.Stat(path); return err == nil })
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("discovery file mode %v, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Errorf("discovery folder mode %v, want 0700", dst.Mode().Perm())
	}
	d, err := ReadDiscovery(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Port != h.p.port || d.Token != h.p.LocalToken() || d.URL != h.p.URL() || d.Version != 1 {
		t.Fatalf("discovery %+v, want port %d and the local token", d, h.p.port)
	}
	if len(d.Token) < 32 { // 128 bits in hex at the least
		t.Errorf("local token %d hex digits, want at least 32", len(d.Token))
	}
	req, _ := http.NewRequest(http.MethodGet, d.URL+"/v1/calls/c1/context", nil)
	req.Header.Set("Authorization", "Bearer "+d.Token)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if readBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the discovered token: %d", resp.StatusCode)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDiscovery(path); err == nil {
		t.Error("ReadDiscovery accepted a file others can read")
	}
	_ = os.Chmod(path, 0o600)
	_ = h.p.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("discovery file left after Close: %v", err)
	}
}

// TestProxy_TwoLaunchesDrawDifferentTokens: the local token is per launch.
func TestProxy_TwoLaunchesDrawDifferentTokens(t *testing.T) {
	fake := newFakeServer(t)
	a, b := startProxy(t, fake, nil), startProxy(t, fake, nil)
	if a.p.LocalToken() == b.p.LocalToken() || a.p.port == b.p.port {
		t.Fatal("two launches share a token or a port")
	}
}
