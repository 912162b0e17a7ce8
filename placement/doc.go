// Package placement decides which cluster member hosts a new actor
// activation. It is shared, unchanged, by the runtime (the directory owner
// in package cluster) and by the simulator (package simulations).
//
// It owns:
//
//   - the rendezvous (highest random weight) hash: Hash, Owner and Rank,
//     over the key Key(kind, identity), so each kind spreads independently.
//     Owner picks an identity's directory owner; Rank is the preference
//     order the strategies walk.
//   - the Strategy contract and its implementations: BoundedLoad (the
//     default: rendezvous with bounded loads, Mirrokni, Thorup and
//     Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018) and
//     three baselines kept for comparison in simulations: Rendezvous (plain
//     HRW, what protoactor-go's disthash does), Random and LeastLoaded.
//   - the explanation of each choice (Decision.Reason and
//     Decision.Candidates), which ops read through the debug endpoint.
//   - the layer around those decisions that the runtime (cluster, node)
//     and the simulator (simulations) share, so that a simulated figure
//     describes the runtime's policy: the table of actor kinds and Key;
//     LoadView, one placer's figures (gossiped reports plus its optimistic
//     increments, which expire when a later report counts them);
//     PoolStates and CallRoute, the builders of tier 1's and tier 2's
//     candidates with every condition (capacity, high water, CPU,
//     draining, reserved); and the full-node retry (MarkFull,
//     RetryAfterFull).
//
// On a join nothing is moved: no live activation is passivated to fill a
// new node, in the runtime or the simulator. New work lands on the node by
// placement: calls at once (they compare active calls, and a new node has
// none), long-lived actors as they next activate. Gradual rebalancing
// (persist, passivate and reactivate device groups at a bounded rate) would
// need the actors and the activator to coordinate a hand-off that no
// request may see, for a gain the simulator measures as small: calls, the
// load that matters, reach 90% of the pool's mean on a joined node within
// a few mean holding times.
//
// Every function here is a pure function of its arguments: no goroutines,
// no clock, no global state and no global math/rand; a strategy that needs
// randomness draws it from the *rand.Rand it is given, so a seeded
// simulation replays exactly. Strategies do not depend on the order of the
// members slice.
//
// Load figures are whatever the caller passes in Member.Load; callers take
// them from a LoadView. A strategy only places new activations; nothing
// here moves or kills a live one. The strategies for long-lived kinds
// compare activations of the kind being placed; tier 2 (PowerOfTwo, for
// calls) reads Load.ActiveCalls against the pool's capacity and Load.CPU
// against its CPU limit. Member.Pool is for the caller, which passes only
// the members of the right pool.
//
// This package must not touch actors, the network, gossip, storage,
// a clock or metrics, and must not import any other Switchboard package.
package placement
