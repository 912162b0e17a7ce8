package main

import (
	"testing"
	"time"

	"github.com/icholy/digest"
)

// TestSIP_ProvisioningReachesEveryNodesSnapshotWithinASecond: each node
// answers SIP from its own snapshot of the account (package accountview),
// and a change made through one node reaches every node's within a
// second. Alice registers at each node (each now holds her HA1s); her
// password is changed through n1; her old password must stop working at
// every node within 1 s, and her new one start. (The node that hosts the
// account's actor learns of the change at once; the two others only
// through the cluster.)
func TestSIP_ProvisioningReachesEveryNodesSnapshotWithinASecond(t *testing.T) {
	n1, n2, n3 := startThreeSharedSecretNodes(t, sharedSecretNodes(t))
	account := "fresh" + randomID()
	provisionSIPAccount(t, n1, account, "")

	phone := newSIPClient(t)
	nodes := []*sipNode{n1, n2, n3}

	// registers says whether password registers alice at n now.
	registers := func(n *sipNode, password string) bool {
		t.Helper()
		callID := randomID()
		code, res := phone.register(n.sip, account, "alice", callID, 1, "")
		if code != 401 {
			t.Fatalf("REGISTER without credentials at %s got %d, want 401:\n%s", n.name, code, res)
		}
		creds, err := digest.Digest(challengeIn(t, res), digest.Options{Method: "REGISTER", URI: "sip:" + account + "." + sipZone,
			Username: "alice", Password: password, Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		code, res = phone.register(n.sip, account, "alice", callID, 2, creds.String())
		switch code {
		case 200:
			return true
		case 401:
			return false
		}
		t.Fatalf("REGISTER with credentials at %s got %d:\n%s", n.name, code, res)
		return false
	}
	for _, n := range nodes {
		if !registers(n, "alice-password-1") {
			t.Fatalf("alice's password does not register her at %s", n.name)
		}
	}

	n1.put(t, "/v1/accounts/"+account+"/devices/alice", map[string]string{"group": "hq", "password": "alice-password-2"})
	changed := time.Now()
	deadline := changed.Add(10 * time.Second)
	for _, n := range nodes {
		for registers(n, "alice-password-1") {
			if time.Now().After(deadline) {
				t.Fatalf("alice's old password still registers her at %s 10 s after it was changed through n1", n.name)
			}
		}
	}
	took := time.Since(changed)
	t.Logf("the changed password reached every node's snapshot in %v", took)
	if took > time.Second {
		t.Fatalf("the changed password reached every node's snapshot in %v, want within 1 s", took)
	}
	for _, n := range nodes {
		if !registers(n, "alice-password-2") {
			t.Fatalf("alice's new password does not register her at %s", n.name)
		}
	}
}
