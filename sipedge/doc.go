// Package sipedge is a node's SIP edge: the UDP, TCP and TLS listeners on
// emiago/sipgo (its only home), the checks every request gets on entry,
// digest authentication, the registrar and the stateful proxy.
//
// Every request enters through a read filter that runs before sipgo's
// parser: a per-source flood limit (after Kamailio's pike) drops what
// banned sources send (declared trusted sources, SBCs and NATs, share
// one rate instead) and oversized datagrams get 513. Each datagram is
// parsed once, by sipgo; one it cannot parse is answered from sipgo's log
// record of it (Edge.parseFailed in filter.go) with 400 when a reply is
// possible, and bad packets are logged once per source per interval,
// never with their payload. Then CheckRequest
// (Max-Forwards, mandatory headers) and the account: the request-URI's
// host is the account DNS name <account>.<zone>; anything else is 404.
// What the edge knows of an account (routes, trunks, each group's pool,
// a device's HA1s and group) it reads from the node's snapshots
// (Config.Accounts, package accountview), never with a round trip to the
// account's actor per request.
//
// The edge translates each request into a message for the virtual actor
// that owns it (translate.go is pure and fuzzed): a REGISTER becomes a
// Register for the device's devicegroup actor; an INVITE starts a call
// actor placed by tier 2 in the caller's group's pool, and the call's
// INVITE is handled on the node that got it — the edge forwards the
// INVITE there over SIP when it is another node. The target is the
// feature server that the account's routes name for (method, request-URI
// user), reached through its forwarding name <feature>.<account>.<zone>
// resolved by DNS (SRV, then A), with failover to the next target on 503,
// 408 or silence; or else the callee's registered contacts in the same
// account. Targets are probed with OPTIONS and skipped while down.
//
// Edge actors (flows.go). Each device flow — a TCP or TLS connection the
// device opened, or the UDP address it registers from (RFC 5626) — is an
// edge actor of the node that holds it: an entry of the edge's flow table
// with its device, transport, remote address, age and last activity
// (Edge.Flows; /debug/actors?kind=edge). Only that node can reach the
// device (a connection cannot be dialled back, NAT drops what another
// address sends), so a binding names it (edge_node), and a request for
// the device, from whichever node handles the call, goes to that node
// with the flow to deliver on, and out on the flow there; a flow the node
// no longer holds is 430 Flow Failed, and the device's other contacts are
// tried. The edge pings a registered connection that has been silent for
// StreamConfig.KeepAlive (CRLFCRLF) and closes one it cannot write to; a
// closed connection ends its flow.
//
// Hops between nodes carry X-Switchboard-Hop: the sending node's name, the
// flow to deliver on (if any) and an HMAC over them and the Call-ID with
// the cluster's route key (Config.RouteSecret, which peers share), so
// only a peer can send one. They go over TCP (or the flow's transport
// to a device): a softphone's INVITE is often larger than UDP may carry
// (RFC 3261 section 18.1.1).
//
// Dialogs. An edge record-routes a dialog when it holds a flow of it (the
// caller's, when the INVITE came to it directly; the callee's, when it
// sends to it directly) or when it sends to a feature server, and its
// Record-Route entry carries those flows (sbu, sbc) under the dialog's
// signature (dialog.go). A request of the dialog whose route set ends at
// an edge goes out on the flow of the party it is for. The node that
// hosts a call between two devices but holds neither's flow is not on
// the dialog's route: its loss does not break the dialog. The first node
// a BYE meets (not from a peer) ends the call's record through the call's
// actor, wherever it is (it reactivates from the store when its node
// died; the end is retried while the actor is unreachable).
//
// Session timers (RFC 4028) and hang-up. The session interval of the 2xx
// (Session-Expires) is given to the call's actor with the answer, and so
// are the dialog's Call-ID, tags, contacts, CSeq and Record-Route set
// (stored in the call's record); a 2xx to a re-INVITE or UPDATE in the
// dialog refreshes the session. A call whose session (or maximum length)
// runs out, or that is still up when its node has drained, is ended by
// its actor, and Edge.HangUp sends a BYE to each party along its route
// set. While its node drains (StopTakingCalls) the edge answers new
// calls 503 with Retry-After; calls in progress go on.
//
// Forking (RFC 3261 section 16.7; fork.go): an INVITE to a device with
// several contacts calls them in parallel, in groups of equal q, highest
// first (a contact registered without q has 1.0); the next group starts
// only when every branch of the one before ended without a 2xx, and a
// 6xx ends the fork. Ringing (180, 183) of every branch goes upstream.
// The first 2xx wins and goes upstream; every other branch is
// cancelled, one that has had no provisional response yet once it has
// (section 16.10), or dropped without a CANCEL if it stays silent for
// FailoverTimeout. A 2xx from a branch that lost is not
// relayed: the edge sends it ACK and BYE itself, so the caller and the
// call's record know one dialog. The caller's CANCEL cancels every
// branch; RingTimeout, from the first provisional response of any
// branch, bounds the whole fork (then 408). When every branch failed the
// caller gets the best final response (section 16.7 step 6: a 6xx, else
// the lowest class, preferring one about the callee to 408 and 503; a
// 503 becomes 500; none at all is 408). A MESSAGE, and any other
// request, goes to the contacts one after another, as it goes to
// feature-server targets, and failovers counts moves between
// feature-server targets only.
//
// Messages (RFC 3428; message.go): a MESSAGE over Config.Messages.MaxBody
// is 513, one without a body or with a media type not accepted 415. Every
// MESSAGE, and every INVITE, from an authenticated device or a trunk is
// checked by its account's messaging supervisor (the fraud engine of
// package fraud, run by the actor): "refuse" is 403, "throttle" 503 with
// Retry-After. A MESSAGE whose supervisor cannot answer is refused (503);
// an INVITE goes on (calls stay available, the failure is counted). A
// MESSAGE then goes to the feature server a route names (an SMS gateway),
// or to the callee device's contacts; with none registered it is queued
// at the supervisor and answered 202, and delivered, oldest first, when
// the device next registers. Until its final answer a MESSAGE is in
// flight at the supervisor; a message terminated meanwhile (fraud
// containment) is answered 403 whatever its target said. CheckSync sends
// the NOTIFY (Event: check-sync) that makes a phone re-fetch its
// provisioning document.
//
// No open relay: the edge signs its Record-Route entry (an HMAC over the
// Call-ID and the initiator's tag, keyed by Config.RouteSecret;
// dialog.go), and relays an in-dialog request (ACK included) only when
// the Route entry naming it carries that signature for the request's own
// Call-ID and tags. A forged To tag and Route get 403 and go nowhere. Out
// of dialog, the edge picks the target itself and drops any Route set the
// sender preloaded. Credentials for the edge's own realms are consumed
// before a request goes on (Kamailio's consume_credentials); other realms'
// pass.
//
// Flood exemption: only configured trunks, peer nodes, feature-server
// targets and the source of a registered device's flow are exempt from
// the flood limit; sending to an address does not exempt it.
//
// Declared trusted sources (trust.go, TrustConfig): an SBC or a site's
// NAT, declared by the operator (--sip-trusted-source) or by an account
// (sip_trusted_sources), is not counted against the per-source limit and
// never banned; all declared sources share one token bucket instead
// (TrustConfig.Rate, Burst), and what goes over it is dropped
// (trusted_rate), even after a device behind it registered; only a peer
// node inside a declared prefix takes nothing from the bucket.
// TrustConfig says how the edge gathers accounts' prefixes, when they
// lapse, and why no account can make an address unlimited by them.
//
// Streams (TCP, TLS; stream.go): a message must arrive within
// StreamConfig.MessageTimeout of its first byte (and a new connection's
// first message within it of the accept), a connection idle longer than
// IdleTimeout between messages is closed unless a device registered over
// it (then it may idle until the registration expires, plus a grace; its
// keep-alives count as traffic), and one IP address holds at most
// MaxPerSource connections (trusted sources are exempt). sipgo's own log
// records pass at most once per message and source per LogEvery, with
// packet content withheld.
//
// Authentication: devices answer a digest challenge (401 for REGISTER,
// 407 otherwise; package sipauth); requests from a trusted trunk's source
// prefixes skip it. The challenge offers one algorithm, the one
// sipauth.Offer picks for the device the credentials (or, before any,
// the From user) name: MD5 unless the device or its account is set to
// SHA-256 or the device has answered SHA-256 before, and only that
// answer is accepted, so a SHA-256 device is never downgraded (an MD5
// answer gets a new SHA-256 challenge). A device's first SHA-256 answer is
// recorded by its account actor (DigestAnswered). Config.DigestAlgorithms
// (--sip-digest) limits what the node accepts: MD5 not accepted becomes
// SHA-256; a SHA-256 device on a node without SHA-256 gets 403. (A
// device whose algorithm differs from its account's shows that it exists
// by the challenge it gets before any credentials; where that matters,
// set the account instead.) A device speaks only for itself in its own
// account: a From user other than the credentials' user, or a From domain
// of another account, is 403.
//
// Registrar: a contact's expiry is its expires parameter, else the
// Expires header, else DefaultExpires, capped at MaxExpires. One under
// MinExpires (and not 0) is raised to it and answered 200 with the raised
// value in the Contact's expires, as Kamailio and OpenSIPS do; an account
// with strict_min_expires answers 423 Interval Too Brief with Min-Expires
// instead (RFC 3261 section 10.3 step 7).
//
// Transactions: a finished non-INVITE server transaction over UDP is
// kept UDPTimerJ (5 s, Kamailio's wait timer; RFC 3261's 64*T1 is 32 s)
// to answer its request's retransmissions, over TCP and TLS not at all
// (Timer J zero), so that what finished transactions hold follows the
// request rate over 5 s. sipgo's timers are process globals: the first
// New sets Timer J once for the whole process.
//
// It must not touch the store or the cluster directly: state lives in the
// actors (Actors), membership comes through Members.
//
// # Metrics
//
//	switchboard_sip_requests_total{method}          requests received
//	switchboard_sip_responses_total{method,code}    responses sent upstream
//	switchboard_sip_transactions                    proxied transactions in progress
//	switchboard_sip_active_calls                    calls in progress this node carries (Config.LiveCalls)
//	switchboard_sip_calls_total{disposition}        calls ended here (rate() = calls per second)
//	switchboard_sip_auth_failures_total{reason}     digest failures (stale, replay, bad_response, tenancy, ...), forged dialogs (dialog) and hops (hop)
//	switchboard_sip_dropped_total{reason}           packets dropped before parsing (banned, trusted_rate, oversized, unparsable) and
//	                                                connections cut (connection_limit, message_timeout, idle_timeout, keepalive_failed)
//	switchboard_sip_failovers_total                 moves to the next feature-server target
//	switchboard_sip_probes_total{result}            OPTIONS probes of targets
//	switchboard_sip_fraud_checks_total{kind,verdict} MESSAGE and INVITE checks by the account's supervisor
//	switchboard_sip_queued_messages_total{result}   stored MESSAGEs handed to devices that registered
//
// Every series is listed at 0 from the start (metrics.zero in metrics.go:
// the common methods and codes, every disposition, reason, result and
// verdict), so that dashboards and alerts see it before the first request;
// rarer methods and codes appear when first counted.
package sipedge
