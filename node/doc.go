// Package node assembles one Switchboard node as a value: its store, actor
// system and HTTP surface, with a per-node metrics registry and logger, so
// that a test can run several nodes in one process.
//
// New opens everything and binds the listeners; Run logs the accounts and
// feature servers stored under ids the DNS label rule refuses
// (actors.System.ReportInvalidIDs), serves until its context ends, then
// shuts down in order (health turns to draining, HTTP stops accepting and
// finishes in-flight requests, actors stop, the node's liveness record is
// deleted, the store flushes and closes). New also registers the node's
// lease in the store (package lease) once its actor system has an id, and
// renews it from its own goroutine until shutdown; the lease fences the
// account and devicegroup activations (actors.Fence) and tells the cluster
// the nodes recorded alive (cluster.PeerSource), so that a node started
// without --join finds its cluster. The node's events.Stream (Node.Events)
// serves the accounts' event streams over HTTP and runs webhook delivery
// and pruning from Run; at shutdown its streams end before HTTP stops, so
// that open SSE responses do not hold the shutdown up. Call events reach
// the stream through a queue (callevents.go), off the call actors' turns,
// in order per account; a full queue drops them and counts
// switchboard_events_call_dropped_total, so that call signalling never
// waits for the event stream.
//
// Calls (calls.go): Run sweeps the store's index of active calls at start
// and every CallSweepEvery, and ends (interrupted) the calls of processes
// whose liveness record is gone (an answered call whose dialog goes on
// between the parties' edges is adopted instead, actors' call.adopt): its own previous process (same Name) at
// once, another node's after CallSweepGrace, by the one live node that
// rendezvous hashing picks. A drain serves the live calls for half of
// ShutdownTimeout, then ends those still up (actors.System.EndLiveCalls),
// before the actors passivate. Calls the actors end by themselves
// (expired, or interrupted by the drain) are handed to the SIP edge
// (actors.CallHangup, when the edge implements it) to send BYE to both
// legs; Node.Draining tells the edge that the node drains.
//
// Account snapshots (views.go): the node's accountview.Cache serves the
// SIP edge and the DNS responder. The account actors' EdgeChanged drops
// the stale part here and, through the cluster (InvalidateOthers), on
// every other member; switchboard_account_view_{hits,loads,invalidations}_total
// count its work.
//
// Memory: Config.MemoryLimit (--memory-limit) is the process's soft memory
// limit (runtime/debug.SetMemoryLimit), which New sets when given; the
// collector otherwise runs at Go's default pace (GOGC, 100), so that the
// heap stays within twice the live state rather than five times. Run
// logs the limit and GC percent in effect ("node serving").
//
// Flags and environment variables only fill a Config; this package reads
// neither.
package node
