// Package nodeproc runs `switchboard node` as a child process and talks to
// it over HTTP: it is the one harness of the process tests and the failover
// benchmark (cmd/switchboard) and of the live simulation (simulations).
//
// Start picks a free loopback HTTP port (a port taken between the pick and
// the node's bind is retried on another), lets gossip, actor, SIP and DNS
// bind port 0, and returns once /healthz answers 200 "serving". A Node
// keeps the process's output (or sends it where Options.Output says),
// answers Do and GetJSON, reads its own member entry of /debug/cluster
// (Self: id and gossip address, for the next node's --join), and ends with
// Stop (SIGTERM, a clean exit required) or Kill (SIGKILL). Poll is the one
// wait-for-a-condition loop with a deadline; WaitSettled waits until a set
// of nodes see one another alive.
//
// The package starts processes and reads HTTP; it must not import node,
// actors or cluster: it sees the binary from outside, as an operator does.
// The environment of a child holds no SWITCHBOARD_* variable of this
// process, so a developer's settings cannot change what a run starts.
package nodeproc
