package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeServer mimics the server's integration API (issue 11, section 3
// and 4) closely enough for the proxy: a context per call with an ETag
// ("v<version>"), PATCH as a merge patch into the app's namespace with
// If-Match and 412, GET /v1/calls, and GET /v1/events as SSE with the
// sequence as id, Last-Event-ID resume and "event: reset" past its
// retention. setDown(true) makes it drop every connection, as a dead
// server would.
type fakeServer struct {
	t     testing.TB
	srv   *httptest.Server
	token string

	mu       sync.Mutex
	down     bool
	downCh   chan struct{} // closed when the server goes down
	contexts map[string]*fakeContext
	events   []fakeEvent
	pruned   uint64 // events up to this sequence are gone
	seq      uint64
	wake     chan struct{}
	streams  int // open event streams
	maxOpen  int
	resumes  []string // Last-Event-ID of every stream request
	patches  int      // PATCHes applied
}

type fakeContext struct {
	version int
	apps    map[string]map[string]any
}

type fakeEvent struct {
	seq  uint64
	typ  string
	data string
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, token: "app-token-1", contexts: map[string]*fakeContext{},
		downCh: make(chan struct{}), wake: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/calls", f.listCalls)
	mux.HandleFunc("GET /v1/calls/{id}/context", f.getContext)
	mux.HandleFunc("PATCH /v1/calls/{id}/context", f.patchContext)
	mux.HandleFunc("GET /v1/events", f.streamEvents)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down := f.down
		f.mu.Unlock()
		if down {
			// A dead server: the connection closes with no answer.
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = c.Close()
			}
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, `{"error":"bad app token"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// setDown takes the server down (every connection, streams included, is
// dropped) or brings it back.
func (f *fakeServer) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if down == f.down {
		return
	}
	f.down = down
	if down {
		close(f.downCh)
	} else {
		f.downCh = make(chan struct{})
	}
}

// addCall creates a call's context with version 1.
func (f *fakeServer) addCall(call string) {
	f.mu.Lock()
	f.contexts[call] = &fakeContext{version: 1, apps: map[string]map[string]any{}}
	f.mu.Unlock()
}

// publish appends an event, as the server does on a call or context
// change, even while "down" (the server's store goes on; only this
// proxy's path to it is cut).
func (f *fakeServer) publish(typ, call string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.publishLocked(typ, call, nil)
}

func (f *fakeServer) publishLocked(typ, call string, extra map[string]any) uint64 {
	f.seq++
	e := map[string]any{"seq": f.seq, "type": typ, "call": call, "user": "alice"}
	for k, v := range extra {
		e[k] = v
	}
	b, _ := json.Marshal(e)
	f.events = append(f.events, fakeEvent{seq: f.seq, typ: typ, data: string(b)})
	close(f.wake)
	f.wake = make(chan struct{})
	return f.seq
}

// prune drops the events up to seq (retention).
func (f *fakeServer) prune(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.events) > 0 && f.events[0].seq <= seq {
		f.events = f.events[1:]
	}
	f.pruned = seq
}

// patchDirect is another app writing the context directly on the server.
func (f *fakeServer) patchDirect(call, app string, patch map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applyLocked(call, app, patch)
}

func (f *fakeServer) applyLocked(call, app string, patch map[string]any) {
	c := f.contexts[call]
	ns := c.apps[app]
	if ns == nil {
		ns = map[string]any{}
		c.apps[app] = ns
	}
	for k, v := range patch {
		if v == nil {
			delete(ns, k)
		} else {
			ns[k] = v
		}
	}
	c.version++
	f.patches++
	f.publishLocked("context.changed", call, map[string]any{"data": map[string]any{"writer": app, "version": c.version}})
}

// app returns a copy of one app's namespace of a call's context.
func (f *fakeServer) app(call, app string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]any{}
	for k, v := range f.contexts[call].apps[app] {
		out[k] = v
	}
	return out
}

func (f *fakeServer) etagLocked(c *fakeContext) string { return fmt.Sprintf(`"v%d"`, c.version) }

func (f *fakeServer) writeContextLocked(w http.ResponseWriter, call string, c *fakeContext) {
	b, _ := json.Marshal(map[string]any{"call": map[string]any{"id": call}, "live": nil, "apps": c.apps, "version": c.version})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", f.etagLocked(c))
	_, _ = w.Write(b)
}

func (f *fakeServer) listCalls(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"calls":[],"user":%q}`, r.URL.Query().Get("user"))
}

func (f *fakeServer) getContext(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.contexts[r.PathValue("id")]
	if !ok {
		http.Error(w, `{"error":"no such call"}`, http.StatusNotFound)
		return
	}
	f.writeContextLocked(w, r.PathValue("id"), c)
}

// patchContext merges into the "crm" namespace: the app the token is for.
func (f *fakeServer) patchContext(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/merge-patch+json" {
		http.Error(w, `{"error":"Content-Type must be application/merge-patch+json"}`, http.StatusUnsupportedMediaType)
		return
	}
	var patch map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &patch); err != nil {
		http.Error(w, `{"error":"not a JSON object","field":"body"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	call := r.PathValue("id")
	c, ok := f.contexts[call]
	if !ok {
		http.Error(w, `{"error":"no such call"}`, http.StatusNotFound)
		return
	}
	if im := r.Header.Get("If-Match"); im != "" && im != f.etagLocked(c) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", f.etagLocked(c))
		w.WriteHeader(http.StatusPreconditionFailed)
		fmt.Fprintf(w, `{"error":"the context changed: it is now %s, not %s"}`, f.etagLocked(c), im)
		return
	}
	f.applyLocked(call, "crm", patch)
	f.writeContextLocked(w, call, c)
}

func (f *fakeServer) streamEvents(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	f.mu.Lock()
	f.resumes = append(f.resumes, r.Header.Get("Last-Event-ID"))
	f.streams++
	f.maxOpen = max(f.maxOpen, f.streams)
	down := f.downCh
	reset := ""
	if after < f.pruned {
		reset = fmt.Sprintf("id: %d\nevent: reset\ndata: {\"after\":%d,\"next\":%d,\"reason\":\"expired\"}\n\n", f.pruned, after, f.pruned+1)
		after = f.pruned
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.streams--
		f.mu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n\n: hello\n\n"+reset)
	_ = rc.Flush()
	for {
		f.mu.Lock()
		var out strings.Builder
		for _, e := range f.events {
			if e.seq > after {
				fmt.Fprintf(&out, "id: %d\nevent: %s\ndata: %s\n\n", e.seq, e.typ, e.data)
				after = e.seq
			}
		}
		wake := f.wake
		f.mu.Unlock()
		if out.Len() > 0 {
			if _, err := io.WriteString(w, out.String()); err != nil || rc.Flush() != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-down:
			if c, _, err := rc.Hijack(); err == nil {
				_ = c.Close()
			}
			return
		case <-wake:
		}
	}
}

// stats returns the stream counters and the resume points asked for.
func (f *fakeServer) stats() (open, maxOpen int, resumes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams, f.maxOpen, append([]string(nil), f.resumes...)
}
