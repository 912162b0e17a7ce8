// Package actors owns Switchboard's virtual actors: one actor per identity,
// activated on first use, loading its state from the persistence.Store,
// writing through before it replies, and passivating when idle.
//
// Kinds (identities in parentheses):
//
//   - account (account id): the account's configuration, its device groups'
//     provisioned configuration, its devices with their digest HA1s, its
//     trunks and its routes; the authority for which groups and devices
//     exist. GetSecretEdgeView is the one reply that carries HA1s, for the
//     nodes' account snapshots (package accountview; device_only answers
//     one device in O(1)); every other reply and the debug state redact
//     them. After every write it says what of the edge view changed
//     (Config.EdgeChanged), so that every node drops the stale part of
//     its snapshot. Tier 1 is checked again for every group each time a
//     node loads the account level (at most every accountview MaxAge per
//     node, and after each change). The edge
//     reports a device's first SHA-256 digest answer (DigestAnswered),
//     which the device record keeps (sha256_answered) so that the device
//     is never challenged with MD5 again; setting its digest_algorithm to
//     "MD5" clears it.
//
//   - devicegroup (account "/" group): a device group's runtime view: its
//     members (a cache rebuilt from the account on activation and kept
//     current by GroupChanged notices) and the state it persists itself:
//     its devices' registrations (RFC 3261 section 10.3, ApplyRegister),
//     one record per device with bindings (dgrp/<a>/<g>/b/<device>, below
//     the group's state record dgrp/<a>/<g>), each written by
//     compare-and-set on its own version. A REGISTER, a lookup of one
//     device, the expiry of a device's bindings (purged at that device's
//     next write) and a device leaving the group cost that device's
//     bindings and record, whatever the size of the group or the account.
//     A state record of the older layout, which held every device's
//     bindings, is split into device records at the group's activation.
//     Device records without a state record (left by a deleted group)
//     are deleted when a group of that id is activated again.
//
//   - call (Call-ID): one call and then its call record (call.go). The
//     record is stored from StartCall on (state active, node_id: the
//     process carrying it) and written again at AnswerCall and EndCall,
//     each by compare-and-set on the version the previous write got. The
//     call replies without waiting for the sync: its record and index
//     entries go through the node's committer (committer.go: one
//     Store.Batch and one sync for everything queued, at most
//     Config.RecordFlushInterval after the first queued write, sooner at
//     256 keys; BenchmarkCallLifecycle reports the time to durable: on
//     badger, 2 cores, p50 9 ms, p99 45 ms). A key's states are stored in
//     order, never a later one under an earlier one; a store failure is
//     logged and retried, never dropped; Close writes what is queued; a
//     crash loses what was queued or in flight (that window at most).
//     Reads see pending writes, and a call's activation does not stop
//     while its writes are pending, so that it stays the record's only
//     writer. Everything a client is told is stored
//     (accounts, devices, groups, incidents, queued messages) is still
//     written through before the reply. The activation that started the
//     call carries it (live: counted by System.LiveCalls and
//     Activation.LiveCall, the node's active_calls load, and never
//     passivated while idle); any other activation of a call id (a read,
//     a late BYE, a sweep) works from the record and stops after each
//     message. System.ReadCall asks a call only if it is active: reads
//     never activate a call. A call ends by itself (call_timers.go) when
//     its session interval or Config.MaxCallDuration runs out
//     (disposition expired, ended_by "expiry"; Config.Hangup has the edge
//     send BYE to both legs). The store indexes active calls by process
//     (call_live.go): InterruptCalls ends a gone process's calls through
//     their actors (disposition interrupted, ended_by "node"), except an
//     answered call whose dialog goes on between the parties' edges,
//     which the activation the sweep reached adopts; EndLiveCalls ends a
//     draining node's own live calls the same way. The states,
//     dispositions and ended_by values have one home, calllife.go.
//
//   - featureserver (feature id): a feature and the SIP servers giving it.
//
//   - pools ("all"): every pool's prescribed conditions.
//
//   - messaging (account id): the account's messaging supervisor (issue
//     10, the third abstract), messaging.go. It answers the SIP edge's
//     CheckMessage from memory with package fraud's pure detector (one
//     fraud.Sender per sender; policies merged defaults, account, group,
//     device), holds the messages in flight until MessageDone, and the
//     store-and-forward queue (QueueMessage, TakeQueued oldest first,
//     DeliveredQueued). At critical it stores the incident (with its
//     open marker) and the blocks before they take effect, then takes the
//     policy's actions: terminate in flight (MessageDone answers
//     CODE_CONFLICT; queued messages dropped), reset credentials
//     (ResetDeviceCredentials to the account actor: a new random secret,
//     HA1 only; the device's bindings removed through its devicegroup and
//     kept on the incident for the restore path), block the destinations
//     of the incident window for the account. Incidents and actions go to
//     an audit log under the account's keys, and to Config.Events.
//
//   - callcontext (call id): a call's cached context (issue 11, the first
//     abstract), callcontext.go: the apps' supplements (cctx/<call>) and
//     the call, asked of its call actor only while that is active
//     (System.requestIfActive: never activating a call, so reading a
//     context is no call load; the call actor never asks a context) and
//     else read from its record. GetContext and PatchContext (an RFC 7396
//     merge into the app's namespace, package callcontext's rules,
//     written through, then a context.changed event). Cached while the
//     call is live and for Config.ContextHotLease after it ended; the
//     node's budget (Config.ContextCacheBytes, callcontext.Budget) evicts
//     the least recently used first.
//
// The call actor emits call.ringing (with the new call's context),
// call.answered and call.ended to Config.Events (callevents.go), one per
// party of the account (the caller, and the callee when the call went to
// a device), and at the end writes each party's recent-calls index
// (acct/<a>/ucalls/<user>/<newest first>-<call>, ListUserCalls). App
// credentials (apps.go: acct/<a>/app/<id>, the token's SHA-256 only) are
// store records, not actor state: AuthenticateApp reads the record on
// every request, so DeleteApp revokes at once on every node.
//
// In-flight messages are a table in the supervisor, not child actors:
// the shell hands a behavior no protoactor context (so a behavior stays a
// plain state machine that a test drives without a mailbox), a child
// would hold no state of its own and serve no message (the edge holds the
// transaction and speaks to the supervisor by identity, also from other
// nodes), and children die with their parent's activation anyway.
// Terminating one is marking it; its id is also stored on the incident,
// so that a supervisor reactivated elsewhere still answers its
// MessageDone with CODE_CONFLICT. The table is bounded by inflightTTL; a
// supervisor with messages in flight does not passivate when idle.
//
// The supervisor's store writes are bounded: none per check in the
// steady state (the senders' histories are read once per activation and
// written when their hour folds, at most hourly, and at passivation;
// incident counts once a minute), one record per ended message
// (MessageDone; written behind, off the mailbox, by writebehind.go: the
// message has had its final answer and nobody waits for its record, so a
// crash may lose the last few records, never a block or an incident),
// and the incident's writes at critical.
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
// its groups, and the messaging supervisor asks its account and groups
// (which never ask it), so there is no request cycle.
//
// Where an activation lives is decided behind the Lookup seam. LocalLookup
// keeps every activation in this process (one node); the gossip cluster
// supplies its own Lookup without touching the actors. Each keeps its
// activations in an ActivationIndex (key order: kind, then identity), so
// that the debug endpoint pages them (ActivationPage), finds one (Find)
// and counts them by kind without listing or sorting them all.
//
// The account actor pages its devices, groups and trunks from the store's
// key order (listing.go: Scan after the cursor; a group filter reads at
// most ten pages' worth of records and may answer a short page with a
// cursor); its debug state shows its first hundred groups and devices. A devicegroup
// pages its bindings in (device, contact) order from a btree that each
// device's write updates (O(log n) per binding); its debug state shows
// the first hundred members and bindings with their counts.
//
// Memory follows the live activations: a passivated activation leaves
// nothing behind (registry.go: protoactor's process registry is cut from
// 32,768 map shards, each keeping its storage once a fresh process id has
// landed in it, to 256 that every node fills at once).
//
// Fencing (Config.Fence, fence.go): an account, devicegroup or messaging
// activation takes a claim on its identity before it loads its state,
// checks it before every message (no I/O), bounds the message's store
// writes by the claim's end, and answers CODE_UNAVAILABLE and stops when
// it has none, so that nodes that share a store but not a gossip view
// never serve one identity twice (see cluster/doc.go): a second
// messaging supervisor would not see the first one's new blocks and
// terminations, which live in its memory. A fenced activation left with
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
//	switchboard_fraud_checks_total{kind,verdict}  fraud checks answered (deliver, throttle, refuse)
//	switchboard_fraud_warnings_total{indicator}   requests at warning level
//	switchboard_fraud_incidents_total{indicator}  incidents opened (critical)
//	switchboard_fraud_actions_total{action,result} containment actions (ok, failed)
//	switchboard_messaging_queue_total{event}      queued, delivered, failed, expired, terminated
//	switchboard_context_cached                    call contexts cached on this node
//	switchboard_context_bytes                     bytes accounted to them (payload + callcontext.EntryOverhead each)
//	switchboard_context_budget_bytes              the node's budget (--context-cache-mb)
//	switchboard_context_hit_ratio                 requests served from memory / all context requests
//	switchboard_context_hits_total                context requests served from memory
//	switchboard_context_misses_total              context loads from the store
//	switchboard_context_evictions_total           contexts evicted to stay within the budget
package actors
