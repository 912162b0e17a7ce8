package integration

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Local security, checked on every request before anything else, in this
// order:
//
//  1. Host must name loopback (127.0.0.1, [::1] or localhost, with the
//     proxy's port or none): a page on evil.example whose name was
//     rebound to 127.0.0.1 sends "Host: evil.example" (DNS rebinding).
//  2. An Origin header must be on the allow list. Browsers send it on
//     cross-origin fetches, on EventSource and on WebSocket handshakes,
//     and do not apply CORS to WebSockets, so it is checked here for
//     every method, streams and upgrades included. A request without one
//     comes from a native app (or a same-origin page, which the proxy
//     does not serve).
//  3. A CORS preflight (OPTIONS) is answered only for an allowed origin,
//     and needs no token (browsers send none on preflights).
//  4. "Authorization: Bearer <local token>", compared in constant time. A
//     fixed header such as X-Requested-With is no secret: any page can
//     send it. EventSource cannot set headers, so GET /v1/events also
//     takes ?access_token=.
//  5. Upgrade requests (WebSocket) are refused with 501: the proxy streams
//     events as SSE only.

// corsAllowHeaders are the request headers an allowed page may send.
const corsAllowHeaders = "Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID"

// corsExposeHeaders are the response headers an allowed page may read.
const corsExposeHeaders = "ETag, Age, Retry-After, Location, " + HeaderCache + ", " + HeaderQueued + ", " + HeaderPending

// guard wraps next with the local security checks.
func (p *Proxy) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.hostAllowed(r.Host) {
			p.log.Warn("refused a request for another host (DNS rebinding?)", "host", r.Host, "remote", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "Host", "this proxy answers only requests for 127.0.0.1, [::1] or localhost")
			return
		}
		origin, hasOrigin := r.Header["Origin"]
		if hasOrigin {
			o := r.Header.Get("Origin")
			if len(origin) != 1 || !p.origins[o] {
				p.log.Warn("refused a request from an origin not allowed", "origin", o, "path", r.URL.Path)
				writeError(w, http.StatusForbidden, "Origin", "origin "+strconv.Quote(o)+" is not allowed; start the proxy with --allow-origin "+o+" to allow it")
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", o)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		if r.Method == http.MethodOptions {
			if !hasOrigin || r.Header.Get("Access-Control-Request-Method") == "" {
				writeError(w, http.StatusForbidden, "", "OPTIONS is answered only as a CORS preflight from an allowed origin")
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, PATCH")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !p.tokenOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard-proxy"`)
			writeError(w, http.StatusUnauthorized, "Authorization", "send Authorization: Bearer <token> with the token from the proxy's discovery file")
			return
		}
		if isUpgrade(r) {
			writeError(w, http.StatusNotImplemented, "", "the proxy does not speak WebSocket; read events as Server-Sent Events at GET /v1/events")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether host (the Host header) names loopback on
// the proxy's port.
func (p *Proxy) hostAllowed(host string) bool {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ""
	}
	if port != "" && port != strconv.Itoa(p.port) {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// tokenOK reports whether r carries the local token.
func (p *Proxy) tokenOK(r *http.Request) bool {
	got := ""
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
		got = strings.TrimSpace(a[7:])
	} else if r.URL.Path == "/v1/events" && r.Method == http.MethodGet {
		got = r.URL.Query().Get("access_token")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(p.token)) == 1
}

// isUpgrade reports whether r asks to switch protocols (WebSocket).
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}
