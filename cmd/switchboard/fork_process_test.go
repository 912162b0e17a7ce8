package main

// Parallel forking (RFC 3261 section 16.7) with real processes: a node,
// two SIPp callees registered as contacts of one device, a SIPp caller.

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// registeredUAS starts a SIPp server running scenario as a contact of
// device dev: the REGISTER is sent from the address the server then
// listens on, since the node reaches a UDP contact on the flow its
// REGISTER came from (RFC 5626 style), not at its Contact URI.
func registeredUAS(t *testing.T, n *sipNode, scenario sipp.Scenario, account, dev string) *sipp.Process {
	t.Helper()
	c := newSIPClient(t)
	addr := c.addr()
	c.registerWithDigest(n.sip, account, dev, dev+"-password-1")
	if err := c.conn.Close(); err != nil {
		t.Fatal(err)
	}
	return sipp.StartUAS(t, scenario, addr)
}

// TestFork_RFC3261_16_7_TwoContactsOneAnswersOtherCancelled: parallel
// forking to two contacts of one device: one answers, the other gets
// CANCEL. Bob's two phones (one answers, one rings until cancelled) are
// called at once when alice calls bob; alice's call succeeds (ACK and BYE
// reach the phone that answered), and the ringing phone completes its
// scenario through CANCEL, 487 and ACK.
func TestFork_RFC3261_16_7_TwoContactsOneAnswersOtherCancelled(t *testing.T) {
	t.Parallel()
	n := startSIPNode(t)
	provisionSIPAccount(t, n, "acme", "")
	answers := registeredUAS(t, n, sipp.UAS, "acme", "bob")
	rings := registeredUAS(t, n, sipp.UASRing, "acme", "bob")

	type bindings struct {
		Bindings []struct {
			Device string `json:"device"`
		} `json:"bindings"`
	}
	if b := decode[bindings](t, n.call(t, http.MethodGet, "/v1/accounts/acme/groups/hq/bindings", nil)); len(b.Bindings) != 2 {
		t.Fatalf("bob has bindings %+v, want two", b.Bindings)
	}

	res := runUAC(t, sipp.UACInviteAuth, n.sip, deviceCall("acme", "alice", "bob"))
	wantAllSuccessful(t, "alice calls bob, whose two phones are called at once", res, 1)
	c := endedCall(t, n, callIDs(res)[0])
	if c.Disposition != "completed" || c.Status != 200 || c.Target != answers.Addr {
		t.Fatalf("call record %+v: want completed, 200, answered at %s", c, answers.Addr)
	}

	// The ringing phone's call ends with the 487's ACK; SIPp writes its
	// counts once a second.
	eventually(t, 10*time.Second, "the ringing phone completes its call through CANCEL", func() (bool, string) {
		r, err := rings.Stats()
		if err != nil {
			return false, err.Error()
		}
		return r.Successful == 1 && r.Failed == 0, r.String()
	})
}
