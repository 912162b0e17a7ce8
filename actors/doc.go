// Package actors owns Switchboard's virtual actors: one actor per identity,
// activated on first use, loading its state from the persistence.Store,
// writing through before it replies, and passivating when idle.
//
// Kinds (identities in parentheses):
//
//   - account (account id): the account's configuration, its device groups'
//     provisioned configuration, its devices with their digest HA1s, its
//     trunks and its routes; the authority for which groups and devices
//     exist. GetEdgeView is the one reply that carries HA1s, for the SIP
//     edge; every other reply and the debug state redact them.
//   - devicegroup (account "/" group): a device group's runtime view: its
//     members (a cache rebuilt from the account on activation and kept
//     current by GroupChanged notices) and the state it persists itself:
//     its devices' registrations (RFC 3261 section 10.3, ApplyRegister).
//   - call (Call-ID): one call and then its call record.
//   - featureserver (feature id): a feature and the SIP servers giving it.
//   - pools ("all"): every pool's prescribed conditions.
//
// Ids (validate.go): an account or feature id is one DNS label
// (CheckLabelID: [a-z0-9] or [a-z0-9][a-z0-9-]*[a-z0-9], at most 63, no
// '-' in both the third and fourth places), because it names DNS names:
// the account's <account>.<zone> and its forwarding names
// <feature>.<account>.<zone> (AccountDNSName, ForwardingDNSName), which
// must never equal or lie below another account's. Groups, devices,
// trunks and pools keep ValidID ([a-z0-9][a-z0-9._-]{0,62}). The account
// and featureserver actors refuse to write a record under an id that
// breaks the rule; System.ReportInvalidIDs logs, at a node's start, the
// records stored before it (FindInvalidIDs), which can still be read and
// deleted.
//
// Messages are protobuf (package actorpb), so that they can cross nodes.
// Actors never make a blocking request to an actor that may make a blocking
// request back: a devicegroup asks its account, an account only notifies
// its groups, so there is no request cycle.
//
// Where an activation lives is decided behind the Lookup seam. LocalLookup
// keeps every activation in this process (one node); the gossip cluster
// supplies its own Lookup without touching the actors.
//
// Fencing (Config.Fence, fence.go): an account or devicegroup activation
// takes a claim on its identity before it loads its state, checks it
// before every message (no I/O), bounds the message's store writes by the
// claim's end, and answers CODE_UNAVAILABLE and stops when it has none, so
// that nodes that share a store but not a gossip view never serve one
// identity twice (see cluster/doc.go). A fenced activation left with
// nothing to serve (no such account or group) stops and gives its claim
// back.
//
// This package must not know about HTTP or SIP, and must not import badger or
// pgx: it sees persistence.Store only.
//
// Metrics:
//
//	switchboard_actor_activations_total{kind}    activations started
//	switchboard_actor_passivations_total{kind}   activations stopped
//	switchboard_actor_active{kind}               activations alive now
//	switchboard_actor_request_seconds{kind}      request/reply latency seen by callers
package actors
