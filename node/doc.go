// Package node assembles one Switchboard node as a value: its store, event
// stream, SIP edge (sipedge), DNS responder (dnszone), cluster membership
// (cluster: gossip and actor remoting), actor system and HTTP surface,
// with a per-node metrics registry and logger, so that a test can run
// several nodes in one process.
//
// New builds each part once what it needs exists, in this order: the
// store (badger or PostgreSQL), the event stream and call-event queue, the
// node's lease (package lease), the HTTP listener, the cluster membership
// (cluster.New: checked, nothing started), the actor system (whose lookup
// factory, Membership.Start, starts actor remoting), the account
// snapshots, the DNS responder and the SIP edge (their listeners); then
// the node joins the cluster (gossip, advertising those addresses),
// registers its lease under its member id, and builds the HTTP handler.
// Nothing reaches an actor before the node joins, so the actors' links
// back to the edge and the snapshots (restore NOTIFYs, hangups, edge
// changes) are followed only once both exist. Each step pushes how to
// release what it acquired on one stack (closers.go): a failed step
// releases what came before it, and Run and Close release it all, last
// first. An address in use fails New, naming the address. Run serves
// HTTP, SIP, DNS, the event stream and the call sweeper; it provisions the
// demo account when Config.Demo (created once: an existing acme is left
// as it is), logs the accounts and feature servers stored under ids the
// DNS label rule refuses (actors.System.ReportInvalidIDs), serves until
// its context ends, then shuts down in order (health turns to draining,
// HTTP stops accepting and finishes in-flight requests, actors stop, the
// node leaves the cluster, its liveness record is deleted, the store
// flushes and closes). The lease renews from its own goroutine until
// shutdown; it fences the account and devicegroup activations
// (actors.Fence) and tells the cluster the nodes recorded alive
// (cluster.PeerSource), so that a node started without --join finds its
// cluster.
//
// Logging: protoactor logs as errors what an ordinary drain does (its
// endpoint writers towards a member that drains or left, and every one on
// a node that drains); the actor system's logger (protoactorLogger, with
// internal/loglevel) logs those at INFO, so that ERROR stays for what
// needs an operator.
//
// The node's events.Stream (Node.Events)
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
// (actors.CallHangup, through edgeLink) to send BYE to both
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
