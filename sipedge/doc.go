// Package sipedge will own SIP signalling: UDP, TCP and TLS listeners on
// emiago/sipgo (its only home), the edge actors that requests enter,
// digest authentication against the account's HA1s, and the stateful
// proxying of calls and messages.
package sipedge
