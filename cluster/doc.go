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
// spawn the activation. Idle activations ask their owner before they stop,
// and the owner keeps the entry "stopping" until they are gone, so an
// identity is never live twice. On a topology change no activation is
// killed: each member's activator reports its activations (Claims) to
// their owners under the new view, and a directory serves identities it
// does not know only after every member has reported (or a timeout), so
// that a join does not start a second activation of a live identity. A
// dead member's entries are dropped; its actors reactivate elsewhere on
// their next message and load their state from the shared store.
//
// Activators refuse placements made in another topology view than theirs,
// so every activation is reported to the owner of the view it was made in.
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
