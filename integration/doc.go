// Package integration is the client-side integration proxy behind
// `switchboard proxy` (issue 11, section 5; the first abstract's "client
// side integration proxy ... with its own API for ... end user software
// applications" and its "memory cache"). It runs on a user's machine with
// an app registration's token and serves the integration API's paths on
// loopback to the local apps (a CRM, a helpdesk, a softphone):
//
//	GET   /v1/calls?user=&since=&limit=&after=   forwarded
//	GET   /v1/calls/{id}/context                  forwarded; cached for outages
//	PATCH /v1/calls/{id}/context                  forwarded; queued while offline
//	GET   /v1/events                              SSE from the proxy's buffer
//	GET   /proxy/queue                            offline writes and replay outcomes
//	GET   /proxy/status                           reachability, last event id, cache, queue
//
// The proxy adds the app token itself; local apps never hold it.
//
// # Local security (security.go)
//
// The listener is 127.0.0.1 on a random port. Each launch draws a 256-bit
// local token and writes it with the port to a discovery file (Discovery;
// mode 0600, written atomically, removed on exit). Every request must
// name loopback in Host (DNS rebinding), carry an Origin on the allow list
// if it carries one at all (every method, SSE and WebSocket handshakes
// included: browsers do not apply CORS to WebSockets), and present the
// local token as a bearer token (EventSource may use ?access_token= on
// /v1/events). CORS preflights are answered for allowed origins only.
// Upgrades are refused (501). No request starts, opens or installs
// anything.
//
// # Cache (cache.go)
//
// The contexts last read are kept, least recently used out first,
// bounded by count and bytes. While the server answers, reads go to it
// and refresh the copy ("X-Switchboard-Proxy-Cache: fresh"); while it
// does not, the copy is served with "X-Switchboard-Proxy-Cache: stale;
// age=N", "Age: N" and "X-Switchboard-Proxy-Pending: k" when k of the
// call's writes are still queued.
//
// # Offline writes (queue.go)
//
// A PATCH the server did not take (no answer, 502, 503, 504), or made
// while the server is known to be down, or while an earlier write for the
// same call still waits, is queued and answered 202 with
// "X-Switchboard-Proxy-Queued: q<n>". The queue lives in memory, and in
// Config.QueueFile when set (the CLI sets it: a restart of the proxy
// keeps the writes). When the server answers again the writes are
// replayed in order with their own body and If-Match: a context changed
// meanwhile gets the server's 412, never a silent overwrite. Each outcome
// is in GET /proxy/queue and is sent to local subscribers as
// "event: proxy.write" (no id; data: id, call, status, etag, error).
//
// # Events (upstream.go, hub.go, events.go)
//
// One upstream SSE connection per proxy. It reconnects with Backoff
// (100 ms doubling to 30 s, jittered from the injected Config.Rand,
// waiting through the injected Config.Sleep) and resumes with
// Last-Event-ID, so an outage loses nothing the server still retains.
// Events are kept in a bounded buffer (Config.EventBuffer) and fanned out
// to every local subscriber, each of which may resume with its own
// Last-Event-ID (or ?after=) and filter with ?type=, ?user=, ?call=. The
// server's "event: reset" passes through; a local resume point older than
// the buffer gets a reset of the same layout from the proxy. Reachability
// changes are sent as "event: proxy.status" ({"online": bool}, no id).
//
// This package must not import the server's packages (actors, httpapi,
// events, persistence): it speaks to the server over HTTP only, as any
// app could. Run starts the HTTP server, the upstream loop and the replay
// loop, and waits for all three before it returns; Close stops Run and
// waits.
package integration
