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
//
// Every function here is a pure function of its arguments: no goroutines,
// no clock, no global state and no global math/rand; a strategy that needs
// randomness draws it from the *rand.Rand it is given, so a seeded
// simulation replays exactly. Strategies do not depend on the order of the
// members slice.
//
// Load figures are whatever the caller passes in Member.Load. The caller
// keeps them fresh: gossiped reports plus its own optimistic increments for
// placements not yet reported (Orleans' trick), so stale figures do not herd
// new work onto one node. A strategy only places new activations; nothing
// here moves or kills a live one. Strategies compare activations of the
// kind being placed; Member.Pool, Load.ActiveCalls and Load.CPU are carried
// for the caller (which passes only the members of the right pool) and for
// future strategies, and are not read here yet.
//
// This package must not touch actors, the network, gossip, storage or
// metrics, and must not import any other Switchboard package.
package placement
