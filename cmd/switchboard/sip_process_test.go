package main

// End-to-end SIP tests: real switchboard processes, SIPp (Debian package
// sip-tester) as the devices, trunks and feature servers, real DNS
// queries to the node's responder. Under CI=true a missing sipp fails
// them; elsewhere they skip with a message saying how to install it.

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/dnszone"
	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

const sipZone = "sip.switchboard.test"

// sipNode is a switchboard process with its member id and its SIP, DNS
// and gossip addresses.
type sipNode struct {
	*proc
	name, id, sip, dns, gossip string
}

// sipEndpoints reads a node's id and addresses from its own entry in
// /debug/cluster.
func sipEndpoints(t *testing.T, p *proc, name string) *sipNode {
	t.Helper()
	self, err := p.Self(context.Background())
	if err != nil || self.Addresses["sip"] == "" || self.Addresses["dns"] == "" {
		t.Fatalf("node %s advertises no SIP or DNS address: %+v %v", name, self, err)
	}
	return &sipNode{proc: p, name: name, id: self.ID, sip: self.Addresses["sip"], dns: self.Addresses["dns"], gossip: self.Addresses["gossip"]}
}

// sipArgs make failover and probing quick enough for a test.
var sipArgs = []string{"--sip-failover-timeout", "500ms", "--sip-probe-interval", "300ms"}

func startSIPNode(t *testing.T) *sipNode {
	t.Helper()
	sipp.Require(t)
	args := append([]string{"--name", "sip1", "--data", t.TempDir()}, sipArgs...)
	return sipEndpoints(t, startNode(t, nodeOptions{args: args}), "sip1")
}

func (n *sipNode) put(t *testing.T, path string, body any) {
	t.Helper()
	r := n.call(t, http.MethodPut, path, body)
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Fatalf("PUT %s: %s", path, r)
	}
}

// provisionSIPAccount creates account a with group hq (pinned to pool
// when set) and devices alice and bob, whose passwords are
// "<device>-password-1".
func provisionSIPAccount(t *testing.T, n *sipNode, a, pool string) {
	t.Helper()
	n.put(t, "/v1/accounts/"+a, map[string]string{})
	n.put(t, "/v1/accounts/"+a+"/groups/hq", map[string]string{"pool": pool})
	for _, d := range []string{"alice", "bob"} {
		n.put(t, "/v1/accounts/"+a+"/devices/"+d, map[string]string{"group": "hq", "password": d + "-password-1"})
	}
}

type featureTarget struct {
	Address   string `json:"address"`
	Priority  int    `json:"priority"`
	Weight    int    `json:"weight"`
	Transport string `json:"transport"`
}

func putFeature(t *testing.T, n *sipNode, f string, addrs ...string) {
	t.Helper()
	var ts []featureTarget
	for i, a := range addrs {
		ts = append(ts, featureTarget{Address: a, Priority: i + 1, Weight: 1, Transport: "udp"})
	}
	n.put(t, "/v1/feature-servers/"+f, map[string]any{"targets": ts})
}

func putRoutes(t *testing.T, n *sipNode, a string, routes ...[3]string) {
	t.Helper()
	var rs []map[string]string
	for _, r := range routes {
		rs = append(rs, map[string]string{"method": r[0], "user": r[1], "feature": r[2]})
	}
	n.put(t, "/v1/accounts/"+a+"/routes", map[string]any{"routes": rs})
}

// deviceCall is a SIPp client run as device dev of account a.
func deviceCall(a, dev, service string) sipp.UACOptions {
	return sipp.UACOptions{
		Service: service, Domain: a + "." + sipZone, FromUser: dev,
		AuthUser: dev, AuthPassword: dev + "-password-1", TraceMessages: true,
	}
}

func runUAC(t *testing.T, scenario sipp.Scenario, target string, o sipp.UACOptions) sipp.Result {
	t.Helper()
	res, err := sipp.RunUAC(context.Background(), scenario, target, o)
	if err != nil {
		t.Fatalf("%s against %s: %v\n%s", scenario.Name(), target, err, res.Errors)
	}
	return res
}

func wantAllSuccessful(t *testing.T, what string, res sipp.Result, calls int) {
	t.Helper()
	if res.Successful != calls || res.Failed != 0 {
		t.Fatalf("%s: %d of %d calls successful, %d failed\n%s\n%s", what, res.Successful, calls, res.Failed, res.Errors, nodeproc.Tail(res.Messages))
	}
}

var callIDRE = regexp.MustCompile(`(?m)^Call-ID: *(\S+)`)

// callIDs are the Call-IDs a traced SIPp run used, in order.
func callIDs(res sipp.Result) []string {
	var out []string
	for _, m := range callIDRE.FindAllStringSubmatch(res.Messages, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

type callJSON struct {
	ID          string `json:"id"`
	Account     string `json:"account"`
	Caller      string `json:"caller"`
	Callee      string `json:"callee"`
	Pool        string `json:"pool"`
	Node        string `json:"node"`
	EdgeNode    string `json:"edge_node"`
	Route       string `json:"route"`
	Target      string `json:"target"`
	State       string `json:"state"`
	Status      int    `json:"status"`
	Disposition string `json:"disposition"`
	EndedBy     string `json:"ended_by"`
	AnsweredAt  string `json:"answered_at"`
	EndedAt     string `json:"ended_at"`
	DurationMs  *int64 `json:"duration_ms"`
}

// endedCall polls until the call record of id says the call ended: the
// BYE's 200 reaches SIPp a moment before the record is written.
func endedCall(t *testing.T, n *sipNode, id string) callJSON {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := n.call(t, http.MethodGet, "/v1/calls/"+id, nil)
		if r.Status == http.StatusOK {
			c := decode[callJSON](t, r)
			if c.State == "ended" {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s has no ended record after 10s: %s", id, r)
		}
		time.Sleep(20 * time.Millisecond) // polling the record, not waiting blind
	}
}

type targetJSON struct {
	Address string `json:"address"`
	Up      bool   `json:"up"`
}

// TestSIP_RFC3261_10_RegisterWithDigestKeepsBindings: a device registers
// through a 401 challenge, its binding is listed, and Contact: * with
// Expires: 0 removes it.
func TestSIP_RFC3261_10_RegisterWithDigestKeepsBindings(t *testing.T) {
	t.Parallel()
	n := startSIPNode(t)
	provisionSIPAccount(t, n, "acme", "")
	o := deviceCall("acme", "alice", "alice")
	wantAllSuccessful(t, "REGISTER", runUAC(t, sipp.RegisterAuth, n.sip, o), 1)

	type bindings struct {
		Bindings []struct {
			Device    string `json:"device"`
			Contact   string `json:"contact"`
			ExpiresIn int    `json:"expires_in"`
			EdgeNode  string `json:"edge_node"`
		} `json:"bindings"`
	}
	b := decode[bindings](t, n.call(t, http.MethodGet, "/v1/accounts/acme/groups/hq/bindings", nil))
	if len(b.Bindings) != 1 || b.Bindings[0].Device != "alice" || b.Bindings[0].ExpiresIn < 3500 || b.Bindings[0].EdgeNode != "sip1" {
		t.Fatalf("after REGISTER: bindings %+v, want one for alice expiring in about 3600 s, taken by sip1", b.Bindings)
	}

	// A wrong password is challenged again, never bound.
	bad := deviceCall("acme", "bob", "bob")
	bad.AuthPassword = "not-the-password"
	if res, _ := sipp.RunUAC(context.Background(), sipp.RegisterAuth, n.sip, bad); res.Successful != 0 {
		t.Fatalf("REGISTER with a wrong password succeeded: %s", res)
	}

	wantAllSuccessful(t, "un-REGISTER", runUAC(t, sipp.Unregister, n.sip, o), 1)
	b = decode[bindings](t, n.call(t, http.MethodGet, "/v1/accounts/acme/groups/hq/bindings", nil))
	if len(b.Bindings) != 0 {
		t.Fatalf("after Contact: * Expires: 0: bindings %+v, want none", b.Bindings)
	}
}

// TestSIP_InviteReachesFeatureServerByForwardingName: a device's INVITE
// for *97 is routed by the account's route to voicemail, resolved through
// the node's DNS responder as voicemail.acme.<zone>, answered by a SIPp
// UAS; ACK and BYE follow Record-Route; the call record says who, where
// and how it ended. Also MESSAGE to an SMS gateway.
func TestSIP_InviteReachesFeatureServerByForwardingName(t *testing.T) {
	t.Parallel()
	n := startSIPNode(t)
	provisionSIPAccount(t, n, "acme", "")
	vm := sipp.StartUAS(t, sipp.UAS, "127.0.0.1:0")
	sms := sipp.StartUAS(t, sipp.UASMessage, "127.0.0.1:0")
	putFeature(t, n, "voicemail", vm.Addr)
	putFeature(t, n, "sms", sms.Addr)
	putRoutes(t, n, "acme", [3]string{"INVITE", "*97", "voicemail"}, [3]string{"MESSAGE", "*", "sms"})

	// The DNS responder answers the forwarding name (SRV, then A).
	r, err := dnszone.NewResolver(dnszone.ResolverConfig{Server: n.dns})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := r.Resolve(context.Background(), "voicemail.acme."+sipZone, "udp")
	if err != nil || len(ts) != 1 || fmt.Sprintf("%s:%d", ts[0].IP, ts[0].Port) != vm.Addr {
		t.Fatalf("voicemail.acme.%s resolves to %v (%v), want %s", sipZone, ts, err, vm.Addr)
	}

	o := deviceCall("acme", "alice", "*97")
	o.Calls, o.CallLength = 3, 50*time.Millisecond
	res := runUAC(t, sipp.UACInviteAuth, n.sip, o)
	wantAllSuccessful(t, "INVITE *97", res, 3)
	ids := callIDs(res)
	if len(ids) != 3 {
		t.Fatalf("traced Call-IDs %v, want 3", ids)
	}
	// Issue 9, hole 4: the callers answered 407 challenges, and their
	// Proxy-Authorization (response, nonce, cnonce) stopped at the proxy;
	// uas.xml logs any digest credentials that reach it.
	if vmRes, err := vm.Stop(); err != nil || strings.Contains(vmRes.Errors, "matched but should not") {
		t.Fatalf("the feature server saw the callers' credentials (%v):\n%s", err, vmRes.Errors)
	}
	for _, id := range ids {
		c := endedCall(t, n, id)
		if c.Account != "acme" || c.Caller != "alice" || c.Route != "voicemail" || c.Target != vm.Addr ||
			c.Node != "sip1" || c.EdgeNode != "sip1" || c.Status != 200 || c.Disposition != "completed" ||
			c.EndedBy != "caller" || c.AnsweredAt == "" || c.DurationMs == nil || *c.DurationMs < 40 {
			t.Errorf("call record %+v: want acme/alice to voicemail at %s on sip1, answered, ended by the caller after >= 50ms", c, vm.Addr)
		}
	}

	// MESSAGE from a trusted trunk (uac_message does no digest).
	n.put(t, "/v1/accounts/acme/trunks/sms-in", map[string]any{"sources": []string{"127.0.0.1/32"}})
	m := sipp.UACOptions{Service: "5551234", Domain: "acme." + sipZone, FromUser: "carrier", Calls: 2, TraceMessages: true}
	wantAllSuccessful(t, "MESSAGE", runUAC(t, sipp.UACMessage, n.sip, m), 2)
}

// TestSIP_FailoverToNextTarget: the first target refuses with 503, or is
// not there at all; the call reaches the next one, and the dead target is
// marked down and skipped (Kamailio dispatcher-like probing).
func TestSIP_FailoverToNextTarget(t *testing.T) {
	t.Parallel()
	n := startSIPNode(t)
	provisionSIPAccount(t, n, "acme", "")
	refuses := sipp.StartUAS(t, sipp.UAS503, "127.0.0.1:0")
	answers := sipp.StartUAS(t, sipp.UAS, "127.0.0.1:0")
	dead := "127.0.0.1:" + freePort(t) // nothing listens on UDP there
	putFeature(t, n, "voicemail", refuses.Addr, answers.Addr)
	putFeature(t, n, "conference", dead, answers.Addr)
	putRoutes(t, n, "acme", [3]string{"INVITE", "*97", "voicemail"}, [3]string{"INVITE", "*88", "conference"})

	o := deviceCall("acme", "alice", "*97")
	o.Calls = 2
	res := runUAC(t, sipp.UACInviteAuth, n.sip, o)
	wantAllSuccessful(t, "INVITE *97 with the first target answering 503", res, 2)
	for _, id := range callIDs(res) {
		if c := endedCall(t, n, id); c.Target != answers.Addr {
			t.Errorf("call %s answered by %q, want the second target %s", id, c.Target, answers.Addr)
		}
	}

	o = deviceCall("acme", "alice", "*88")
	o.Calls = 2
	wantAllSuccessful(t, "INVITE *88 with the first target down", runUAC(t, sipp.UACInviteAuth, n.sip, o), 2)

	// Two silent attempts and the failed probes mark it down.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts := decode[struct {
			Targets []targetJSON `json:"targets"`
		}](t, n.call(t, http.MethodGet, "/debug/sip/targets", nil))
		i := slices.IndexFunc(ts.Targets, func(x targetJSON) bool { return x.Address == dead })
		if i >= 0 && !ts.Targets[i].Up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("target %s never marked down: %+v", dead, ts.Targets)
		}
		time.Sleep(50 * time.Millisecond) // polling the node's view
	}
	// Down, it is skipped: a call now needs no failover wait.
	start := time.Now()
	o.Calls = 1
	wantAllSuccessful(t, "INVITE *88 with the dead target skipped", runUAC(t, sipp.UACInviteAuth, n.sip, o), 1)
	t.Logf("call with the dead target known down took %v", time.Since(start))
}

// TestSIP_RFC3261_9_CancelWhileRinging: the caller cancels while the
// feature server rings; the CANCEL goes downstream and the record says
// canceled.
func TestSIP_RFC3261_9_CancelWhileRinging(t *testing.T) {
	t.Parallel()
	n := startSIPNode(t)
	provisionSIPAccount(t, n, "acme", "")
	n.put(t, "/v1/accounts/acme/trunks/pbx", map[string]any{"sources": []string{"127.0.0.1/32"}})
	ring := sipp.StartUAS(t, sipp.UASRing, "127.0.0.1:0")
	putFeature(t, n, "ivr", ring.Addr)
	putRoutes(t, n, "acme", [3]string{"INVITE", "*", "ivr"})

	o := sipp.UACOptions{Service: "100", Domain: "acme." + sipZone, FromUser: "carrier", CallLength: 200 * time.Millisecond, TraceMessages: true}
	res := runUAC(t, sipp.UACCancel, n.sip, o)
	wantAllSuccessful(t, "INVITE then CANCEL through a trusted trunk", res, 1)
	c := endedCall(t, n, callIDs(res)[0])
	if c.Disposition != "canceled" || c.Status != 487 || c.EndedBy != "cancel" {
		t.Fatalf("call record %+v: want canceled, 487, ended by cancel", c)
	}
}

// TestSIP_TenancyAndBadRequests: a device of one account never reaches
// another's (403), unknown users and domains are 404, Max-Forwards 0 is
// 483.
func TestSIP_TenancyAndBadRequests(t *testing.T) {
	t.Parallel()
	n := startSIPNode(t)
	provisionSIPAccount(t, n, "acme", "")
	provisionSIPAccount(t, n, "globex", "")
	vm := sipp.StartUAS(t, sipp.UAS, "127.0.0.1:0")
	putFeature(t, n, "voicemail", vm.Addr)
	putRoutes(t, n, "globex", [3]string{"INVITE", "*97", "voicemail"})

	// Cross-account: refused before any challenge.
	cross := sipp.UACOptions{Service: "*97", Domain: "globex." + sipZone, FromUser: "alice",
		Vars: map[string]string{"from_domain": "acme." + sipZone}, TraceMessages: true}
	if res, err := sipp.RunUAC(context.Background(), sipp.Scenario("testdata/sipp/uac_cross_account.xml"), n.sip, cross); err != nil || res.Successful != 1 {
		t.Fatalf("acme device into globex: want 403: %v %s\n%s", err, res, nodeproc.Tail(res.Messages))
	}
	for _, tc := range []struct {
		name, service, domain, expect, maxForwards string
	}{
		{"forwarding name of another account", "*97", "voicemail.globex." + sipZone, "404", ""},
		{"unknown account domain", "bob", "nobody." + sipZone, "404", ""},
		{"Max-Forwards 0 (RFC 3261 16.3 step 3)", "*97", "globex." + sipZone, "483", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sipp.UACOptions{Service: tc.service, Domain: tc.domain, FromUser: "alice", TraceMessages: true,
				Vars: map[string]string{"expect": tc.expect}}
			if tc.maxForwards != "" {
				o.Vars["max_forwards"] = tc.maxForwards
			}
			res, err := sipp.RunUAC(context.Background(), sipp.UACExpect, n.sip, o)
			if err != nil || res.Successful != 1 {
				t.Fatalf("want %s: %v %s\n%s", tc.expect, err, res, nodeproc.Tail(res.Messages))
			}
		})
	}
	if vmRes, _ := vm.Stats(); vmRes.Total != 0 {
		t.Fatalf("globex's voicemail got %d calls from acme's device", vmRes.Total)
	}
}

// TestSIP_ThreeNodeCluster: three nodes share PostgreSQL; the group's pool
// is east (n1, n2), SIP enters at n3 (west). The account DNS name resolves
// to the east nodes; a device registers at one of them and calls the
// feature server through n3; each call lands on a node of east (its
// record and the debug endpoint say so), and n3 was its edge.
// poolNode is one node of startPooledSIPCluster: its name, its pool ("":
// the default) and more command-line arguments.
type poolNode struct {
	name, pool string
	args       []string
}

// startPooledSIPCluster starts the nodes on PostgreSQL, each after the
// first joining it, and returns once each sees all alive and routes actor
// requests.
func startPooledSIPCluster(t *testing.T, nodes ...poolNode) []*sipNode {
	t.Helper()
	sipp.Require(t)
	dsn := postgresDSN(t)
	var out []*sipNode
	var cl []*clusterNode
	for i, pn := range nodes {
		args := append([]string{"--name", pn.name, "--store", dsn, "--gossip-profile", "local"}, sipArgs...)
		if pn.pool != "" {
			args = append(args, "--pool", pn.pool)
		}
		args = append(args, pn.args...)
		if i > 0 {
			args = append(args, "--join", out[0].gossip)
		}
		n := sipEndpoints(t, startNode(t, nodeOptions{args: args}), pn.name)
		out = append(out, n)
		cl = append(cl, &clusterNode{proc: n.proc, name: n.name, id: n.id, gossip: n.gossip})
	}
	waitAllAlive(t, cl, cl)
	waitServing(t, cl)
	return out
}

func TestSIP_ThreeNodeCluster(t *testing.T) {
	t.Parallel()
	ns := startPooledSIPCluster(t, poolNode{name: "n1", pool: "east"}, poolNode{name: "n2", pool: "east"}, poolNode{name: "n3", pool: "west"})
	n1, n2, n3 := ns[0], ns[1], ns[2]

	account := "acme" + randomID()
	provisionSIPAccount(t, n3, account, "east")
	// Eight calls in 0.4 s from one device is a machine, and the default
	// fraud policy treats it as one (a burst of calls is how toll fraud
	// looks): this test measures placement, so its account allows bursts.
	n3.put(t, "/v1/accounts/"+account+"/fraud-policy", map[string]any{"indicators": map[string]any{
		"rate_per_minute":  map[string]any{"warning": 1000, "critical": 2000},
		"burst_per_second": map[string]any{"warning": 500, "critical": 1000},
	}})
	vm := sipp.StartUAS(t, sipp.UAS, "127.0.0.1:0")
	putFeature(t, n3, "voicemail", vm.Addr)
	putRoutes(t, n3, account, [3]string{"INVITE", "*97", "voicemail"})

	// The account DNS name: the alive nodes of the account's pools.
	r, err := dnszone.NewResolver(dnszone.ResolverConfig{Server: n3.dns})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := r.Resolve(context.Background(), account+"."+sipZone, "udp")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range ts {
		got = append(got, fmt.Sprintf("%s:%d", x.IP, x.Port))
	}
	slices.Sort(got)
	east := []string{n1.sip, n2.sip}
	slices.Sort(east)
	if !slices.Equal(got, east) {
		t.Fatalf("%s.%s resolves to %v, want the east nodes %v", account, sipZone, got, east)
	}
	if _, err := r.Resolve(context.Background(), "nosuch."+sipZone, "udp"); err == nil {
		t.Fatal("an unknown account name resolved; want NXDOMAIN")
	}

	// A device registers at the first address the name gave.
	wantAllSuccessful(t, "REGISTER through the cluster", runUAC(t, sipp.RegisterAuth, got[0], deviceCall(account, "alice", "alice")), 1)

	// Calls by the account's DNS name reach the feature server.
	byName := deviceCall(account, "alice", "*97")
	byName.Calls = 2
	wantAllSuccessful(t, "INVITE *97 at the address the account name gave", runUAC(t, sipp.UACInviteAuth, got[1], byName), 2)

	// Calls enter at n3 and are handled on east nodes.
	o := deviceCall(account, "bob", "*97")
	o.Calls, o.Rate, o.CallLength = 8, 20, 300*time.Millisecond
	res := runUAC(t, sipp.UACInviteAuth, n3.sip, o)
	wantAllSuccessful(t, "INVITE *97 through n3", res, 8)
	ended := callIDs(res)
	for _, id := range ended {
		c := endedCall(t, n3, id)
		if c.EdgeNode != "n3" || (c.Node != "n1" && c.Node != "n2") || c.Pool != "east" || c.Target != vm.Addr || c.Status != 200 {
			t.Errorf("call %s: edge %s, node %s, pool %s, target %s, status %d; want edge n3 and a node of east", id, c.EdgeNode, c.Node, c.Pool, c.Target, c.Status)
		}
	}

	// While a call lasts, the debug endpoint shows it on an east node.
	o.Calls, o.CallLength = 1, 3*time.Second
	done := make(chan sipp.Result, 1)
	go func() {
		res, _ := sipp.RunUAC(context.Background(), sipp.UACInviteAuth, n3.sip, o)
		done <- res
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// (Reading an ended call's record activates it anywhere: only
		// the live call counts.)
		acts := decode[clActivations](t, n3.call(t, http.MethodGet, "/debug/actors?kind=call&scope=cluster", nil))
		live := slices.DeleteFunc(acts.Activations, func(a clActivation) bool { return slices.Contains(ended, a.ID) })
		if len(live) > 0 {
			for _, a := range live {
				if a.Node != "n1" && a.Node != "n2" {
					t.Errorf("the live call actor lives on %s, not in pool east: %+v", a.Node, a)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no live call actor seen on the debug endpoint")
		}
		time.Sleep(50 * time.Millisecond) // polling the debug endpoint
	}
	if res := <-done; res.Successful != 1 {
		t.Fatalf("the long call failed: %s", res)
	}
}
