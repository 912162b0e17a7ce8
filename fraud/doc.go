// Package fraud is the fraud detector of hosted messaging (issue 10, the
// third abstract: "detecting potential fraud based on multiple and
// configurable fraud indicators as well as historical data, which can be
// customized for individual users or groups"). The account's messaging
// supervisor (the runtime) and the fraud simulation (package simulations)
// run this same code.
//
// It owns:
//
//   - Policy: the indicators (rate per minute, burst per second, distinct
//     destinations, destination risk with premium and high-cost prefixes
//     and country permissions, sequential destinations, same body, history
//     deviation, new source, failure ratio), each with a warning, an
//     optional throttle and a critical threshold and OpenSIPS-style
//     day/time schedules; the safe list, monitor mode and the actions at
//     critical. Merge layers defaults, account, group and device;
//     Validate names the JSON field at fault; Origin tells which layer set
//     a field.
//   - Sender: one sender's state in fixed memory (sliding windows of 16
//     buckets, 64 recent destinations, 8 recent bodies) and Check, which
//     scores a MESSAGE or an INVITE and returns a Verdict; Outcome feeds
//     delivery results. At critical it lists the actions and the
//     destinations to block and empties the sender's windows.
//   - History: hourly aggregates and daily peaks per device, group or
//     account over the retention, known sources and destinations (hashes
//     only), the hour-of-week baseline (Expected), and its binary
//     encoding (MarshalBinary, UnmarshalBinary: fuzzed).
//   - Blocks: an account's blocked destinations with expiries.
//   - FixedThreshold: an OpenSIPS fraud_detection-style baseline (per-rule
//     calls per minute, sequential and total counters), for the
//     simulation and the benchmarks only; the runtime does not use it.
//
// Everything here is pure: no I/O, no goroutines, no clock (every time is
// passed in), no randomness, no global state. Senders and Histories are
// not safe for concurrent use; their owner serializes access. This package
// must not import any other Switchboard package, nor touch actors,
// storage, the network or metrics: the supervisor persists histories,
// carries out the actions and counts the metrics.
package fraud
