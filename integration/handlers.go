package integration

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers the proxy adds to its answers.
const (
	// HeaderCache says where a context read came from: "fresh" (the
	// server answered just now) or "stale; age=<seconds>" (the server is
	// unreachable; this is the copy last read, Age seconds old).
	HeaderCache = "X-Switchboard-Proxy-Cache"
	// HeaderQueued names the queued write in a 202 answer to a PATCH made
	// while the server is unreachable (see GET /proxy/queue).
	HeaderQueued = "X-Switchboard-Proxy-Queued"
	// HeaderPending counts the call's writes still queued, on a stale
	// read: the copy does not include them yet.
	HeaderPending = "X-Switchboard-Proxy-Pending"
)

// maxUpstreamBody bounds a body read from the server.
const maxUpstreamBody = 16 << 20

// Handler is the proxy's local API, guarded (see security.go). Run serves
// it; tests may mount it elsewhere.
func (p *Proxy) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/calls", p.listCalls)
	mux.HandleFunc("GET /v1/calls/{id}/context", p.getContext)
	mux.HandleFunc("PATCH /v1/calls/{id}/context", p.patchContext)
	mux.HandleFunc("GET /v1/events", p.events)
	mux.HandleFunc("GET /proxy/queue", p.queueStatus)
	mux.HandleFunc("GET /proxy/status", p.status)
	return p.guard(mux)
}

// errorBody is the server's error layout, kept so that apps parse one.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the app went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, errorBody{Error: msg, Field: field})
}

// upstreamReply is a forwarded request's answer, read whole.
type upstreamReply struct {
	status int
	header http.Header
	body   []byte
}

// unreachable reports whether a forwarded request's outcome means the
// server did not take it: no answer, or a gateway's 502/503/504.
func unreachable(rep *upstreamReply, err error) bool {
	if err != nil {
		return true
	}
	switch rep.status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// forward sends one request to the server with the app token and reads
// the answer. ctx bounds it, and RequestTimeout.
func (p *Proxy) forward(ctx context.Context, method, path string, query url.Values, body []byte, header http.Header) (*upstreamReply, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, p.upstreamURL(path, query), rd)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"Accept", "Content-Type", "If-Match", "If-None-Match"} {
		if v := header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody))
	if err != nil {
		return nil, err
	}
	return &upstreamReply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// observe records the server's reachability from a forwarded request.
// A request the local app abandoned says nothing.
func (p *Proxy) observe(local context.Context, rep *upstreamReply, err error) {
	if local.Err() != nil {
		return
	}
	p.setOnline(!unreachable(rep, err))
}

// relay writes the server's answer to the app.
func relay(w http.ResponseWriter, rep *upstreamReply) {
	h := w.Header()
	for _, k := range []string{"Content-Type", "ETag", "Cache-Control", "Retry-After", "Last-Modified", "Location"} {
		if v := rep.header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// writeUnreachable answers a request the proxy could not forward.
func (p *Proxy) writeUnreachable(w http.ResponseWriter, err error, rep *upstreamReply) {
	if rep != nil {
		relay(w, rep) // the server's own 502/503/504
		return
	}
	p.log.Debug("server unreachable", "err", err)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "", "the Switchboard server is unreachable and the proxy has no copy of this; retry later")
}

// listCalls serves GET /v1/calls: forwarded, not cached.
func (p *Proxy) listCalls(w http.ResponseWriter, r *http.Request) {
	rep, err := p.forward(r.Context(), http.MethodGet, "/v1/calls", r.URL.Query(), nil, r.Header)
	p.observe(r.Context(), rep, err)
	if unreachable(rep, err) {
		p.writeUnreachable(w, err, rep)
		return
	}
	relay(w, rep)
}

// contextPath is the server path of a call's context.
func contextPath(call string) string { return "/v1/calls/" + url.PathEscape(call) + "/context" }

// getContext serves GET /v1/calls/{id}/context. While the server is known
// to be down a cached copy is served at once; otherwise the server is
// asked and a 200 refreshes the cache, and if it does not answer the
// cached copy is served.
func (p *Proxy) getContext(w http.ResponseWriter, r *http.Request) {
	call := r.PathValue("id")
	if !p.online.Load() && p.serveStale(w, call) {
		return
	}
	rep, err := p.forward(r.Context(), http.MethodGet, contextPath(call), nil, nil, r.Header)
	p.observe(r.Context(), rep, err)
	switch {
	case unreachable(rep, err):
		if !p.serveStale(w, call) {
			p.writeUnreachable(w, err, rep)
		}
		return
	case rep.status == http.StatusOK:
		p.cache.put(cacheEntry{call: call, body: rep.body, etag: rep.header.Get("ETag"),
			contentType: rep.header.Get("Content-Type"), fetched: p.cfg.Clock.Now()})
	case rep.status == http.StatusNotFound || rep.status == http.StatusGone:
		p.cache.remove(call)
	}
	w.Header().Set(HeaderCache, "fresh")
	relay(w, rep)
}

// serveStale serves the call's cached context, saying how old it is, and
// reports whether there was one.
func (p *Proxy) serveStale(w http.ResponseWriter, call string) bool {
	e, ok := p.cache.get(call)
	if !ok {
		return false
	}
	age := max(0, int64(p.cfg.Clock.Now().Sub(e.fetched)/time.Second))
	h := w.Header()
	h.Set(HeaderCache, "stale; age="+strconv.FormatInt(age, 10))
	h.Set("Age", strconv.FormatInt(age, 10))
	if e.etag != "" {
		h.Set("ETag", e.etag)
	}
	if _, n := p.queue.len(e.call); n > 0 {
		h.Set(HeaderPending, strconv.Itoa(n))
	}
	h.Set("Content-Type", cmp.Or(e.contentType, "application/json"))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
	return true
}

// patchContext serves PATCH /v1/calls/{id}/context. It is forwarded when
// the server is up and no earlier write waits; otherwise it is queued
// (202, X-Switchboard-Proxy-Queued) and replayed in order, with its
// If-Match, when the server answers again.
func (p *Proxy) patchContext(w http.ResponseWriter, r *http.Request) {
	call := r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("a patch may be at most %d bytes", p.cfg.MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "", "reading the body failed")
		return
	}
	if n, _ := p.queue.len(call); n == 0 && p.online.Load() {
		rep, err := p.forward(r.Context(), http.MethodPatch, contextPath(call), nil, body, r.Header)
		p.observe(r.Context(), rep, err)
		if r.Context().Err() != nil {
			return
		}
		if !unreachable(rep, err) {
			relay(w, rep)
			return
		}
		// Not taken (or not known to be): queued. If the server applied
		// it after all and its answer was lost, the replay's If-Match
		// gets 412, and without If-Match a merge patch applied twice
		// gives the same result.
	}
	qw, pos, err := p.queue.add(queuedWrite{Call: call, Body: body, ContentType: r.Header.Get("Content-Type"),
		IfMatch: r.Header.Get("If-Match")}, p.cfg.Clock.Now())
	if err != nil {
		p.log.Warn("could not queue an offline write", "call_id", call, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "", "the server is unreachable and the write could not be queued ("+err.Error()+"); retry later")
		return
	}
	p.log.Info("queued an offline write", "call_id", call, "queued", qw.ID, "position", pos)
	w.Header().Set(HeaderQueued, qw.ID)
	w.Header().Set("Location", "/proxy/queue")
	writeJSON(w, http.StatusAccepted, map[string]any{
		"queued":   qw.ID,
		"call":     call,
		"position": pos,
		"message":  "the server is unreachable: the write is queued and will be replayed with its If-Match when the server is back; its outcome (a 412 if the context changed meanwhile) is in GET /proxy/queue and in a proxy.write event",
	})
}

// queueStatus serves GET /proxy/queue: the writes waiting and the last
// outcomes of replays.
func (p *Proxy) queueStatus(w http.ResponseWriter, _ *http.Request) {
	pending, results := p.queue.snapshot()
	writeJSON(w, http.StatusOK, map[string]any{"online": p.online.Load(), "pending": pending, "results": results})
}

// Status is the answer to GET /proxy/status.
type Status struct {
	Online       bool   `json:"online"`
	Server       string `json:"server"`
	LastEventID  uint64 `json:"last_event_id"`
	Subscribers  int    `json:"subscribers"`
	CacheEntries int    `json:"cache_entries"`
	CacheBytes   int    `json:"cache_bytes"`
	Queued       int    `json:"queued"`
}

func (p *Proxy) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, p.Status())
}

// Status reports the proxy's state.
func (p *Proxy) Status() Status {
	last, subs := p.hub.status()
	n, b := p.cache.stats()
	q, _ := p.queue.len("")
	return Status{Online: p.online.Load(), Server: p.server, LastEventID: last, Subscribers: subs,
		CacheEntries: n, CacheBytes: b, Queued: q}
}
