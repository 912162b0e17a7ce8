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
//     actors) is recorded, and placement sees the reports of
//     staleness_seconds ago plus the optimistic increments of the directory
//     owner that places (placement.Owner of the key among alive nodes);
//   - device groups with 1 + Zipf sizes register over the warm-up; tier 1
//     chooses their pool (the expected concurrent calls of assigned groups
//     are passed as PoolState.Reserved until the reports show them), then
//     their actor is placed in the pool;
//   - calls arrive as a Poisson process (a flash crowd multiplies the
//     rate), from a device drawn uniformly, and hold for an exponential
//     time; a node at capacity refuses a call placed on stale figures, and
//     ours then probes the pool's true figures and retries once;
//   - a crash drops the node's calls; its actors, and a draining node's,
//     reactivate (tier 1 again) on their next call; a join moves actors to
//     the newcomer: ours those the newcomer outranks their host for, up to
//     ceil((1+eps)*m/(n+1)); plain rendezvous those the newcomer now owns;
//     random and least-loaded none.
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
