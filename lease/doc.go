// Package lease keeps Switchboard's nodes honest about who serves what
// against the shared store: a liveness lease per node and an owner record
// per fenced identity, both plain records in the persistence.Store, so
// that nodes that cannot see each other over gossip (a partition, a seed
// restarted alone) still never serve one identity twice.
//
// # Node liveness
//
// Each node writes lease/node/<id> (id: its actor system id, new per
// process) with its name, pool, gossip and actor addresses and the wall
// time the renewal began, and rewrites it every RenewEvery (one write per
// node per second by default). After each write it reads every
// lease/node/ record (one prefix scan) and remembers, by its own clock,
// when it first saw each record's current version. The records are also
// how a node finds its cluster without --join (LivePeers). Close deletes
// the node's record; a crashed node's record is deleted by the others once
// it has not changed for ForgetAfter.
//
// A node's own lease is valid until TTL - Margin after the start of its
// last successful renewal, by its own clock (Valid). Another node counts
// it expired (Expired) when its record is absent, or has not changed for
// TTL by the observer's clock since the observer first saw that version,
// or (for an observer that has not watched it that long, such as a node
// that just started) its renewal time is older than TTL + MaxClockSkew by
// the observer's wall clock. The first two rules need no agreement
// between clocks, only that they run at about the same rate (Margin
// absorbs the difference); the third needs wall clocks within
// MaxClockSkew (NTP keeps them within milliseconds; a negative
// MaxClockSkew turns the rule off). So an expired node has stopped
// serving before anyone takes over from it. One more rule needs no time at
// all: a record written by a process on this host (same host name, boot
// id and PID namespace) whose PID no longer runs is gone at once
// (DeadOnThisHost), so a node killed and started again, or a test's node
// killed before the next test, does not hold its identities for a TTL.
//
// # Ownership
//
// Acquire makes this node the owner of (kind, identity) by compare-and-set
// on lease/owner/<kind>/<identity> = {node, name, at}: it takes the
// record if it is absent, already this node's, or names a node that is
// expired, and refuses (ErrOwnedElsewhere) otherwise. Acquire needs this
// node's lease to be valid (ErrNoLease). A Claim stays valid while the
// node's lease does without a lapse since the claim was made (Check: two
// atomic loads, no store round trip); after any lapse the activation must
// step down and acquire again, because another node may have served the
// identity meanwhile. Release deletes the owner record (compare-and-set
// on the claim's version), so that the next activation anywhere takes it
// at once.
//
// Gone applies the same rules to any process by its id: what a node
// checks before it ends the calls of another process (package node).
//
// Decisions (Valid, Expired, Decide, DeadOnThisHost) are pure functions of
// records, observations, an injected clock and an injected process probe;
// Node carries them out against the store. Records are JSON, for operators
// reading the table.
//
// This package must not know about actors, gossip, HTTP or SIP; it sees
// persistence.Store only.
//
// Metrics:
//
//	switchboard_lease_renewals_total{result}     liveness renewals, ok or error
//	switchboard_lease_valid                      1 while this node's lease is valid
//	switchboard_lease_acquisitions_total{result} ownership attempts: taken, refused, error
package lease
