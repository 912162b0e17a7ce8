// Package sipp drives SIPp, the SIP traffic generator (Debian package
// sip-tester), from Go tests and benchmarks, so that the SIP edge is
// exercised by a peer that shares none of its code.
//
// It owns how SIPp is run here: finding the binary (Require skips a test
// without it, and fails it under CI=true), resolving the committed
// scenarios in testdata/sipp (Scenario), choosing free ports for SIPp's
// signalling, media and control sockets, starting a scenario in the
// background as a server (StartUAS, Start) and running a client scenario
// to completion (RunUAC), and reading the counts of successful and failed
// calls from SIPp's statistics file (-trace_stat).
//
// Every run passes -default_behaviors all,-abortunexp: an unexpected
// message is counted and the call goes on waiting for what the scenario
// expects, bounded by the receive timeout, instead of being torn down at
// once. Every client run also gets a global -timeout with -timeout_error,
// so nothing hangs; a server is stopped by Process.Stop (in t.Cleanup for
// StartUAS) and dies with its parent on Linux.
//
// # Scenarios
//
// Each file in testdata/sipp says in its header what it proves and what
// is set per run. The client scenarios share these conventions:
//
//	-s USER               Request-URI and To user (UACOptions.Service)
//	-set domain DOMAIN    Request-URI host (UACOptions.Domain)
//	-set from_user USER   From user (UACOptions.FromUser)
//	-au, -ap              digest credentials (UACOptions.AuthUser, AuthPassword)
//	-d MS                 call length, the pause before BYE or CANCEL
//	-inf FILE             *_users.xml: the caller and its credentials per call (UACOptions.Users)
//
// A SIPp "call" is one Call-ID: a dialog, a MESSAGE, a REGISTER exchange
// or an OPTIONS probe. The server scenarios (uas*.xml) answer OPTIONS with
// 200 as a call of its own, so a proxy's health probes never disturb them,
// but they do add to the server side's counts: assert on the client side.
//
// # SIPp 3.6 as packaged by Debian 12
//
//   - Digest: MD5 (and AKAv1-MD5) only; a challenge with algorithm=SHA-256
//     is an error to it. Its digest uri is "sip:<remote ip>:<remote port>"
//     unless -auth_uri is given, so RunUAC passes the Request-URI of the
//     authenticated request (UACOptions.AuthURI) by default.
//   - A -set variable must be declared by the scenario (<Global>); RunUAC
//     reads the declarations and fills in domain, from_user and
//     max_forwards, and refuses a run that leaves one unset.
//   - -p 0 means port 5060, and media sockets (-mp, and -mp+2) are always
//     bound: RunUAC and Start choose free ports for both.
//   - Its verifyauth action reads only Authorization, never
//     Proxy-Authorization.
//   - Per-call credentials from an injection file (-inf, UACOptions.Users,
//     written by WriteUsers) must be quoted inside the keyword,
//     [authentication username="[field0]" password="[field1]"]: unquoted,
//     the first ']' ends the keyword (the *_users.xml scenarios).
//   - Its response times (rtd, -trace_rtt) count whole milliseconds;
//     ResponseTimes reads microsecond times from the message trace instead.
//
// This package must not import the packages it tests (sipedge, node):
// they are driven from outside, over the network, as a real peer would.
package sipp
