// Package accountview keeps, on each node, immutable snapshots of what the
// SIP edge and the DNS responder need from an account, so that a request
// reads them without a round trip to the account's actor:
//
//   - the account level (an Account): the account record, its routes, its
//     trunks with their sources parsed, and each group's pool;
//   - one entry per device it was asked for (a Device): the device record
//     with its HA1s, or the fact that no such device exists.
//
// A snapshot is never changed after it is built, so readers share it
// without locks. It carries credential hashes: it never leaves the node,
// and nothing in it is logged.
//
// # Freshness
//
// The account actor says what changed after every write (actors.Config's
// EdgeChanged), and the node passes that to Invalidate here and, through
// the cluster, on every other member (a clusterpb.Invalidate sent twice,
// 250 ms apart, because protoactor can lose a first message to a member it
// has not dialled yet). An invalidated entry is dropped, and the next
// request loads it again. A load that was under way while anything was
// invalidated answers its request but is not kept, so that a reply
// computed before a change never outlives the change's notice. Entries
// also age out after MaxAge (30 s by default), which bounds how long a
// lost notice can leave a node stale.
//
// # Cost
//
// A hit is a map lookup under a read lock (devices: an LRU bounded by
// MaxDevices). A miss is one request to the account actor, shared by all
// concurrent requests for the same key (singleflight); a device is loaded
// alone (GetSecretEdgeView.device_only), so its cost does not grow with the
// account.
package accountview
