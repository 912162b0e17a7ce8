// Package cluster owns how Switchboard nodes form one cluster of virtual
// actors: membership over gossip (subpackage gossip, the only home of
// hashicorp/memberlist), protoactor-go's cluster and remoting on top of it
// (a ClusterProvider fed by gossip), and Switchboard's own identity lookup.
//
// Identity lookup. Every (kind, identity) has a directory entry on its
// rendezvous owner among the topology's members (placement.Owner, a
// well-mixed 64-bit hash). The owner merges concurrent lookups of one
// identity, asks the kind's placement strategy (a pure function, shared
// with the simulator) for a target member, and has that member's activator
// spawn the activation. The owner judges loads, builds a call's candidates
// and retries a full node's refusal with placement's shared layer
// (LoadView, CallRoute, RetryAfterFull), as the simulator does. Idle
// activations ask their owner before they stop,
// and the owner keeps the entry "stopping" until they are gone, so an
// identity is never live twice. On a topology change no activation is
// killed: each member's activator reports its activations (Claims) to
// their owners under the new view, and a directory serves identities it
// does not know only after every member has reported, so that a join does
// not start a second activation of a live identity. When a member's claims
// do not come within the handover timeout, the directory asks that member
// for its live activations; only a member that does not answer either is
// taken as gone. An activation the directory does not know yet that asks
// to stop leaves a "stopping" entry until it is gone. A
// dead member's entries are dropped; its actors reactivate elsewhere on
// their next message and load their state from the shared store.
//
// Activators refuse placements made in another topology view than theirs,
// so every activation is reported to the owner of the view it was made in.
// They answer Activate with a code (ActivateReply.code: OK, FULL,
// OTHER_VIEW, STOPPING, ERROR), which the directory acts on.
//
// The directory's rules are a state machine, dirState: Step takes one
// input (a message, a timer, an activator's answer) and returns the
// effects (replies, Activate, Evict, ListActivations, a timer, counts,
// logs), with time, randomness and the members' figures injected. The
// directory actor only carries them out, so the rules are table-tested
// without an actor system, and a test replays the simulator's workload
// into it and finds the simulator's placements.
//
// Invalidation. Lookup.InvalidateOthers sends a clusterpb.Invalidate
// (opaque keys) to every other member's activator, now and again 250 ms
// later (a first message to a member not dialled yet can be lost), and
// each hands the keys to its LookupConfig.OnInvalidate: how an account
// written on one node reaches every node's account snapshots.
//
// Split brain. The directory keeps an identity single within one gossip
// view; two views that cannot gossip (a partition, different gossip keys,
// a seed restarted without --join before it finds the others) each have
// their own directories. What keeps them from serving one identity twice
// is the shared store (package lease):
//
//   - Guarantee: against one store, an account or devicegroup activation
//     serves a message, reads or writes, only while it holds a claim on its
//     identity (the owner record lease/owner/<kind>/<id>) and its node's
//     lease is valid without a lapse since the claim was taken. A node's
//     lease ends Margin (1s) before TTL (--lease-ttl, 5s) after its last
//     successful renewal began; another node takes the claim over only
//     when the owner released it, or its liveness record is gone, or the
//     taker watched that record stay unchanged for TTL (or, for a taker
//     that just started, the record's renewal time is older than TTL plus
//     MaxClockSkew, 10s, by its wall clock; or at once, when the record's
//     writer ran on this host and its process is gone). So the old
//     activation has stopped serving before a new one loads the state, and
//     every write of a turn is cancelled at the claim's end. Safety rests
//     on clocks running at about the same rate (within Margin over a TTL)
//     and, for the start-up rule only, on wall clocks within MaxClockSkew;
//     not on gossip. A write that PostgreSQL commits after the client gave
//     up at that deadline, and that the client was never told succeeded,
//     can still land; the actors' writes are compare-and-set on the
//     version they read (clean-up deletes of a deleted account's leftovers
//     aside), so even that one never overwrites a newer record.
//   - The cost: one owner write per activation and one delete when it
//     stops; one liveness write and one prefix scan per node per second;
//     no store round trip per message. Failover after a crash of a node
//     on another host waits for its lease (TTL after its last renewal, so
//     5-6s) as well as for gossip to declare it dead; on the same host the
//     process's exit is proof enough, and a clean stop releases at once.
//
// Each kind during a partition (or any time gossip views differ):
//
//   - account: served by the side that holds its claim; the other side's
//     activation is refused, answers CODE_UNAVAILABLE (HTTP 503, SIP 503
//     Account Unavailable) and stops, and tries again on the next message.
//     A side cut off from the store stops serving when its lease ends, and
//     the other side takes over TTL later with the state in the store. So
//     a password rotated on one side is never served old by the other.
//   - devicegroup: the same (its registrations are its state).
//   - call: not fenced. A call lives on the node that handles its dialog
//     and never migrates; requests of one dialog reach that node. Its
//     record is written once, when it ends, with compare-and-set, so of
//     two activations (a request routed by the other side) one write wins.
//     Fencing would add two store writes per call on the hot path.
//   - featureserver, pools: not fenced. They are configuration that every
//     call reads; a duplicate on the other side serves the copy it loaded
//     until it passivates, and its writes lose compare-and-set against
//     newer ones. They hold no credentials. Fencing them is one line in
//     actors.fenced, at the price of 503s for them while a crashed
//     holder's lease runs out.
//
// Discovery: a member with a PeerSource (the liveness records in the
// store) joins the nodes recorded alive that gossip does not list alive,
// about once a second with a per-address backoff (30s at most: a node
// with another gossip key never answers). So a node needs --join only for
// the first start of a cluster, and two halves merge when they can reach
// each other again.
//
// Listing: a member keeps its activations in an actors.ActivationIndex;
// ListActivations (Membership.ClusterActivations) answers a page of them in
// (kind, identity) order after a cursor, with the member's counts by
// kind, so that the cluster scope of the debug endpoint costs each member
// O(page). A directory's handover asks for all of them (no limit).
//
// Starting: New checks a Config and starts nothing; Membership.Start is
// the actor system's lookup factory (actors.Config.NewLookup): it starts
// remoting and the identity lookup; Membership.Join starts gossip,
// advertising the node's SIP, HTTP and DNS addresses, once the node can
// serve them. Timers (claims repeated, invalidations repeated, handover
// timeouts) run on the actor system's clock.Clock.
//
// This package must not know about HTTP, SIP or the store; actors see it
// only as an actors.Lookup.
//
// Metrics:
//
//	switchboard_cluster_members{status}                   members known, by status
//	switchboard_cluster_placement_decisions_total{kind,strategy}
//	switchboard_cluster_directory_handovers_total         entries adopted from claims
//	switchboard_cluster_duplicate_evictions_total         duplicates found in claims and evicted
//	switchboard_cluster_directory_dropped_total           entries dropped with their dead host
//	switchboard_cluster_topology_changes_total            topology views seen
//	switchboard_cluster_calls_refused_full_total          calls a full node refused (stale figures)
package cluster
