// Package simulations runs seeded, virtual-time, discrete-event
// simulations of two-tier load balancing (issue 4, abstract 4) with the
// runtime's own placement code: placement.ChoosePool for a device group's
// pool, placement.PlaceCall and PowerOfTwo for calls, and
// placement.BoundedLoad for device-group actors. Every run replays the same
// workload (same seed) for ours and for the baselines (Random, plain
// Rendezvous, LeastLoaded on stale load) and reports the measures side by
// side: report.json, report.md and PNG plots (gonum/plot).
//
// The model:
//
//   - nodes in pools with their prescribed conditions (scenarios/*.json);
//     membership changes are seen at once, load figures are not: every
//     gossip interval each node's report (active calls, device-group
//     actors, CPU) is recorded, and each directory owner's
//     placement.LoadView holds the reports of staleness_seconds ago plus
//     that owner's optimistic increments, as the runtime's directory does;
//   - device groups with 1 + Zipf sizes register over the warm-up; tier 1
//     chooses their pool from placement.PoolStates built as the runtime
//     builds it (reported calls, nothing reserved), then their actor is
//     placed in the pool;
//   - calls arrive as a Poisson process (a flash crowd multiplies the
//     rate), from a device drawn uniformly, and hold for an exponential
//     time; ours places them by the group's placement.CallRoute; a node
//     at capacity refuses a call placed on stale figures, and ours counts
//     it full and places again while placement.RetryAfterFull allows;
//   - a crash drops the node's calls; its actors, and a draining node's,
//     reactivate (tier 1 again) on their next call; a join moves no live
//     actor in ours (as the runtime), and the time until the joined node
//     carries 90% of its pool's mean active calls is measured; plain
//     rendezvous moves the actors the newcomer now owns (disthash); random
//     and least-loaded move none. Idle passivation is not modelled.
//
// Config.Trace tells every placement ours makes, with the figures its
// directory owner saw, so that a test replays the workload into the
// runtime's directory (package cluster) and finds the same placements.
//
// MaxMeanCalls is the one definition of "max/mean active calls", which
// package live (`switchboard sim --live`) uses too. The report's replay
// line names the scenario's file (Scenario.Replay); its per-node plot
// shows the least, median and most active calls over the nodes.
//
// Ours breaking an invariant (a call on a dead, draining or full node, a
// call rejected while its pool or overflow has headroom, a group leaving a
// pool that still meets its conditions) ends the run with an error that
// wraps ErrInvariant and names the seed and the command that replays it.
//
// The package owns the model and the report. It must not touch actors, the
// network, storage, a clock or global randomness: time is virtual and every
// draw comes from rand.Rand values seeded from Config.Seed (one stream for
// the workload, shared by all modes, one for placement). Run runs the
// modes on separate goroutines and waits for them.
package simulations
