//go:build unix

// Cluster process tests: several real switchboard processes form one gossip
// cluster on loopback (--gossip-profile local, for fast failure detection)
// over the shared PostgreSQL store, and the tests drive them as an operator
// would: provision through any node, read through every node, SIGKILL one,
// drain one, restart one under its old name. They reuse the binary, startNode
// and the HTTP helpers of process_test.go.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
)

// Sizes of the cluster tests.
const (
	clusterAccounts      = 30  // accounts provisioned by the convergence test
	drainAccounts        = 40  // accounts activated before a drain
	killTestAccounts     = 6   // accounts the SIGKILL test writes devices into
	killTestDevices      = 450 // devices offered before the kill stops the feed
	killTestAfter        = 150 // acknowledged device PUTs before the SIGKILL
	clusterConverge      = 30 * time.Second
	clusterFailureDetect = 45 * time.Second // memberlist's local profile marks a killed member dead in about 10 s
)

// The warning a node logs when it joins a cluster on the embedded store.
const badgerJoinWarning = "state will not follow actors"

// ---- wire shapes of the cluster debug endpoints ----

type (
	clMember struct {
		Name      string            `json:"name"`
		ID        string            `json:"id"`
		Pool      string            `json:"pool"`
		Addresses map[string]string `json:"addresses"`
		Status    string            `json:"status"`
		Load      struct {
			Activations map[string]int `json:"activations"`
		} `json:"load"`
		Local bool `json:"local"`
	}
	clView struct {
		Node    string         `json:"node"`
		Members []clMember     `json:"members"`
		Counts  map[string]int `json:"counts"`
	}
	clActivation struct {
		Kind   string `json:"kind"`
		ID     string `json:"id"`
		Node   string `json:"node"`
		NodeID string `json:"node_id"`
	}
	clActivations struct {
		Scope       string                    `json:"scope"`
		Activations []clActivation            `json:"activations"`
		Counts      map[string]map[string]int `json:"counts"`
		Incomplete  string                    `json:"incomplete"`
	}
	clCandidate struct {
		Node   string `json:"node"`
		NodeID string `json:"node_id"`
		Rank   int    `json:"rank"`
	}
	clPlacement struct {
		Node       string        `json:"node"`
		NodeID     string        `json:"node_id"`
		Owner      string        `json:"directory_owner"`
		OwnerID    string        `json:"directory_owner_id"`
		State      string        `json:"state"`
		Strategy   string        `json:"strategy"`
		Reason     string        `json:"reason"`
		Candidates []clCandidate `json:"candidates"`
	}
	clDescribe struct {
		Node           string          `json:"node"`
		Placement      *clPlacement    `json:"placement"`
		PlacementError string          `json:"placement_error"`
		State          json.RawMessage `json:"state"`
	}
)

// member returns the member with id, if v lists it.
func (v clView) member(id string) (clMember, bool) {
	i := slices.IndexFunc(v.Members, func(m clMember) bool { return m.ID == id })
	if i < 0 {
		return clMember{}, false
	}
	return v.Members[i], true
}

func (v clView) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s sees", v.Node)
	for _, m := range v.Members {
		fmt.Fprintf(&b, " %s(%s)=%s", m.Name, m.ID, m.Status)
	}
	return b.String()
}

// ---- cluster nodes ----

// clusterNode is one switchboard process in a test cluster.
type clusterNode struct {
	*proc
	name   string // --name: the human name, kept across restarts
	id     string // memberlist name: the process's actor-system id, new per process
	gossip string // gossip address, for the --join of the next node
}

// startClusterNode starts `switchboard node --name name` with store flags
// (--store DSN or --data DIR), fast gossip timers and --join seeds, waits
// until it serves (a joining node serves once it has joined), and learns
// its id and gossip address from its own /debug/cluster.
func startClusterNode(t testing.TB, name string, store []string, join ...string) *clusterNode {
	t.Helper()
	args := append([]string{"--name", name, "--gossip-profile", "local"}, store...)
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	n := &clusterNode{proc: startNode(t, nodeOptions{args: args}), name: name}
	self, err := n.Self(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if self.Name != name || self.Addresses["actor"] == "" || self.Addresses["http"] != n.Addr {
		t.Fatalf("node %s: its own member entry is %+v; want name %s, an id, gossip and actor addresses, and http %s", name, self, name, n.Addr)
	}
	n.id, n.gossip = self.ID, self.Addresses["gossip"]
	return n
}

// startCluster starts nodes n1..nN on the PostgreSQL store: n1 alone, the
// others joining n1. It returns once every node sees all of them alive.
func startCluster(t *testing.T, dsn string, size int) []*clusterNode {
	t.Helper()
	store := []string{"--store", dsn}
	nodes := []*clusterNode{startClusterNode(t, "n1", store)}
	for i := 2; i <= size; i++ {
		nodes = append(nodes, startClusterNode(t, fmt.Sprintf("n%d", i), store, nodes[0].gossip))
	}
	waitAllAlive(t, nodes, nodes)
	waitServing(t, nodes)
	return nodes
}

// waitServing polls until every node routes actor requests: gossip can
// show every member alive a moment before each directory has heard every
// member's claims for the new view, and until then a lookup may answer 503
// (which tells a client to retry). A GET of an account that does not exist
// goes through the lookup and answers 404 once it works.
func waitServing(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		for i := range 6 {
			path := fmt.Sprintf("/v1/accounts/probe-%s-%d", n.name, i)
			eventually(t, clusterConverge, n.name+" routes "+path, func() (bool, string) {
				r := n.call(t, http.MethodGet, path, nil)
				return r.Status == http.StatusNotFound, r.String()
			})
		}
	}
}

// waitAllAlive polls until every node of observers lists every node of
// members as alive, and no other member as alive.
func waitAllAlive(t *testing.T, observers, members []*clusterNode) {
	t.Helper()
	for _, o := range observers {
		eventually(t, clusterConverge, o.name+" sees every member alive", func() (bool, string) {
			v, err := fetchJSON[clView](o.proc, "/debug/cluster")
			if err != nil {
				return false, err.Error()
			}
			for _, m := range members {
				if got, ok := v.member(m.id); !ok || got.Status != "alive" || got.Name != m.name {
					return false, v.String()
				}
			}
			return v.Counts["alive"] == len(members), v.String()
		})
	}
}

// waitStatus polls until every observer lists the member with id in one of
// the statuses; "gone" matches a member no longer listed.
func waitStatus(t *testing.T, observers []*clusterNode, id string, within time.Duration, statuses ...string) {
	t.Helper()
	for _, o := range observers {
		eventually(t, within, fmt.Sprintf("%s lists member %s as %v", o.name, id, statuses), func() (bool, string) {
			v, err := fetchJSON[clView](o.proc, "/debug/cluster")
			if err != nil {
				return false, err.Error()
			}
			m, ok := v.member(id)
			if !ok {
				return slices.Contains(statuses, "gone"), v.String()
			}
			return slices.Contains(statuses, m.Status), v.String()
		})
	}
}

// ---- polling and HTTP without failing ----

// eventually polls cond (nodeproc.Poll) and fails the test with cond's
// last report if it does not hold within the bound.
func eventually(t *testing.T, within time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	if err := nodeproc.Poll(context.Background(), within, what, cond); err != nil {
		t.Fatal(err)
	}
}

// fetchJSON GETs path and decodes a 200 reply; anything else is an error,
// for callers that poll.
func fetchJSON[T any](p *proc, path string) (T, error) {
	var v T
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return v, p.GetJSON(ctx, path, &v)
}

// getRetrying GETs path until it answers something other than 503 (an
// actor whose node died reactivates on first use, and until the cluster
// agrees that the node is dead the request may time out), or until the
// deadline. Errors of transport are retried too.
func getRetrying(p *proc, path string, deadline time.Time) (reply, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := p.Do(ctx, http.MethodGet, path, nil, nil)
		cancel()
		if err == nil && r.Status != http.StatusServiceUnavailable {
			return r, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("GET %s: still %s", path, r)
			}
			return r, err
		}
		<-tick.C
	}
}

// clusterActivationsOf reads /debug/actors?scope=cluster&kind=account
// through p and keeps the activations of accounts named with prefix. It
// fails the test if a member did not answer.
func clusterActivationsOf(t *testing.T, p *clusterNode, prefix string) []clActivation {
	t.Helper()
	r := p.call(t, http.MethodGet, "/debug/actors?scope=cluster&kind=account", nil)
	want(t, r, http.StatusOK, "GET /debug/actors?scope=cluster through "+p.name)
	l := decode[clActivations](t, r)
	if l.Scope != "cluster" || l.Incomplete != "" {
		t.Fatalf("cluster activations through %s: scope %q, incomplete %q; want a complete cluster listing", p.name, l.Scope, l.Incomplete)
	}
	return slices.DeleteFunc(l.Activations, func(a clActivation) bool { return !strings.HasPrefix(a.ID, prefix) })
}

// ---- accounts ----

// clusterAccountPrefix is a prefix of account ids unique to this test.
func clusterAccountPrefix(test string) string { return "t-" + test + "-" + randomID() + "-" }

// ---- the tests ----

// TestProcessCluster_ThreeNodesConvergeAndServeFromAnyNode starts three
// nodes, n2 and n3 joining n1, and proves that they converge (each sees
// all three alive), that an account provisioned through one node reads
// back identically through every node, that the cluster-wide actor listing
// shows each account activated exactly once and spread over more than one
// node, and that every node explains the same placement of each account:
// its host (the one the listing names), its directory owner, the
// bounded-load strategy and a reason.
func TestProcessCluster_ThreeNodesConvergeAndServeFromAnyNode(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	nodes := startCluster(t, dsn, 3)
	prefix := clusterAccountPrefix("clconverge")
	names, ids := map[string]bool{}, map[string]string{} // node names; id -> name
	for _, n := range nodes {
		names[n.name] = true
		ids[n.id] = n.name
		if strings.Contains(n.Stderr.String(), badgerJoinWarning) {
			t.Errorf("node %s on PostgreSQL warned that %q", n.name, badgerJoinWarning)
		}
	}

	// Provision through rotating nodes: each resource of an account through
	// another node than the previous one.
	accounts := make([]string, clusterAccounts)
	step := 0
	next := func() *clusterNode { step++; return nodes[step%len(nodes)] }
	for i := range accounts {
		a := fmt.Sprintf("%sa%02d", prefix, i)
		accounts[i] = a
		base := "/v1/accounts/" + a
		want(t, next().call(t, http.MethodPut, base, map[string]string{"display_name": "Cluster " + a}), http.StatusCreated, "PUT account "+a)
		want(t, next().call(t, http.MethodPut, base+"/groups/hq", map[string]string{"display_name": "HQ"}), http.StatusCreated, "PUT group of "+a)
		for _, d := range []string{"d1", "d2"} {
			want(t, next().call(t, http.MethodPut, base+"/devices/"+d, map[string]string{"group": "hq", "password": "pw-" + d + "-cluster"}), http.StatusCreated, "PUT device "+d+" of "+a)
		}
	}

	// Read everything back through every node.
	for _, a := range accounts {
		base := "/v1/accounts/" + a
		for _, n := range nodes {
			acct := decode[accountJSON](t, n.call(t, http.MethodGet, base, nil))
			if acct.ID != a || acct.Groups != 1 || acct.Devices != 2 {
				t.Errorf("account %s through %s: %+v; want 1 group and 2 devices", a, n.name, acct)
			}
			g := decode[groupJSON](t, n.call(t, http.MethodGet, base+"/groups/hq", nil))
			if !slices.Equal(g.Members, []string{"d1", "d2"}) {
				t.Errorf("group hq of %s through %s has members %v, want [d1 d2]", a, n.name, g.Members)
			}
			for _, d := range []string{"d1", "d2"} {
				r := n.call(t, http.MethodGet, base+"/devices/"+d, nil)
				want(t, r, http.StatusOK, "GET device "+d+" of "+a+" through "+n.name)
				noSecretFields(t, r)
				if dev := decode[deviceJSON](t, r); dev.ID != d || dev.Account != a || dev.Group != "hq" || dev.Realm != a+"."+zone {
					t.Errorf("device %s of %s through %s: %+v", d, a, n.name, dev)
				}
			}
		}
	}

	// Each account lives exactly once, and the listing agrees on every node.
	var where map[string]clActivation // account -> its activation, as n1 lists it
	for _, n := range nodes {
		seen := map[string]clActivation{}
		hosts := map[string]int{}
		for _, act := range clusterActivationsOf(t, n, prefix) {
			if prev, dup := seen[act.ID]; dup {
				t.Errorf("through %s: account %s is listed twice, on %s and on %s", n.name, act.ID, prev.Node, act.Node)
			}
			if ids[act.NodeID] != act.Node || !names[act.Node] {
				t.Errorf("through %s: account %s on node %q id %q, which is not a member of this cluster", n.name, act.ID, act.Node, act.NodeID)
			}
			seen[act.ID] = act
			hosts[act.Node]++
		}
		for _, a := range accounts {
			if _, ok := seen[a]; !ok {
				t.Errorf("through %s: account %s is not listed anywhere in the cluster", n.name, a)
			}
		}
		if len(hosts) < 2 {
			t.Errorf("through %s: all %d accounts live on %v; placement must spread them over at least 2 of 3 nodes", n.name, len(accounts), hosts)
		}
		if where == nil {
			where = seen
			t.Logf("accounts per node: %v", hosts)
		} else if !mapsEqualBy(where, seen, func(x, y clActivation) bool { return x.NodeID == y.NodeID }) {
			t.Errorf("%s and %s list different hosts for the accounts", nodes[0].name, n.name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every node explains the same placement, naming the listed host.
	for _, a := range accounts {
		var first *clPlacement
		for _, n := range nodes {
			r := n.call(t, http.MethodGet, "/debug/actors/account/"+a, nil)
			want(t, r, http.StatusOK, "GET /debug/actors/account/"+a+" through "+n.name)
			d := decode[clDescribe](t, r)
			p := d.Placement
			switch {
			case p == nil:
				t.Errorf("%s through %s: no placement (placement_error %q): %s", a, n.name, d.PlacementError, r.Body)
				continue
			case p.Node != where[a].Node || p.NodeID != where[a].NodeID || d.Node != p.Node:
				t.Errorf("%s through %s: placement names node %s (%s) and the reply node %s, but the cluster listing has it on %s (%s)",
					a, n.name, p.Node, p.NodeID, d.Node, where[a].Node, where[a].NodeID)
			case !names[p.Owner] || ids[p.OwnerID] != p.Owner:
				t.Errorf("%s through %s: directory owner %q (%q) is not a member", a, n.name, p.Owner, p.OwnerID)
			case p.Strategy != "bounded-load" || p.Reason == "" || p.State != "active":
				t.Errorf("%s through %s: strategy %q, reason %q, state %q; want bounded-load, a reason, active", a, n.name, p.Strategy, p.Reason, p.State)
			case len(p.Candidates) != len(nodes):
				t.Errorf("%s through %s: %d placement candidates, want one per node (%d)", a, n.name, len(p.Candidates), len(nodes))
			}
			if !bytes.Contains(d.State, []byte(`"d1"`)) || !bytes.Contains(d.State, []byte(`"d2"`)) {
				t.Errorf("%s through %s: the actor's state does not show its devices: %s", a, n.name, d.State)
			}
			if first == nil {
				first = p
			} else if p.NodeID != first.NodeID || p.OwnerID != first.OwnerID || p.Reason != first.Reason {
				t.Errorf("%s: %s explains host %s, owner %s, %q; %s explained host %s, owner %s, %q",
					a, n.name, p.Node, p.Owner, p.Reason, nodes[0].name, first.Node, first.Owner, first.Reason)
			}
		}
	}
}

// mapsEqualBy reports whether a and b have the same keys and eq holds for
// each key's values.
func mapsEqualBy[K comparable, V any](a, b map[K]V, eq func(V, V) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !eq(va, vb) {
			return false
		}
	}
	return true
}

// clusterPut is the outcome of one device PUT in a cluster.
type clusterPut struct {
	account, device string
	via             string // node name the PUT went through
	putResult
}

// putDevicesAcrossNodes PUTs count devices from putWorkers goroutines:
// device i into accounts[i%len(accounts)], through nodes[i%len(nodes)]. It
// stops handing out devices once stop is closed; onAck is called after each
// acknowledged PUT. It returns each device's outcome, by index; devices
// never sent have status 0 and no error.
func putDevicesAcrossNodes(nodes []*clusterNode, accounts []string, count int, stop <-chan struct{}, onAck func()) []clusterPut {
	results := make([]clusterPut, count)
	eachUntil(count, stop, func(i int) {
		n := nodes[i%len(nodes)]
		res := clusterPut{account: accounts[i%len(accounts)], device: devID(i), via: n.name}
		body := map[string]string{"group": "hq", "password": "pw-" + devID(i) + "-cluster-kill"}
		r, err := n.Do(context.Background(), http.MethodPut, "/v1/accounts/"+res.account+"/devices/"+res.device, body, nil)
		res.Status, res.err = r.Status, err
		if res.acked() {
			var d deviceJSON
			if json.Unmarshal(r.Body, &d) == nil {
				res.version = d.Version
			}
			onAck()
		}
		results[i] = res
	})
	return results
}

// TestProcessCluster_SIGKILLLosesNoAcknowledgedWrite kills one of three
// nodes with SIGKILL while eight clients write devices through all three,
// and proves that the survivors declare it dead, that every device whose
// PUT was acknowledged reads back, at its acknowledged version, through
// each survivor (the dead node's account actors reactivate there from the
// shared store), and that the node restarted under the same name rejoins
// as a new member (a new id, alive; the old id dead or gone) and is given
// actors again.
func TestProcessCluster_SIGKILLLosesNoAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	nodes := startCluster(t, dsn, 3)
	prefix := clusterAccountPrefix("clkill")
	accounts := make([]string, killTestAccounts)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%sa%d", prefix, i)
		n := nodes[i%len(nodes)]
		want(t, n.call(t, http.MethodPut, "/v1/accounts/"+accounts[i], map[string]string{}), http.StatusCreated, "PUT account")
		want(t, n.call(t, http.MethodPut, "/v1/accounts/"+accounts[i]+"/groups/hq", map[string]string{}), http.StatusCreated, "PUT group")
	}
	// The victim is the node hosting the most of these accounts, so that
	// the kill leaves actors to reactivate elsewhere.
	hosted := map[string]int{}
	for _, act := range clusterActivationsOf(t, nodes[0], prefix) {
		hosted[act.NodeID]++
	}
	victim := slices.MaxFunc(nodes, func(a, b *clusterNode) int { return hosted[a.id] - hosted[b.id] })
	survivors := slices.DeleteFunc(slices.Clone(nodes), func(n *clusterNode) bool { return n == victim })
	t.Logf("accounts per node id %v; killing %s (%s), which hosts %d", hosted, victim.name, victim.id, hosted[victim.id])
	if hosted[victim.id] == 0 {
		t.Fatalf("no node hosts any of the %d accounts: %v", len(accounts), hosted)
	}

	var acked atomic.Int64
	var once sync.Once
	killNow, stopFeeding, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var results []clusterPut
	go func() {
		defer close(done)
		results = putDevicesAcrossNodes(nodes, accounts, killTestDevices, stopFeeding, func() {
			if acked.Add(1) == killTestAfter {
				once.Do(func() { close(killNow) })
			}
		})
	}()
	var killedAt time.Time
	select {
	case <-killNow:
		victim.Kill()
		killedAt = time.Now()
		close(stopFeeding)
		<-done
	case <-done:
		close(stopFeeding)
		t.Fatalf("all PUTs finished with only %d acknowledged; the kill was due after %d", acked.Load(), killTestAfter)
	}
	if ws, ok := victim.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended with %v, not by SIGKILL", victim.name, victim.Cmd.ProcessState)
	}
	var ackedPuts []clusterPut
	var unanswered, refused int
	for _, res := range results {
		switch {
		case res.acked():
			ackedPuts = append(ackedPuts, res)
		case res.Status == http.StatusServiceUnavailable:
			refused++ // an actor on the killed node did not answer in time
		case res.Status != 0:
			t.Errorf("PUT device %s of %s through %s: %d; only 201, 503 or no answer is expected", res.device, res.account, res.via, res.Status)
		case res.err != nil:
			unanswered++
		}
	}
	t.Logf("killed after %d acknowledged PUTs; %d answered 503, %d got no answer", len(ackedPuts), refused, unanswered)
	if len(ackedPuts) < killTestAfter {
		t.Fatalf("only %d PUTs acknowledged, fewer than the %d counted before the kill", len(ackedPuts), killTestAfter)
	}

	waitStatus(t, survivors, victim.id, clusterFailureDetect, "dead")
	t.Logf("the survivors listed %s as dead %v after the kill", victim.name, time.Since(killedAt).Round(time.Millisecond))

	// Every acknowledged device reads back through each survivor.
	type check struct {
		via *clusterNode
		put clusterPut
	}
	var checks []check
	for _, s := range survivors {
		for _, p := range ackedPuts {
			checks = append(checks, check{s, p})
		}
	}
	replies := make([]reply, len(checks))
	errs := make([]error, len(checks))
	jobs := make(chan int)
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for range putWorkers {
		wg.Go(func() {
			for i := range jobs {
				c := checks[i]
				replies[i], errs[i] = getRetrying(c.via.proc, "/v1/accounts/"+c.put.account+"/devices/"+c.put.device, deadline)
			}
		})
	}
	for i := range checks {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	lost := 0
	for i, c := range checks {
		r, err := replies[i], errs[i]
		switch {
		case err != nil:
			t.Errorf("GET device %s of %s through %s: %v", c.put.device, c.put.account, c.via.name, err)
		case r.Status == http.StatusNotFound:
			lost++
			t.Errorf("device %s of %s was acknowledged (%d through %s, version %d) but %s does not find it",
				c.put.device, c.put.account, c.put.Status, c.put.via, c.put.version, c.via.name)
		case r.Status != http.StatusOK:
			t.Errorf("GET device %s of %s through %s: %s", c.put.device, c.put.account, c.via.name, r)
		default:
			d := decode[deviceJSON](t, r)
			if d.Account != c.put.account || d.Group != "hq" || (c.put.version != 0 && d.Version != c.put.version) {
				t.Errorf("device %s through %s: %+v; acknowledged at version %d in %s/hq", c.put.device, c.via.name, d, c.put.version, c.put.account)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
	ackedPer := map[string]int{}
	for _, p := range ackedPuts {
		ackedPer[p.account]++
	}
	for _, a := range accounts {
		acct := decode[accountJSON](t, survivors[0].call(t, http.MethodGet, "/v1/accounts/"+a, nil))
		if acct.Devices < ackedPer[a] {
			t.Errorf("account %s counts %d devices, fewer than the %d acknowledged", a, acct.Devices, ackedPer[a])
		}
	}

	// The same name rejoins as a new member and is given actors again.
	restarted := startClusterNode(t, victim.name, []string{"--store", dsn}, survivors[0].gossip)
	if restarted.id == victim.id {
		t.Fatalf("the restarted %s reuses member id %s; every process needs a new one", victim.name, victim.id)
	}
	members := append(slices.Clone(survivors), restarted)
	waitAllAlive(t, members, members)
	waitStatus(t, members, victim.id, clusterConverge, "dead", "gone")

	const attempts = 30
	for i := range attempts {
		a := fmt.Sprintf("%snew%02d", prefix, i)
		n := members[i%len(members)]
		want(t, n.call(t, http.MethodPut, "/v1/accounts/"+a, map[string]string{}), http.StatusCreated, "PUT account "+a+" through "+n.name)
		l := decode[clActivations](t, restarted.call(t, http.MethodGet, "/debug/actors?scope=local&kind=account", nil))
		if slices.ContainsFunc(l.Activations, func(act clActivation) bool { return strings.HasPrefix(act.ID, prefix) }) {
			t.Logf("the restarted %s hosts an account after %d new ones", restarted.name, i+1)
			return
		}
	}
	t.Fatalf("the restarted %s hosts no account after %d new accounts were created", restarted.name, attempts)
}

// TestProcessCluster_DrainMovesActorsAndLeaves activates 40 accounts on
// three nodes, drains the node hosting the most of them through
// POST /v1/admin/drain, and proves that it exits 0, that the others list
// it as left (a graceful leave, not a failure), and that every account
// still reads back through each survivor and now lives on a survivor only.
func TestProcessCluster_DrainMovesActorsAndLeaves(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	nodes := startCluster(t, dsn, 3)
	prefix := clusterAccountPrefix("cldrain")
	accounts := make([]string, drainAccounts)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%sa%02d", prefix, i)
		want(t, nodes[i%len(nodes)].call(t, http.MethodPut, "/v1/accounts/"+accounts[i], map[string]string{"display_name": "Drain " + accounts[i]}),
			http.StatusCreated, "PUT account "+accounts[i])
	}
	hosted := map[string]int{}
	acts := clusterActivationsOf(t, nodes[0], prefix)
	for _, act := range acts {
		hosted[act.NodeID]++
	}
	if len(acts) != len(accounts) {
		t.Fatalf("%d of %d accounts are listed as active before the drain", len(acts), len(accounts))
	}
	victim := slices.MaxFunc(nodes, func(a, b *clusterNode) int { return hosted[a.id] - hosted[b.id] })
	survivors := slices.DeleteFunc(slices.Clone(nodes), func(n *clusterNode) bool { return n == victim })
	t.Logf("accounts per node id %v; draining %s (%s), which hosts %d", hosted, victim.name, victim.id, hosted[victim.id])

	start := time.Now()
	r := victim.call(t, http.MethodPost, "/v1/admin/drain", nil)
	want(t, r, http.StatusAccepted, "POST /v1/admin/drain")
	select {
	case <-victim.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of POST /v1/admin/drain", victim.name)
	}
	if code := victim.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s exited with %v after a drain, want 0; stderr:\n%s", victim.name, victim.Cmd.ProcessState, nodeproc.Tail(victim.Stderr.String()))
	}
	exited := time.Since(start)
	waitStatus(t, survivors, victim.id, clusterConverge, "left")
	left := time.Since(start)

	deadline := time.Now().Add(30 * time.Second)
	for _, s := range survivors {
		for _, a := range accounts {
			r, err := getRetrying(s.proc, "/v1/accounts/"+a, deadline)
			if err != nil {
				t.Fatalf("GET account %s through %s after the drain: %v", a, s.name, err)
			}
			want(t, r, http.StatusOK, "GET account "+a+" through "+s.name+" after the drain")
			if got := decode[struct {
				ID          string `json:"id"`
				DisplayName string `json:"display_name"`
			}](t, r); got.ID != a || got.DisplayName != "Drain "+a {
				t.Errorf("account %s through %s after the drain: %s", a, s.name, r.Body)
			}
		}
	}
	t.Logf("after the drain request: exited at %v, listed as left at %v, every account read back at %v",
		exited.Round(time.Millisecond), left.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for _, s := range survivors {
		seen := map[string]string{}
		for _, act := range clusterActivationsOf(t, s, prefix) {
			if act.NodeID == victim.id || act.Node == victim.name {
				t.Errorf("through %s: account %s is listed on the drained %s", s.name, act.ID, victim.name)
			}
			if prev, dup := seen[act.ID]; dup {
				t.Errorf("through %s: account %s is listed twice, on %s and on %s", s.name, act.ID, prev, act.Node)
			}
			seen[act.ID] = act.Node
		}
		if len(seen) != len(accounts) {
			t.Errorf("through %s: %d of %d accounts are active after reading each one", s.name, len(seen), len(accounts))
		}
	}
	// A drain is an ordinary event: no node logs it as an error.
	for _, n := range nodes {
		for l := range strings.SplitSeq(n.Stderr.String(), "\n") {
			if strings.Contains(l, "level=ERROR") {
				t.Errorf("%s logged an error during an ordinary drain: %s", n.name, l)
			}
		}
	}
}

// TestProcessCluster_JoinWithBadgerWarns proves that a node that joins a
// cluster while keeping its state in the embedded store warns that state
// will not follow actors (and still joins), while the seed, which joins
// nothing, does not warn.
func TestProcessCluster_JoinWithBadgerWarns(t *testing.T) {
	t.Parallel()
	seed := startClusterNode(t, "seed", []string{"--data", t.TempDir()})
	joiner := startClusterNode(t, "joiner", []string{"--data", t.TempDir()}, seed.gossip)
	out := waitOutput(t, joiner.Stderr, badgerJoinWarning, 10*time.Second)
	if !strings.Contains(out, "--store") {
		t.Errorf("the warning does not say what to do instead (--store):\n%s", nodeproc.Tail(out))
	}
	both := []*clusterNode{seed, joiner}
	waitAllAlive(t, both, both)
	if strings.Contains(seed.Stderr.String(), badgerJoinWarning) {
		t.Errorf("the seed, which joins nothing, warned %q", badgerJoinWarning)
	}
}
