package main

// Device flows across a cluster: a device is reachable wherever it
// registered, whichever node handles the call (issue: edge actors own
// device flows). Real processes on PostgreSQL, SIPp as the caller, and a
// sipgo user agent on TCP as the callee (a connection it opened is the
// only way to reach it).

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/internal/sipp"
	"github.com/switchboard-pbx/switchboard/internal/testcert"
)

// phone is a user agent that registers over one flow it opens (a TCP or
// TLS connection, or a UDP socket) and answers every INVITE with 200 and
// every BYE with 200, as a softphone does. Its Contact names an address
// nobody listens on: only its flow reaches it.
type phone struct {
	// transport of its flow: "TCP" (default) or "UDP" (a phone behind
	// NAT: its Contact names an address nobody can reach).
	transport string
	ua        *sipgo.UserAgent
	cli       *sipgo.Client
	invites   atomic.Int64
	acks      atomic.Int64
	byes      atomic.Int64
	// callID is the Call-ID of the last INVITE it got.
	callID atomic.Value
}

func startPhone(t *testing.T, answerHeaders ...sip.Header) *phone {
	t.Helper()
	// For a phone on TLS (transport "TLS"): the node's certificate is
	// self-signed.
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("tcp-phone"), sipgo.WithUserAgenTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{transport: "TCP", ua: ua, cli: cli}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		p.invites.Add(1)
		p.callID.Store(req.CallID().Value())
		res := sip.NewResponseFromRequest(req, 200, "OK", []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		for _, h := range answerHeaders {
			res.AppendHeader(h)
		}
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1", Port: 9, UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}}})
		_ = tx.Respond(res)
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) { p.acks.Add(1) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.byes.Add(1)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	return p
}

// register registers device dev of account over TCP at node with digest.
func (p *phone) register(t *testing.T, node, account, dev, password string) {
	t.Helper()
	domain := account + "." + sipZone
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	req.AppendHeader(sip.NewHeader("From", "<sip:"+dev+"@"+domain+">;tag="+sip.GenerateTagN(8)))
	req.AppendHeader(sip.NewHeader("To", "<sip:"+dev+"@"+domain+">"))
	contact := "<sip:" + dev + "@127.0.0.1:9;transport=" + strings.ToLower(p.transport) + ">"
	if p.transport == "UDP" {
		contact = "<sip:" + dev + "@10.0.0.9:5060>" // a private address behind NAT
	}
	req.AppendHeader(sip.NewHeader("Contact", contact))
	req.AppendHeader(sip.NewHeader("Expires", "300"))
	req.SetTransport(p.transport)
	req.SetDestination(node)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER over TCP: %v", err)
	}
	if res.StatusCode == 401 {
		res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: dev, Password: password})
		if err != nil {
			t.Fatalf("REGISTER over TCP with credentials: %v", err)
		}
	}
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER over TCP: %d %s", res.StatusCode, res.Reason)
	}
}

// callUntilAnswered starts a SIPp call (o) into node n for callee, and
// returns once callee answered and the caller's ACK reached it; the
// call's result comes on the channel when SIPp ends it.
func callUntilAnswered(t *testing.T, n *sipNode, o sipp.UACOptions, callee *phone) <-chan sipp.Result {
	t.Helper()
	done := make(chan sipp.Result, 1)
	go func() {
		res, _ := sipp.RunUAC(context.Background(), sipp.UACInviteAuth, n.sip, o)
		done <- res
	}()
	deadline := time.Now().Add(10 * time.Second)
	for callee.acks.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the callee never got the ACK of its answer")
		}
		time.Sleep(10 * time.Millisecond) // polling the phone
	}
	return done
}

type edgeActorsJSON struct {
	Counts     map[string]map[string]int `json:"counts"`
	EdgeActors map[string][]struct {
		Flow         string    `json:"flow"`
		Transport    string    `json:"transport"`
		Remote       string    `json:"remote"`
		Account      string    `json:"account"`
		Device       string    `json:"device"`
		Since        time.Time `json:"since"`
		LastActivity time.Time `json:"last_activity"`
	} `json:"edge_actors"`
}

// A three-node cluster: alice registers over TCP at n1, bob over UDP at
// n3, carol over UDP from behind NAT at n3, and bob calls alice and carol
// through n2. Whichever node tier 2 places each
// call on, alice's INVITE goes out on her TCP connection at n1 (a hop to
// n1 with her flow when the call is elsewhere), the call is answered, and
// bob's BYE ends it. Before edge actors, every call placed off n1 got 408
// within a millisecond. A padded INVITE larger than a UDP hop may carry
// crosses nodes too (the hop is TCP).
func TestEdge_DeviceOnTCPReachableFromEveryNode(t *testing.T) {
	t.Parallel()
	n1, n2, n3 := startSIPCluster(t)
	account := "flows" + randomID()
	provisionSIPAccount(t, n1, account, "")
	n1.put(t, "/v1/accounts/"+account+"/fraud-policy", map[string]any{"indicators": map[string]any{
		"rate_per_minute":  map[string]any{"warning": 1000, "critical": 2000},
		"burst_per_second": map[string]any{"warning": 500, "critical": 1000},
	}})
	alice := startPhone(t)
	alice.register(t, n1.sip, account, "alice", "alice-password-1")
	wantAllSuccessful(t, "bob registers at n3 over UDP", runUAC(t, sipp.RegisterAuth, n3.sip, deviceCall(account, "bob", "bob")), 1)
	// carol is behind NAT: her UDP source is not her Contact.
	n1.put(t, "/v1/accounts/"+account+"/devices/carol", map[string]string{"group": "hq", "password": "carol-password-1"})
	carol := startPhone(t)
	carol.transport = "UDP"
	carol.register(t, n3.sip, account, "carol", "carol-password-1")

	// n1 shows alice's flow as an edge actor.
	ea := decode[edgeActorsJSON](t, n1.call(t, http.MethodGet, "/debug/actors?kind=edge", nil))
	found := false
	for _, f := range ea.EdgeActors["n1"] {
		if f.Account == account && f.Device == "alice" && f.Transport == "tcp" && strings.HasPrefix(f.Remote, "127.0.0.1:") && !f.Since.IsZero() {
			found = true
		}
	}
	if !found || ea.Counts["n1"]["edge"] < 1 {
		t.Fatalf("n1's /debug/actors?kind=edge does not list alice's TCP flow: %+v", ea)
	}

	o := deviceCall(account, "bob", "alice")
	o.CallLength = 100 * time.Millisecond
	placed := map[string]int{}
	for i := 0; i < 12 && (placed["n1"] == 0 || placed["n2"] == 0 || placed["n3"] == 0); i++ {
		res := runUAC(t, sipp.UACInviteAuth, n2.sip, o)
		wantAllSuccessful(t, fmt.Sprintf("call %d from bob at n2 to alice on TCP at n1", i+1), res, 1)
		for _, id := range callIDs(res) {
			c := endedCall(t, n2, id)
			if c.Status != 200 || c.Disposition != "completed" {
				t.Fatalf("call %s placed on %s: status %d, disposition %s", id, c.Node, c.Status, c.Disposition)
			}
			placed[c.Node]++
		}
	}
	if placed["n2"]+placed["n3"] == 0 {
		t.Fatalf("every call was placed on n1 (%v): the cross-node path was not exercised", placed)
	}
	// carol, behind NAT at n3, is reached at her source from every node.
	toCarol := deviceCall(account, "bob", "carol")
	toCarol.CallLength = 100 * time.Millisecond
	natPlaced := map[string]int{}
	for i := 0; i < 12 && (natPlaced["n1"] == 0 || natPlaced["n2"] == 0 || natPlaced["n3"] == 0); i++ {
		res := runUAC(t, sipp.UACInviteAuth, n2.sip, toCarol)
		wantAllSuccessful(t, fmt.Sprintf("call %d from bob at n2 to carol behind NAT at n3", i+1), res, 1)
		for _, id := range callIDs(res) {
			natPlaced[endedCall(t, n2, id).Node]++
		}
	}
	if natPlaced["n1"]+natPlaced["n2"] == 0 {
		t.Fatalf("every call to carol was placed on n3 (%v): the cross-node path was not exercised", natPlaced)
	}
	t.Logf("calls to carol placed by node: %v", natPlaced)
	if got := alice.invites.Load(); got < int64(placed["n1"]+placed["n2"]+placed["n3"]) {
		t.Fatalf("alice saw %d INVITEs for %v calls", got, placed)
	}
	if alice.byes.Load() == 0 {
		t.Fatal("alice never got a BYE")
	}
	t.Logf("calls placed by node: %v", placed)

	// A padded INVITE (over 1,300 bytes, more than a UDP hop carries)
	// crosses nodes: enters at n3, reaches alice at n1, wherever placed.
	big := o
	big.Vars = map[string]string{"pad": strings.Repeat("x", 1400)}
	before := alice.invites.Load()
	for i := range 3 {
		res := runUAC(t, sipp.UACInvitePad, n3.sip, big)
		wantAllSuccessful(t, fmt.Sprintf("padded call %d entering at n3", i+1), res, 1)
		if !strings.Contains(res.Messages, "X-Pad: xxxx") {
			t.Fatal("the padded INVITE was not sent padded")
		}
	}
	if got := alice.invites.Load() - before; got < 3 {
		t.Fatalf("alice saw %d of the 3 padded INVITEs", got)
	}
}

// Real softphones across a cluster, as the issue saw them fail 5 of 5:
// alice's baresip registers over TCP at n1, bob's over UDP at n3, and the
// account's group is in pool west, whose only node is n2, so every call
// is placed on n2: neither phone's node. bob calls alice, she answers
// (auto), and bob's hang-up reaches her.
func TestEdge_BaresipCallAcrossThreeNodes(t *testing.T) {
	t.Parallel()
	bin := requireTool(t, "baresip", "baresip")
	ns := startPooledSIPCluster(t, poolNode{name: "n1", pool: "east"}, poolNode{name: "n2", pool: "west"}, poolNode{name: "n3", pool: "east"})
	n1, n2, n3 := ns[0], ns[1], ns[2]
	account := "softx" + randomID()
	provisionSIPAccount(t, n1, account, "west")

	alice := startBaresip(t, bin, n1, account, "alice", `;answermode=auto;outbound="sip:`+n1.sip+`;transport=tcp"`)
	waitBinding(t, n1, account, "alice", "baresip")
	bob := startBaresip(t, bin, n3, account, "bob", `;outbound="sip:`+n3.sip+`"`, "/dial sip:alice@"+account+"."+sipZone)
	waitOutput(t, alice.out, "Call established: sip:bob@", 20*time.Second)
	waitOutput(t, bob.out, "Call established: sip:alice@", 20*time.Second)
	bob.stop(t)
	waitOutput(t, alice.out, "session closed", 20*time.Second)
	// The call was handled on n2: it got the INVITE only by the hop.
	if m := string(n2.call(t, http.MethodGet, "/metrics", nil).Body); !strings.Contains(m, `switchboard_sip_requests_total{method="INVITE"} `) {
		t.Fatalf("n2 never got an INVITE, so the call was not placed there:\n%s", m)
	}
}

// RFC 4028: a call whose 2xx set a session interval and that nobody
// refreshes ends at its expiry, disposition expired, and both legs get a
// BYE from the node (the caller vanished without one; before, the call
// stayed "active" for good). alice answers on TCP with Session-Expires: 2;
// bob calls over UDP, ACKs, and then never refreshes nor hangs up.
func TestEdge_SessionNotRefreshedEndsExpiredAndBothLegsGetBye(t *testing.T) {
	t.Parallel()
	n := startSIPNode(t)
	account := "timer" + randomID()
	provisionSIPAccount(t, n, account, "")
	alice := startPhone(t, sip.NewHeader("Session-Expires", "2;refresher=uac"), sip.NewHeader("Require", "timer"))
	alice.register(t, n.sip, account, "alice", "alice-password-1")

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("udp-phone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	domain := account + "." + sipZone
	dc := sipgo.NewDialogClientCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: 9}})
	var bobByes atomic.Int64
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		bobByes.Add(1)
		if err := dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	})
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "alice", Host: domain})
	req.AppendHeader(sip.NewHeader("From", "<sip:bob@"+domain+">;tag="+sip.GenerateTagN(8)))
	req.AppendHeader(sip.NewHeader("To", "<sip:alice@"+domain+">"))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n"))
	req.SetDestination(n.sip)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := dc.WriteInvite(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: "bob", Password: "bob-password-1"}); err != nil {
		t.Fatalf("the call was not answered: %v", err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	id := req.CallID().Value()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := decode[callJSON](t, n.call(t, http.MethodGet, "/v1/calls/"+id, nil))
		if c.State == "ended" {
			if c.Disposition != "expired" {
				t.Fatalf("the call ended %s, want expired: %+v", c.Disposition, c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call is still %s 15 s after a 2 s session was answered", c.State)
		}
		time.Sleep(50 * time.Millisecond) // polling the record
	}
	for alice.byes.Load() == 0 || bobByes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after expiry alice got %d BYEs and bob %d; want one each", alice.byes.Load(), bobByes.Load())
		}
		time.Sleep(20 * time.Millisecond) // polling the counters
	}
}

// A call outlives its node: alice on TCP at n1, bob (SIPp) at n3, the call
// placed on n2 (the only node of the group's pool). Once alice answered
// and bob's ACK reached her, n2 is killed with SIGKILL. bob's BYE still reaches alice through the
// survivors (the call's node was never on the dialog's route: the edges
// of the two parties are), gets 200, and the call's record, which was in
// the store from its start, is completed by the survivors.
func TestEdge_CallSurvivesSIGKILLOfItsNode(t *testing.T) {
	t.Parallel()
	ns := startPooledSIPCluster(t, poolNode{name: "n1", pool: "east"}, poolNode{name: "n2", pool: "west"}, poolNode{name: "n3", pool: "east"})
	n1, n2, n3 := ns[0], ns[1], ns[2]
	account := "survive" + randomID()
	provisionSIPAccount(t, n1, account, "west")
	alice := startPhone(t)
	alice.register(t, n1.sip, account, "alice", "alice-password-1")

	o := deviceCall(account, "bob", "alice")
	o.CallLength = 4 * time.Second
	done := callUntilAnswered(t, n3, o, alice)
	id, _ := alice.callID.Load().(string)
	waitCallStored(t, postgresDSN(t), id, func(r *actorpb.CallRecord) bool { return r.AnsweredAt != nil })
	n2.Kill()
	var res sipp.Result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("SIPp did not finish 30 s after the call's node was killed")
	}
	wantAllSuccessful(t, "the call whose node was killed, ended by bob's BYE", res, 1)
	if alice.byes.Load() == 0 {
		t.Fatal("alice never got bob's BYE")
	}
	ids := callIDs(res)
	if len(ids) != 1 {
		t.Fatalf("SIPp used Call-IDs %v, want one", ids)
	}
	c := endedCall(t, n1, ids[0])
	if c.Node != "n2" || c.Disposition != "completed" || c.Status != 200 || c.EndedBy != "caller" {
		t.Fatalf("the record after the BYE: %+v; want placed on n2, completed by the caller with 200", c)
	}
}

// SIGTERM mid-call: bob (SIPp) calls alice (TCP at n1) through n2, where
// the call is placed; once the call is up n2 gets SIGTERM. While it
// drains, a new INVITE to it is 503 with Retry-After, and the call in
// progress keeps its signalling: bob's BYE, through n2, reaches alice and
// the record is completed.
func TestEdge_SIGTERMMidCallKeepsItsSignalling(t *testing.T) {
	t.Parallel()
	wait := []string{"--shutdown-timeout", "20s"}
	ns := startPooledSIPCluster(t, poolNode{name: "n1", pool: "east", args: wait}, poolNode{name: "n2", pool: "west", args: wait})
	n1, n2 := ns[0], ns[1]
	account := "drain" + randomID()
	provisionSIPAccount(t, n1, account, "west")
	alice := startPhone(t)
	alice.register(t, n1.sip, account, "alice", "alice-password-1")

	o := deviceCall(account, "bob", "alice")
	o.CallLength = 3 * time.Second
	done := callUntilAnswered(t, n2, o, alice)
	if err := n2.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "n2 to say it is draining", func() (bool, string) {
		r, err := n2.Do(context.Background(), http.MethodGet, "/healthz", nil, nil)
		return err == nil && strings.Contains(string(r.Body), "draining"), fmt.Sprint(r, err)
	})
	refused := sipp.UACOptions{Service: "alice", Domain: account + "." + sipZone, FromUser: "bob", TraceMessages: true,
		Vars: map[string]string{"expect": "503"}}
	if res, err := sipp.RunUAC(context.Background(), sipp.UACExpect, n2.sip, refused); err != nil || res.Successful != 1 {
		t.Fatalf("a new INVITE to the draining node: want 503: %v %s\n%s", err, res, nodeproc.Tail(res.Messages))
	}
	res := <-done
	wantAllSuccessful(t, "the call in progress on the draining node", res, 1)
	if alice.byes.Load() == 0 {
		t.Fatal("alice never got bob's BYE")
	}
	c := endedCall(t, n1, callIDs(res)[0])
	if c.Node != "n2" || c.Disposition != "completed" || c.EndedBy != "caller" {
		t.Fatalf("the record: %+v; want placed on n2, completed by the caller", c)
	}
}

// A phone on TLS is reachable the same way: alice registers over TLS at
// n1 and bob (SIPp) calls her through n2, where the call is placed (the
// only node of the group's pool): the hop to n1 carries her flow, and n1
// sends the INVITE out on her TLS connection.
func TestEdge_DeviceOnTLSReachableFromAnotherNode(t *testing.T) {
	t.Parallel()
	cert, key := testcert.SelfSigned(t, t.TempDir())
	tlsAddr := "127.0.0.1:" + freePort(t)
	ns := startPooledSIPCluster(t, poolNode{name: "n1", pool: "east", args: []string{"--sips", tlsAddr, "--sips-cert", cert, "--sips-key", key}}, poolNode{name: "n2", pool: "west"})
	n1, n2 := ns[0], ns[1]
	account := "tls" + randomID()
	provisionSIPAccount(t, n1, account, "west")
	alice := startPhone(t)
	alice.transport = "TLS"
	alice.register(t, tlsAddr, account, "alice", "alice-password-1")
	ea := decode[edgeActorsJSON](t, n1.call(t, http.MethodGet, "/debug/actors?kind=edge", nil))
	if len(ea.EdgeActors["n1"]) != 1 || ea.EdgeActors["n1"][0].Transport != "tls" {
		t.Fatalf("n1's edge actors: %+v, want alice's TLS flow", ea.EdgeActors)
	}
	o := deviceCall(account, "bob", "alice")
	o.CallLength = 100 * time.Millisecond
	res := runUAC(t, sipp.UACInviteAuth, n2.sip, o)
	wantAllSuccessful(t, "bob at n2 calls alice on TLS at n1", res, 1)
	if c := endedCall(t, n2, callIDs(res)[0]); c.Node != "n2" || c.Status != 200 {
		t.Fatalf("the call's record: %+v; want placed on n2, answered", c)
	}
	if alice.invites.Load() != 1 || alice.byes.Load() != 1 {
		t.Fatalf("alice got %d INVITEs and %d BYEs over TLS, want one each", alice.invites.Load(), alice.byes.Load())
	}
}
