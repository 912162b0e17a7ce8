// Package node assembles one Switchboard node as a value: its store, actor
// system and HTTP surface, with a per-node metrics registry and logger, so
// that a test can run several nodes in one process.
//
// New opens everything and binds the listeners; Run logs the accounts and
// feature servers stored under ids the DNS label rule refuses
// (actors.System.ReportInvalidIDs), serves until its context ends, then
// shuts down in order (health turns to draining, HTTP stops accepting and
// finishes in-flight requests, actors stop, the store flushes and closes).
// Flags and environment variables only fill a Config; this package reads
// neither.
package node
