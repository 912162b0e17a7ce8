// Package httpapi serves a node's HTTP surface: health, Prometheus metrics,
// pprof, the debug endpoint that shows where actors live and what they hold,
// and the provisioning API for accounts, device groups, devices, trunks,
// routes and feature servers, with a group's registrations to read.
//
// It validates input and turns it into actor requests; it holds no state of
// its own. Bad input gets a 4xx with {"error": "...", "field": "..."} and
// reaches no actor. Passwords are turned into digest HA1s here (package
// credential) and never leave this package in any other form: not in
// replies, logs or actor messages. No route here asks for the account's
// edge view, the one actor reply that carries HA1s.
//
// Authorization: when an admin token is set, every /v1/ and /debug/ route
// needs "Authorization: Bearer <token>"; /healthz and /metrics stay open.
//
// Metrics:
//
//	switchboard_http_requests_total{route,method,code}  requests served
//	switchboard_http_request_seconds{route}             request latency
package httpapi
