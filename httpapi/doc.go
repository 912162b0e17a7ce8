// Package httpapi serves a node's HTTP surface: health, Prometheus metrics,
// pprof, the debug endpoint that shows where actors live and what they hold,
// and the provisioning API for accounts, device groups, devices, trunks,
// routes and feature servers, with a group's registrations to read, the
// fraud policies (account, group, device; ?effective=true for the merge)
// and incidents (list, show, resolve) of fraud.go, and
// each account's event stream (Server-Sent Events, resumable by sequence;
// package events) and webhook (events.go), and the app credentials and
// integration API of issue 11 (apps.go, callcontext.go): apps registered
// by the admin get scoped bearer tokens (checked in the store on each
// request, so a revocation holds at once on every node; admin and app
// tokens are never interchangeable) for GET /v1/calls, GET and PATCH
// /v1/calls/{id}/context (RFC 7396 merge patch, ETag / If-Match, 412,
// 413) and GET /v1/events. /debug/actors shows the context cache's
// figures (context_cache).
//
// It validates input and turns it into actor requests; it holds no state of
// its own. Bad input gets a 4xx with {"error": "...", "field": "..."} and
// reaches no actor (a fraud policy level is checked here with package
// fraud; only its merge with the levels above, which the account's
// messaging supervisor holds, is refused there, with the same shape). Passwords are turned into digest HA1s here (package
// credential) and never leave this package in any other form: not in
// replies, logs or actor messages. No route here asks for the account's
// edge view, the one actor reply that carries HA1s.
//
// Lists page (page.go): ?limit= (each list's default and maximum) and
// ?after= (the "next" of the previous page, present while more follow);
// a bad one gets 400 naming it. A page costs O(limit), not the size of
// the list: /debug/actors pages the node's activation index (scope=
// cluster asks each member for its first limit after the cursor and
// merges them), describing an actor finds its activation directly,
// devices page from the store's key order and bindings from the group's
// sorted copy. Replies of 32 KiB and more are compact JSON, smaller ones
// indented; list and debug routes are gzipped for a client that sends
// Accept-Encoding: gzip (klauspost/compress/gzhttp). Edge actors come on
// the first page of /debug/actors, at most limit of them, with their
// total in counts.
//
// Ids: account and feature ids must be one DNS label to be written
// (actors.CheckLabelID: no '.', no '_'), since they name the account's DNS
// names; a GET or DELETE also takes the wider id rule of the other kinds
// (actors.ValidID), so that a record stored before the label rule can be
// read and removed.
//
// Authorization: when an admin token is set, every /v1/ and /debug/ route
// (POST /v1/admin/drain too) needs "Authorization: Bearer <token>";
// /healthz and /metrics stay open.
//
// Cross-site writes are refused on every node, with a token or without
// (a loopback node has none), before any route or token check: a write
// (any method but GET, HEAD and OPTIONS) that the browser marks as coming
// from another origin (Sec-Fetch-Site other than same-origin or none, or
// an Origin whose host is not the Host; http.CrossOriginProtection) gets
// 403, and a write with a body or a Content-Type other than
// application/json or application/merge-patch+json gets 415, so that no
// form or text/plain request of a web page reaches a handler. A body-less
// write without a Content-Type (curl -X POST) passes. Both answer JSON
// naming the header at fault. Against DNS rebinding (a page whose name is
// rebound to this node is same-origin to the browser), a node without a
// token serves /v1/ and /debug/ only to a Host that is an IP address,
// localhost or a .localhost name: 403 naming Host otherwise.
//
// Metrics:
//
//	switchboard_http_requests_total{route,method,code}  requests served
//	switchboard_http_request_seconds{route}             request latency
package httpapi
