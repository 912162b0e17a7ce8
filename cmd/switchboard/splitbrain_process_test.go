//go:build unix

// Split-brain process tests (issue 9, hole 8): real switchboard processes
// on one PostgreSQL database that cannot, or could not, see each other
// over gossip. They reuse the cluster helpers of cluster_process_test.go.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProcessCluster_SeedRestartedWithoutJoinRejoins follows README's
// cluster example: n2 and n3 join n1; n1 is killed and started again the
// way it was first started, without --join. It must find n2 and n3 from
// the liveness records in the store and rejoin: every node lists the three
// alive (the old n1 dead or gone), and an account created through the
// restarted n1 reads back through the others.
func TestProcessCluster_SeedRestartedWithoutJoinRejoins(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	nodes := startCluster(t, dsn, 3)
	seed := nodes[0]
	seed.Kill()
	killed := time.Now()
	restarted := startClusterNode(t, seed.name, []string{"--store", dsn}) // no --join, as README starts n1
	if restarted.id == seed.id {
		t.Fatalf("the restarted %s reuses member id %s", seed.name, seed.id)
	}
	members := []*clusterNode{restarted, nodes[1], nodes[2]}
	waitAllAlive(t, members, members)
	t.Logf("all three list each other alive %v after the seed was killed", time.Since(killed).Round(time.Millisecond))
	waitStatus(t, members, seed.id, clusterConverge, "dead", "gone")
	waitServing(t, members)

	a := clusterAccountPrefix("clrejoin") + "a"
	want(t, restarted.call(t, http.MethodPut, "/v1/accounts/"+a, map[string]string{"display_name": "Rejoined"}), http.StatusCreated, "PUT account through the restarted seed")
	for _, n := range members[1:] {
		want(t, n.call(t, http.MethodGet, "/v1/accounts/"+a, nil), http.StatusOK, "GET account through "+n.name)
	}
}

// TestProcessCluster_PartitionedHalvesNeverBothServeAnAccount splits a
// cluster on one database in two halves that cannot gossip (different
// gossip keys): p1 alone, p2 and p3 together. An account provisioned
// through p1 is served by p1 only: p2 and p3 answer 503 over HTTP and SIP
// (REGISTER) instead of serving what they might load, before and after
// carol's password is rotated through p1. When p1 dies, the other half
// takes the account over from the store and serves the rotated device,
// never the version before it.
func TestProcessCluster_PartitionedHalvesNeverBothServeAnAccount(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	keyA, keyB := gossipKey(t), gossipKey(t)
	p1 := startClusterNode(t, "p1", []string{"--store", dsn, "--gossip-key", keyA})
	p2 := startClusterNode(t, "p2", []string{"--store", dsn, "--gossip-key", keyB})
	p3 := startClusterNode(t, "p3", []string{"--store", dsn, "--gossip-key", keyB}, p2.gossip)
	other := []*clusterNode{p2, p3}
	waitAllAlive(t, other, other)
	waitAllAlive(t, []*clusterNode{p1}, []*clusterNode{p1})

	a := clusterAccountPrefix("clsplit") + "a"
	base := "/v1/accounts/" + a
	want(t, p1.call(t, http.MethodPut, base, map[string]string{"display_name": "Split"}), http.StatusCreated, "PUT account through p1")
	want(t, p1.call(t, http.MethodPut, base+"/groups/hq", map[string]string{}), http.StatusCreated, "PUT group through p1")
	want(t, p1.call(t, http.MethodPut, base+"/devices/carol", map[string]string{"group": "hq", "password": "carol-old-secret"}), http.StatusCreated, "PUT carol through p1")

	refusedEverywhere := func(when string) {
		t.Helper()
		for _, n := range other {
			for _, path := range []string{base, base + "/devices/carol"} {
				if r := n.call(t, http.MethodGet, path, nil); r.Status != http.StatusServiceUnavailable {
					t.Fatalf("%s: GET %s through %s (the other half) = %s; want 503 while p1 serves the account", when, path, n.name, r)
				}
			}
			if code := sipRegisterStatus(t, n.sipAddr(t), a); code != 503 {
				t.Fatalf("%s: REGISTER for carol@%s.%s at %s answered %d; want 503", when, a, zone, n.name, code)
			}
		}
	}
	refusedEverywhere("before the rotation")
	if code := sipRegisterStatus(t, p1.sipAddr(t), a); code != 401 {
		t.Fatalf("REGISTER without credentials at p1, which serves the account, answered %d; want a 401 challenge", code)
	}
	r := p1.call(t, http.MethodPut, base+"/devices/carol", map[string]string{"group": "hq", "password": "carol-new-secret"})
	want(t, r, http.StatusOK, "rotate carol's password through p1")
	rotated := decode[deviceJSON](t, r).Version
	refusedEverywhere("after the rotation")

	p1.Kill()
	killed := time.Now()
	for _, n := range other {
		got, err := getRetrying(n.proc, base+"/devices/carol", time.Now().Add(clusterConverge))
		if err != nil {
			t.Fatalf("GET carol through %s after p1 died: %v", n.name, err)
		}
		want(t, got, http.StatusOK, "GET carol through "+n.name+" after p1 died")
		if d := decode[deviceJSON](t, got); d.Version != rotated {
			t.Fatalf("%s serves carol at version %d after taking over; the rotation through p1 wrote version %d", n.name, d.Version, rotated)
		}
	}
	t.Logf("the other half served the rotated device %v after p1 was killed", time.Since(killed).Round(time.Millisecond))
}

// gossipKey is a new random base64 AES-256 key for --gossip-key.
func gossipKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// sipAddr is the node's SIP address, from its own /debug/cluster entry.
func (n *clusterNode) sipAddr(t *testing.T) string {
	t.Helper()
	v := decode[clView](t, n.call(t, http.MethodGet, "/debug/cluster", nil))
	self, ok := v.member(n.id)
	if !ok || self.Addresses["sip"] == "" {
		t.Fatalf("%s lists no SIP address for itself: %s", n.name, v)
	}
	return self.Addresses["sip"]
}

// sipRegisterStatus sends carol's REGISTER (no credentials) for account
// over UDP to addr and returns the final response's status code.
func sipRegisterStatus(t *testing.T, addr, account string) int {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().String()
	domain := account + "." + zone
	id := randomID()
	msg := strings.Join([]string{
		"REGISTER sip:" + domain + " SIP/2.0",
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + id + ";rport",
		"Max-Forwards: 70",
		"From: <sip:carol@" + domain + ">;tag=" + id,
		"To: <sip:carol@" + domain + ">",
		"Call-ID: " + id + "@split-brain-test",
		"CSeq: 1 REGISTER",
		"Contact: <sip:carol@" + local + ">",
		"Expires: 60",
		"User-Agent: switchboard-split-brain-test",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
	if _, err := conn.WriteTo([]byte(msg), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("REGISTER to %s: no final response: %v", addr, err)
		}
		var code int
		if _, err := fmt.Sscanf(string(buf[:n]), "SIP/2.0 %d", &code); err != nil {
			t.Fatalf("REGISTER to %s: not a response: %q", addr, buf[:n])
		}
		if code >= 200 {
			return code
		}
	}
}
