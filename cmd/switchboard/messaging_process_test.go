package main

// Issue 10, the messaging path (RFC 3428) with real processes: a MESSAGE
// between devices of one account is delivered to the callee's contact,
// or stored while it is not registered and delivered when it registers;
// a MESSAGE to a number goes to the SMS gateway the account's route
// names.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
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
	t.Parallel()
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

	// Ordinary traffic from several devices, on the default policy: a few
	// messages each, to colleagues and to numbers, opens no incident.
	n.put(t, "/v1/accounts/acme/devices/carol", map[string]string{"group": "hq", "password": "carol-password-1"})
	for _, m := range []struct{ from, to string }{
		{"alice", "carol"}, {"carol", "alice"}, {"bob", "+15551234"}, {"carol", "+442071234567"}, {"alice", "+15559876"},
	} {
		o := messageOptions("acme", m.from, m.to)
		o.Calls, o.Rate = 3, 2
		wantAllSuccessful(t, m.from+" to "+m.to, runUAC(t, sipp.UACMessageAuth, n.sip, o), 3)
	}
	if incs := openIncidents(t, n, "acme"); len(incs) != 0 {
		t.Fatalf("ordinary traffic opened incidents: %+v", incs)
	}
}

type incidentJSON struct {
	ID                  string    `json:"id"`
	Device              string    `json:"device"`
	Indicator           string    `json:"indicator"`
	Actions             []string  `json:"actions"`
	BlockedDestinations []string  `json:"blocked_destinations"`
	MessagesContained   uint32    `json:"messages_contained"`
	State               string    `json:"state"`
	CredentialsResetAt  time.Time `json:"credentials_reset_at"`
}

// openIncidents lists the account's open incidents through n.
func openIncidents(t *testing.T, n *sipNode, account string) []incidentJSON {
	t.Helper()
	r := n.call(t, http.MethodGet, "/v1/accounts/"+account+"/fraud/incidents?state=open", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("listing incidents: %s", r)
	}
	return decode[struct {
		Incidents []incidentJSON `json:"incidents"`
	}](t, r).Incidents
}

// TestMessaging_FloodContainedInACluster: in a three-node cluster on
// PostgreSQL, a device floods MESSAGEs to a number. At the policy's
// critical rate the account's supervisor opens an incident and contains
// it: the flood is refused from there on, the device's stored messages
// are dropped, its old password fails at once on another node, and the
// account's other devices keep sending.
func TestMessaging_FloodContainedInACluster(t *testing.T) {
	t.Parallel()
	n1, n2, n3 := startSIPCluster(t)

	account := "flood" + randomID()
	provisionSIPAccount(t, n1, account, "")
	n1.put(t, "/v1/accounts/"+account+"/devices/carol", map[string]string{"group": "hq", "password": "carol-password-1"})
	sms := sipp.StartUAS(t, sipp.UASMessage, "127.0.0.1:0")
	putFeature(t, n1, "sms"+account[5:], sms.Addr)
	putRoutes(t, n1, account, [3]string{"MESSAGE", "+*", "sms" + account[5:]})
	const critical = 10
	n1.put(t, "/v1/accounts/"+account+"/fraud-policy", map[string]any{
		"indicators": map[string]any{
			"rate_per_minute":  map[string]any{"warning": 5, "critical": critical},
			"burst_per_second": map[string]any{"enabled": false},
		},
		"actions": map[string]any{"terminate_in_flight": true, "reset_credentials": true, "block_destinations": true},
	})

	// Two messages for bob, away, wait in the store.
	away := messageOptions(account, "alice", "bob")
	away.Calls = 2
	wantAllSuccessful(t, "MESSAGE to bob, not registered", runUAC(t, sipp.UACMessageAuth, n3.sip, away), 2)

	// The flood, through n3.
	flood := messageOptions(account, "alice", "+15550001234")
	flood.Calls, flood.Rate = 30, 20
	res, err := sipp.RunUAC(context.Background(), sipp.UACMessageAuth, n3.sip, flood)
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	if res.Successful+2 > critical || res.Successful < critical-3 || res.Failed != 30-res.Successful {
		t.Fatalf("flood: %d delivered, %d refused; want the first %d or so delivered (2 were stored before), the rest refused\n%s",
			res.Successful, res.Failed, critical-2, res.Errors)
	}
	incs := openIncidents(t, n2, account)
	if len(incs) != 1 || incs[0].Device != "alice" || incs[0].Indicator != "rate_per_minute" || incs[0].MessagesContained < 2 ||
		!slices.Contains(incs[0].Actions, "reset_credentials") || !slices.Contains(incs[0].Actions, "terminate_in_flight") {
		t.Fatalf("open incidents %+v; want one for alice's rate, its 2 stored messages contained, credentials reset", incs)
	}

	// The incident and its actions are on the account's event stream, read
	// at another node than the one that saw the flood.
	types := sseTypes(t, n1, "/v1/accounts/"+account+"/events?type=fraud.", func(ts []string) bool {
		return slices.Contains(ts, "fraud.incident.opened") && slices.Contains(ts, "fraud.action")
	})
	if types[0] != "fraud.warning" && types[0] != "fraud.incident.opened" {
		t.Fatalf("fraud events %v: want the warning or the incident first", types)
	}

	// The old password fails at once on another node.
	attacker := newSIPClient(t)
	callID := randomID()
	code, chal := attacker.register(n2.sip, account, "alice", callID, 1, "")
	if code != 401 {
		t.Fatalf("REGISTER at n2 got %d, want 401", code)
	}
	creds, err := digest.Digest(challengeIn(t, chal), digest.Options{Method: "REGISTER", URI: "sip:" + account + "." + sipZone,
		Username: "alice", Password: "alice-password-1", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	if code, res := attacker.register(n2.sip, account, "alice", callID, 2, creds.String()); code == 200 {
		t.Fatalf("alice's old password still registers at n2 after the reset:\n%s", res)
	}

	// Bob comes back: alice's stored messages were dropped. Carol, of the
	// same account, sends on; her message to bob is the first he gets.
	bob := newSIPClient(t)
	bob.registerWithDigest(n1.sip, account, "bob", "bob-password-1")
	done := make(chan sipp.Result, 1)
	go func() {
		res, _ := sipp.RunUAC(context.Background(), sipp.UACMessageAuth, n2.sip, messageOptions(account, "carol", "bob"))
		done <- res
	}()
	got := bob.answerRequest("MESSAGE", 200, 10*time.Second)
	if !strings.Contains(got, "sip:carol@") {
		t.Fatalf("bob's first MESSAGE after the incident is not carol's (alice's stored ones must be dropped):\n%s", got)
	}
	wantAllSuccessful(t, "carol's MESSAGE to bob", <-done, 1)
	wantAllSuccessful(t, "carol's MESSAGE to a number", runUAC(t, sipp.UACMessageAuth, n1.sip, messageOptions(account, "carol", "+15559990000")), 1)

	// Kill -9 of the supervisor's node mid-incident: on the survivors the
	// flood's destination stays blocked, for the account's other devices
	// too, once the supervisor is back (the blocks were stored before they
	// took effect).
	where := decode[struct {
		Node string `json:"node"`
	}](t, n1.call(t, http.MethodGet, "/debug/actors/messaging/"+account, nil)).Node
	nodes := map[string]*sipNode{"n1": n1, "n2": n2, "n3": n3}
	victim, ok := nodes[where]
	if !ok {
		t.Fatalf("the supervisor lives on %q, not a node of this cluster", where)
	}
	victim.Kill()
	var survivor *sipNode
	for name, n := range nodes {
		if name != where {
			survivor = n
			break
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := sipp.RunUAC(context.Background(), sipp.UACMessageAuth, survivor.sip, messageOptions(account, "carol", "+15550001234"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Successful > 0 {
			t.Fatalf("after the supervisor's node was killed, a MESSAGE to the blocked destination was delivered")
		}
		if strings.Contains(res.Errors, "403 Destination Blocked") {
			break // refused by the reactivated supervisor: the block held
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verdict from a reactivated supervisor within 30 s of the kill:\n%s", res.Errors)
		}
		time.Sleep(200 * time.Millisecond) // 503 while the cluster notices the death: retry as a client would
	}
}

// sseTypes reads the Server-Sent Events at path through n until enough
// says the event types seen so far suffice, or fails after 15 s.
func sseTypes(t *testing.T, n *sipNode, path string, enough func([]string) bool) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	var types []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if typ, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			types = append(types, typ)
			if enough(types) {
				return types
			}
		}
	}
	t.Fatalf("the stream at %s ended (%v) with only %v", path, sc.Err(), types)
	return nil
}

// newSIPClientAt is a sipClient bound to ip (a loopback address).
func newSIPClientAt(t *testing.T, ip string) *sipClient {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &sipClient{t: t, conn: c}
}

// fetchProvisioning GETs a device's provisioning document with secret.
func fetchProvisioning(t *testing.T, n *sipNode, account, device, secret string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+n.Addr+"/provision/"+account+"/"+device, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(device, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// TestMessaging_RestoreTheRightfulUser: an attacker with alice's SIP
// password registers from its own network and floods. Containment resets
// alice's password; the rightful phone, registered from the network it
// always used, gets a check-sync NOTIFY, fetches its provisioning
// document with its provisioning secret (which the attacker never had),
// and registers with the new password. The attacker's binding gets no
// NOTIFY and its password no longer works. The downtime, from the reset
// to the phone's REGISTER, is logged.
func TestMessaging_RestoreTheRightfulUser(t *testing.T) {
	t.Parallel()
	// The phone registers at n1, the attacker floods through n2, and the
	// phone fetches its document from n3 and registers there.
	n1, n2, n3 := startSIPCluster(t)
	n := n1
	acme := "restore" + randomID()
	n.put(t, "/v1/accounts/"+acme, map[string]string{})
	n.put(t, "/v1/accounts/"+acme+"/groups/hq", map[string]string{})
	r := n.call(t, http.MethodPut, "/v1/accounts/"+acme+"/devices/alice", map[string]string{"group": "hq", "password": "alice-password-1"})
	if r.Status != http.StatusCreated {
		t.Fatalf("PUT alice: %s", r)
	}
	secret := decode[struct {
		Secret string `json:"provisioning_secret"`
	}](t, r).Secret
	if len(secret) < 40 {
		t.Fatalf("PUT of a new device shows no provisioning secret: %s", r)
	}
	if r := n.call(t, http.MethodGet, "/v1/accounts/"+acme+"/devices/alice", nil); strings.Contains(string(r.Body), secret) {
		t.Fatalf("GET shows the provisioning secret again: %s", r)
	}
	sms := sipp.StartUAS(t, sipp.UASMessage, "127.0.0.1:0")
	putFeature(t, n, "sms"+acme, sms.Addr)
	putRoutes(t, n, acme, [3]string{"MESSAGE", "+*", "sms" + acme})
	n.put(t, "/v1/accounts/"+acme+"/fraud-policy", map[string]any{
		"indicators": map[string]any{
			"rate_per_minute":  map[string]any{"warning": 3, "critical": 5},
			"burst_per_second": map[string]any{"enabled": false},
		},
		"actions": map[string]any{"terminate_in_flight": true, "reset_credentials": true, "block_destinations": true, "restore": true},
	})

	// The document opens with the secret, and with nothing else.
	if code, doc := fetchProvisioning(t, n3, acme, "alice", secret); code != 200 || doc["sip"].(map[string]any)["password"] != "alice-password-1" {
		t.Fatalf("provisioning document: %d %v", code, doc)
	}
	if code, _ := fetchProvisioning(t, n3, acme, "alice", "alice-password-1"); code != 401 {
		t.Fatalf("the SIP password opened the provisioning document: %d", code)
	}

	phone := newSIPClientAt(t, "127.0.0.1")
	phone.registerWithDigest(n1.sip, acme, "alice", "alice-password-1")
	attacker := newSIPClientAt(t, "127.0.1.1")
	attacker.registerWithDigest(n2.sip, acme, "alice", "alice-password-1")

	// The phone listens from now on, as a phone does.
	type heard struct {
		msg string
		at  time.Time
	}
	notified := make(chan heard, 1)
	go func() {
		msg := phone.answerRequest("NOTIFY", 200, 30*time.Second)
		notified <- heard{msg, time.Now()}
	}()

	flood := messageOptions(acme, "alice", "+15550004321")
	flood.Calls, flood.Rate, flood.LocalIP = 12, 20, "127.0.1.1"
	res, err := sipp.RunUAC(context.Background(), sipp.UACMessageAuth, n2.sip, flood)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed == 0 {
		t.Fatalf("the flood was never refused: %+v", res)
	}
	incs := openIncidents(t, n3, acme)
	if len(incs) != 1 || !slices.Contains(incs[0].Actions, "restore") {
		t.Fatalf("open incidents %+v, want one with the restore action", incs)
	}
	resetAt := incs[0].CredentialsResetAt
	if resetAt.IsZero() {
		t.Fatalf("the incident has no credentials_reset_at: %+v", incs[0])
	}

	// The phone hears check-sync, fetches its document, registers anew.
	h := <-notified
	if !strings.Contains(h.msg, "Event: check-sync") {
		t.Fatalf("the rightful phone got no check-sync NOTIFY:\n%s", h.msg)
	}
	acting := time.Now()
	code, doc := fetchProvisioning(t, n3, acme, "alice", secret)
	newPassword, _ := doc["sip"].(map[string]any)["password"].(string)
	if code != 200 || newPassword == "" || newPassword == "alice-password-1" {
		t.Fatalf("after the reset the document is %d %v; want a new password", code, doc)
	}
	phone.registerWithDigest(n3.sip, acme, "alice", newPassword)
	// Downtime: from the reset to the NOTIFY's arrival, plus the phone's
	// own fetch and REGISTER (the test's wait between them is not the
	// phone's).
	downtime := h.at.Sub(resetAt) + time.Since(acting)
	t.Logf("downtime of the rightful user, from the credential reset to its REGISTER with the new password: %v (NOTIFY after %v)",
		downtime.Round(time.Millisecond), h.at.Sub(resetAt).Round(time.Millisecond))

	// The attacker's binding got no NOTIFY, and its password fails.
	if got := attacker.answerRequest("NOTIFY", 200, 500*time.Millisecond); got != "" {
		t.Fatalf("the attacker's source got a NOTIFY:\n%s", got)
	}
	callID := randomID()
	code, chal := attacker.register(n2.sip, acme, "alice", callID, 1, "")
	creds, err := digest.Digest(challengeIn(t, chal), digest.Options{Method: "REGISTER", URI: "sip:" + acme + "." + sipZone,
		Username: "alice", Password: "alice-password-1", Count: 1})
	if err != nil || code != 401 {
		t.Fatalf("REGISTER: %d %v", code, err)
	}
	if code, _ := attacker.register(n2.sip, acme, "alice", callID, 2, creds.String()); code == 200 {
		t.Fatal("the old password still registers after the restore")
	}

	// Tenancy and brute force: another account's path is 404; ten wrong
	// secrets from one address (the SIP password tried above was the
	// first), then 429 even for the right one.
	other := "other" + randomID()
	n.put(t, "/v1/accounts/"+other, map[string]string{})
	if code, _ := fetchProvisioning(t, n3, other, "alice", secret); code != 404 {
		t.Fatalf("alice's document under another account: %d, want 404", code)
	}
	for i := 1; i < 10; i++ {
		if code, _ := fetchProvisioning(t, n3, acme, "alice", "wrong-secret-wrong-secret-wrong-secret-wro"); code != 401 {
			t.Fatalf("wrong secret %d: %d, want 401", i+1, code)
		}
	}
	if code, _ := fetchProvisioning(t, n3, acme, "alice", secret); code != 429 {
		t.Fatalf("after 10 wrong secrets: %d, want 429", code)
	}
}

// startSIPCluster starts three nodes on PostgreSQL (n2 and n3 joining n1)
// and returns once each sees all alive and routes actor requests.
func startSIPCluster(t *testing.T) (n1, n2, n3 *sipNode) {
	t.Helper()
	ns := startPooledSIPCluster(t, poolNode{name: "n1"}, poolNode{name: "n2"}, poolNode{name: "n3"})
	return ns[0], ns[1], ns[2]
}
