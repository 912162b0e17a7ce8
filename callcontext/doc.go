// Package callcontext owns the rules of the call context cache (issue 11,
// the first abstract): what a call's context looks like to an app, how an
// app supplements it, and how a node bounds the memory its cached contexts
// take. It is pure: no store, no actors, no clock of its own.
//
//   - Merge (merge.go) applies an RFC 7396 JSON merge patch to one app's
//     namespace, enforcing the limits (Limits: 64 KiB per app per call,
//     nesting depth, key rules) and reporting the changed and removed
//     members as JSON Pointers (RFC 6901). A refused patch changes
//     nothing; its error (*Error) names the field at fault.
//   - View (view.go) is the context as the integration API and the
//     call.ringing event show it: {call, live, apps, version, writers}.
//     Version counts the writes to the apps' supplements; it is the ETag
//     that If-Match compares.
//   - Budget (budget.go) is a node's memory budget for cached contexts
//     (--context-cache-mb): least recently used first, it names the
//     contexts to evict so that the accounted bytes stay within the
//     budget. It counts hits and misses for the hit ratio. Safe for
//     concurrent use (one per node, shared by the node's context actors).
//
// The virtual actor that holds a context (kind "callcontext") is in
// package actors (actors/callcontext.go); the HTTP API in package httpapi.
// This package must not import either, nor persistence.
package callcontext
