// Package events owns each account's event stream: a persisted,
// cluster-wide, gap-free sequence of events (fraud incidents and actions,
// call progress, call-context changes), read live and resumably by
// subscribers (the SSE routes in httpapi) and pushed to the account's
// webhook.
//
// # Appending
//
// Stream.Append assigns the next sequence of the account and stores the
// event before it returns: an acknowledged event is never lost. Nodes that
// share a store (PostgreSQL) append to one account concurrently: the
// account's head record (its last event) is written by compare-and-set,
// which orders them; the loser re-reads and retries. Stream.AppendBatch
// appends several events of one account for the same cost: the head
// record then carries the whole batch (the last event, the others under
// "earlier"). Before an appender moves the head past a batch it makes sure
// the batch is in its log slots, so every event before the head's batch
// is in the log and the batch is in the head: no gaps, even when an
// appender dies between its two writes. An append costs two store writes
// (the head, then the batch's slots in one store batch), however many
// events it carries; appends from one node to one account are serialized
// locally, so they never conflict with each other. The node's call events
// are appended in such batches (node/callevents.go).
//
// # Reading
//
// Stream.Subscribe(after) reads the backlog from the log, then waits:
// an append on this node wakes it at once, and a waiting subscription
// polls the account's head every PollInterval (25ms by default; one read
// per account per interval, shared by every subscriber of the account on
// this node) to see appends made elsewhere. Cross-node latency is thus at
// most about PollInterval + PollInterval/2 plus a store read and scan.
// When the resume point is older than what retention kept (default 24h),
// or past the end of the stream, Next returns a *ResetError once and goes
// on from the oldest event kept.
//
// # Webhooks
//
// An account's webhook (SetWebhook: URL and secret) gets a POST per event,
// in order, body the event's JSON, signed with HMAC-SHA256 of the body
// (X-Switchboard-Signature: sha256=<hex>; Sign, Verify) and carrying the
// event id (X-Switchboard-Event-Id) for de-duplication: delivery is at
// least once. Failures (network errors, timeouts, 408, 429, 5xx) are
// retried with exponential backoff (1s doubling to 5m); other statuses are
// refusals, logged and skipped. One node at a time delivers an account's
// webhook: the webhook record holds the delivery cursor and a lease
// (owner, expiry), both moved by compare-and-set. The node that appends
// claims the lease when it is free or expired, delivers until caught up,
// gives it back and looks at the head once more. Run's sweep takes over a
// lease whose node died.
//
// # Retention
//
// Events older than Retention are pruned, oldest first, never the last:
// by Run after this node's appends (at most once per PruneEvery per
// account, at most PruneBatch events a step) and by its sweep of every
// account every SweepEvery. No request path scans an account's log beyond
// the page it reads.
//
// # Store keys
//
// evhead/<account>, evlog/<account>/<seq, 20 digits>, evhook/<account>
// (see keys.go). Deleting an account does not delete its stream here; it
// ages out with retention (the webhook record stays until DeleteWebhook).
//
// This package must not know about actors, SIP or HTTP routing; it talks
// to the store only through persistence.Store. Run starts goroutines and
// waits for them before it returns; Append and Subscribe start none.
//
// Metrics (on Config.Registerer):
//
//	switchboard_events_appended_total             events appended by this node
//	switchboard_events_append_conflicts_total     appends retried after losing a compare-and-set to another node
//	switchboard_events_append_seconds             Append latency
//	switchboard_events_subscribers                open subscriptions on this node
//	switchboard_events_read_total                 events read by subscriptions (and deliveries), before filtering
//	switchboard_events_head_polls_total           head reads by waiting subscribers
//	switchboard_events_resets_total               resume points found past retention or the stream's end
//	switchboard_events_pruned_total               events pruned for age
//	switchboard_events_webhook_deliveries_total{result}  delivery attempts: ok, retry, refused, expired
//	switchboard_events_webhook_seconds            delivery attempt latency
package events
