// Package gossip is Switchboard's node membership: which nodes exist, how
// to reach them (Meta), whether they are alive, and how loaded they are.
//
// It owns the one hashicorp/memberlist (v0.7.0) instance of a node, the
// member table built from memberlist's events, and the load reports that
// spread over memberlist's gossip. It is the only package that imports
// memberlist, and no memberlist type appears in its API, so the protoactor
// cluster provider built on it (in cluster) sees plain values. It must not
// touch protoactor, actors, placement decisions or storage.
//
// # Lifecycle
//
// New binds the gossip port (port 0 picks one; Addr tells it). Run joins
// the seeds, retrying with jittered exponential backoff until one answers,
// then gossips the node's Load every LoadInterval and calls OnChange after
// membership, status or metadata changes; it blocks until its context ends,
// and the caller owns its goroutine. Leave announces a graceful exit;
// Shutdown stops memberlist. Many Gossip values can run in one process.
//
// # Members and status
//
// Members lists every member, this node included, sorted by ID. Status:
//   - alive: memberlist counts it a member and its load reports arrive;
//   - suspect: memberlist still counts it a member, but no load report from
//     it arrived for SuspectAfter (default 5 × LoadInterval);
//   - dead: memberlist's failure detector (SWIM with Lifeguard) declared it
//     failed, typically a few seconds after it stopped answering;
//   - left: it called Leave.
//
// Dead and left members stay listed for DeadRetention (10m), so a node
// restarted under the same Meta.Name but a new ID shows as two entries: the
// old one dead or left, the new one alive.
//
// memberlist v0.7.0 shapes two of these. It announces join, update and
// "gone" through its EventDelegate, but not suspicion, and the *Node of
// every callback has State StateAlive, even for a node that left or
// failed (its internal nodeState shadows Node.State). The only other way to
// read a node's state is through the pointers that Members() returns, which
// memberlist updates in place under its own lock: reading them races
// (hashicorp/memberlist#306). So the table is fed only from event
// callbacks (where memberlist holds its lock, and the node is copied) and
// from load reports: "suspect" means "its periodic gossip stopped", and
// "left" rather than "dead" means its last load report said it was leaving
// (Leave sends that report and waits for it to go out before memberlist's
// own leave message).
//
// memberlist's Shutdown returns while a failure probe may still wait for
// its timer (up to the probe interval, scaled by Lifeguard up to 8×): a
// goleak check after Shutdown needs a grace period (see main_test.go).
//
// # Load reports
//
// Each report carries the sender's ID and gossip address, an epoch (its
// start time) and a sequence number; a receiver keeps a report only when it
// is newer than the one it holds, and passes newer ones on (a named
// broadcast: a sender's newer report replaces its older one in every
// transmit queue). Push-pull exchanges whole load tables, which also heals
// lost packets. A report from a node that memberlist has not announced
// (two nodes that joined through one seed at once may miss each other until
// the next push-pull, 15-30s) starts a push-pull with its sender. A report
// must fit a gossip packet (about 1 KB: a few dozen actor kinds); a larger
// one spreads by push-pull only, with a warning. Bandwidth grows with the
// square of the cluster size; it suits tens of nodes, not thousands.
//
// # Wire formats
//
// Meta: a version byte (1), then protobuf fields (protowire) name=1, pool=2,
// actor=3, sip=4, http=5, dns=6; at most MaxMetaSize (512) bytes, which
// Meta.Encode and Config.Validate enforce (memberlist would panic).
// Gossip messages and push-pull state: a type byte (1 load report, 2 load
// table), then protobuf. Unknown fields and message types are skipped, so
// a newer node can add them. Both decoders are fuzzed (testdata/fuzz).
//
// # Logging and metrics
//
// Logs go to Config.Logger with component=gossip; memberlist's own lines go
// there too at their level ([DEBUG] dropped; an error sending on its own
// closed transport, as in every leave, at INFO). This package exports no
// metrics: the caller exposes members by status from Members. (memberlist
// emits go-metrics to that library's global sink, which Switchboard does not
// install.)
package gossip
