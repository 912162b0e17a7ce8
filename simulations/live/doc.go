// Package live is the live mode of `switchboard sim --live`: real node
// processes of pool p1 (and p2, its overflow) on loopback, Poisson calls
// driven through POST /v1/calls, one node SIGKILLed and one joined part
// way, and the measures of the virtual-time simulator (package
// simulations: MaxMeanCalls, JoinReachShare) read back from what the
// nodes gossip. Run writes report.json, report.md and each node's log.
//
// It starts the switchboard binary through internal/nodeproc and talks to
// it over HTTP only: it must not import node, actors or cluster. Real time
// and real processes: two runs of one seed draw the same arrivals, holds
// and devices, but their reports are not byte-identical.
package live
