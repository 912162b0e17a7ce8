package main

// Issue 9, attacks on whole processes: a captured Authorization replayed
// at another node and at the same node after a kill -9 (three nodes on
// PostgreSQL, one shared --sip-secret, as an operator would run them).

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// sipClient is a UDP socket that speaks to one node at a time.
type sipClient struct {
	t    *testing.T
	conn net.PacketConn
}

func newSIPClient(t *testing.T) *sipClient {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &sipClient{t: t, conn: c}
}

func (c *sipClient) addr() string { return c.conn.LocalAddr().String() }

// register sends a REGISTER for device dev of account to node (ip:port),
// with authorization when it is not "", and returns the final status and
// the raw response.
func (c *sipClient) register(node, account, dev, callID string, cseq int, authorization string) (int, string) {
	c.t.Helper()
	domain := account + "." + sipZone
	auth := ""
	if authorization != "" {
		auth = "Authorization: " + authorization + "\r\n"
	}
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n"+
		"Contact: <sip:%s@%s>\r\nExpires: 300\r\n%sContent-Length: 0\r\n\r\n",
		domain, c.addr(), randomID(), dev, domain, randomID(), dev, domain, callID, cseq, dev, c.addr(), auth)
	to, err := net.ResolveUDPAddr("udp", node)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.WriteTo([]byte(msg), to); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			c.t.Fatalf("REGISTER to %s: no final response: %v", node, err)
		}
		res := string(buf[:n])
		var code int
		if _, err := fmt.Sscanf(res, "SIP/2.0 %d", &code); err != nil || code < 200 || !strings.Contains(res, callID) {
			continue
		}
		return code, res
	}
}

// challengeIn is the first WWW-Authenticate challenge of res.
func challengeIn(t *testing.T, res string) *digest.Challenge {
	t.Helper()
	for _, line := range strings.Split(res, "\r\n") {
		if v, ok := strings.CutPrefix(line, "WWW-Authenticate: "); ok {
			c, err := digest.ParseChallenge(v)
			if err != nil {
				t.Fatalf("parsing %q: %v", v, err)
			}
			return c
		}
	}
	t.Fatalf("no WWW-Authenticate in:\n%s", res)
	return nil
}

// TestSecurity_DigestReplayAtAnotherNodeOrAfterRestart: the nc table was
// per node and in memory while nonces were valid cluster-wide, so an
// Authorization captured at n3 registered the attacker's contact at n2,
// and at n3 again after a kill -9 and restart. Each replay is now
// answered 401 (stale), and the attacker's contact is never bound.
// sharedSecretNodes starts nodes on the shared PostgreSQL store with one
// SIP secret for the whole cluster, each joining the gossip addresses given.
func sharedSecretNodes(t *testing.T) func(name string, join ...string) *sipNode {
	t.Helper()
	common := []string{"--store", postgresDSN(t), "--gossip-profile", "local", "--sip-secret", "one secret for the whole cluster"}
	return func(name string, join ...string) *sipNode {
		args := append([]string{"--name", name}, common...)
		if len(join) > 0 {
			args = append(args, "--join", strings.Join(join, ","))
		}
		return sipEndpoints(t, startNode(t, nodeOptions{args: args}), name)
	}
}

// startThreeSharedSecretNodes starts n1, n2 and n3 with start and waits
// until each sees the others alive and serves.
func startThreeSharedSecretNodes(t *testing.T, start func(name string, join ...string) *sipNode) (n1, n2, n3 *sipNode) {
	t.Helper()
	n1 = start("n1")
	n2 = start("n2", n1.gossip)
	n3 = start("n3", n1.gossip)
	var cl []*clusterNode
	for _, n := range []*sipNode{n1, n2, n3} {
		cl = append(cl, &clusterNode{proc: n.proc, name: n.name, id: n.id, gossip: n.gossip})
	}
	waitAllAlive(t, cl, cl)
	waitServing(t, cl)
	return n1, n2, n3
}

func TestSecurity_DigestReplayAtAnotherNodeOrAfterRestart(t *testing.T) {
	t.Parallel()
	start := sharedSecretNodes(t)
	n1, n2, n3 := startThreeSharedSecretNodes(t, start)
	account := "replay" + randomID()
	provisionSIPAccount(t, n1, account, "")

	// The victim registers at n3; the attacker captures its Authorization.
	victim := newSIPClient(t)
	callID := randomID()
	code, res := victim.register(n3.sip, account, "alice", callID, 1, "")
	if code != 401 {
		t.Fatalf("first REGISTER got %d, want 401:\n%s", code, res)
	}
	domain := account + "." + sipZone
	creds, err := digest.Digest(challengeIn(t, res), digest.Options{Method: "REGISTER", URI: "sip:" + domain,
		Username: "alice", Password: "alice-password-1", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	captured := creds.String()
	if code, res := victim.register(n3.sip, account, "alice", callID, 2, captured); code != 200 {
		t.Fatalf("the victim's REGISTER with credentials got %d, want 200:\n%s", code, res)
	}

	attacker := newSIPClient(t)
	replay := func(where string, node *sipNode) {
		t.Helper()
		// An attacker retries while the account is unavailable (503: its
		// actor is reactivating after the kill).
		deadline := time.Now().Add(30 * time.Second)
		code, res := attacker.register(node.sip, account, "alice", randomID(), 1, captured)
		for code == 503 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond) // Retry-After, as a client would
			code, res = attacker.register(node.sip, account, "alice", randomID(), 1, captured)
		}
		if code == 200 {
			t.Fatalf("the Authorization captured at n3, replayed at %s, registered the attacker's contact:\n%s", where, res)
		}
		if code != 401 || !strings.Contains(res, "stale=true") && where != "n3 itself" {
			t.Fatalf("replay at %s got %d, want 401 with a fresh (stale=true) challenge:\n%s", where, code, res)
		}
	}
	replay("n3 itself", n3) // the issuer's nc window
	replay("n2", n2)
	replay("n1", n1)
	n3.Kill()
	n3 = start("n3", n1.gossip, n2.gossip)
	replay("n3 after kill -9 and restart", n3)

	// The group's actor may have lived on the killed n3: it reactivates
	// elsewhere once the cluster agrees n3 is gone.
	r, err := getRetrying(n1.proc, "/v1/accounts/"+account+"/groups/hq/bindings", time.Now().Add(30*time.Second))
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("listing bindings: %s %v", r, err)
	}
	if strings.Contains(string(r.Body), attacker.addr()) {
		t.Fatalf("the attacker's contact %s is bound: %s", attacker.addr(), r.Body)
	}
	if !strings.Contains(string(r.Body), victim.addr()) {
		t.Fatalf("the victim's contact %s is not bound: %s", victim.addr(), r.Body)
	}
}
