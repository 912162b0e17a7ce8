package main

// Issue 10, the messaging path (RFC 3428) with real processes: a MESSAGE
// between devices of one account is delivered to the callee's contact,
// or stored while it is not registered and delivered when it registers;
// a MESSAGE to a number goes to the SMS gateway the account's route
// names.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// registerWithDigest registers dev of account at node from c, answering
// the 401 challenge, and fails the test unless the result is 200.
func (c *sipClient) registerWithDigest(node, account, dev, password string) {
	c.t.Helper()
	callID := randomID()
	code, res := c.register(node, account, dev, callID, 1, "")
	if code != 401 {
		c.t.Fatalf("REGISTER of %s got %d, want 401:\n%s", dev, code, res)
	}
	creds, err := digest.Digest(challengeIn(c.t, res), digest.Options{Method: "REGISTER", URI: "sip:" + account + "." + sipZone,
		Username: dev, Password: password, Count: 1})
	if err != nil {
		c.t.Fatal(err)
	}
	if code, res := c.register(node, account, dev, callID, 2, creds.String()); code != 200 {
		c.t.Fatalf("REGISTER of %s with credentials got %d, want 200:\n%s", dev, code, res)
	}
}

// answerRequest waits up to d for a request of method, answers it with
// code, and returns its text ("" if none came).
func (c *sipClient) answerRequest(method string, code int, d time.Duration) string {
	c.t.Helper()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(d)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		n, from, err := c.conn.ReadFrom(buf)
		if err != nil {
			return ""
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, method+" ") {
			continue
		}
		head, _, _ := strings.Cut(msg, "\r\n\r\n")
		var res strings.Builder
		fmt.Fprintf(&res, "SIP/2.0 %d Answered\r\n", code)
		for _, line := range strings.Split(head, "\r\n")[1:] {
			name, _, _ := strings.Cut(line, ":")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "via", "v", "from", "f", "call-id", "i", "cseq":
				res.WriteString(line + "\r\n")
			case "to", "t":
				res.WriteString(line + ";tag=" + randomID() + "\r\n")
			}
		}
		res.WriteString("Content-Length: 0\r\n\r\n")
		if _, err := c.conn.WriteTo([]byte(res.String()), from); err != nil {
			c.t.Fatal(err)
		}
		return msg
	}
}

func messageOptions(account, from, to string) sipp.UACOptions {
	return sipp.UACOptions{Service: to, Domain: account + "." + sipZone, FromUser: from,
		AuthUser: from, AuthPassword: from + "-password-1", TraceMessages: true}
}

// TestMessaging_RFC3428_DeliveredStoredAndRouted: alice's MESSAGE to bob,
// who is not registered, is accepted (202) and stored; when bob
// registers it reaches him; once he is registered the next one is
// delivered at once (200); a MESSAGE to a number reaches the SMS gateway.
func TestMessaging_RFC3428_DeliveredStoredAndRouted(t *testing.T) {
	n := startSIPNode(t)
	provisionSIPAccount(t, n, "acme", "")
	sms := sipp.StartUAS(t, sipp.UASMessage, "127.0.0.1:0")
	putFeature(t, n, "sms", sms.Addr)
	putRoutes(t, n, "acme", [3]string{"MESSAGE", "+*", "sms"})

	// Stored while bob is away.
	wantAllSuccessful(t, "MESSAGE to bob, not registered", runUAC(t, sipp.UACMessageAuth, n.sip, messageOptions("acme", "alice", "bob")), 1)

	bob := newSIPClient(t)
	bob.registerWithDigest(n.sip, "acme", "bob", "bob-password-1")
	got := bob.answerRequest("MESSAGE", 200, 10*time.Second)
	if !strings.Contains(got, "hello 1") || !strings.Contains(got, "sip:alice@acme."+sipZone) {
		t.Fatalf("bob, registering, got no stored MESSAGE from alice:\n%s", got)
	}

	// Delivered at once now that bob is registered.
	done := make(chan sipp.Result, 1)
	go func() {
		res, _ := sipp.RunUAC(context.Background(), sipp.UACMessageAuth, n.sip, messageOptions("acme", "alice", "bob"))
		done <- res
	}()
	if got := bob.answerRequest("MESSAGE", 200, 10*time.Second); !strings.Contains(got, "hello 1") {
		t.Fatalf("bob got no MESSAGE while registered:\n%s", got)
	}
	wantAllSuccessful(t, "MESSAGE to bob, registered", <-done, 1)

	// A number goes to the SMS gateway.
	wantAllSuccessful(t, "MESSAGE to a number", runUAC(t, sipp.UACMessageAuth, n.sip, messageOptions("acme", "alice", "+15551234")), 1)
}
