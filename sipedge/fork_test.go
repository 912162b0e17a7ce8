package sipedge_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

// These tests call device bob, whose contacts are phones on loopback
// sockets, from a trunk (trusted by source address, so no digest), through
// a real Edge whose actors are callActors.

// callActors stands in for the actors a call between a trunk and a device
// meets: the account (edge view with the trunk, device bob), the
// supervisor (every call goes), the call actor (placed on this node, its
// answer and end recorded) and bob's devicegroup (his bindings).
type callActors struct {
	fakeActors

	mu       sync.Mutex
	bindings []*actorpb.Binding
	answered []string // AnswerCall targets
	ended    []*actorpb.EndCall
}

func (f *callActors) Request(ctx context.Context, kind, identity string, msg proto.Message) (proto.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m := msg.(type) {
	case *actorpb.GetSecretEdgeView:
		if m.DeviceOnly {
			if m.Device != "bob" {
				return &actorpb.SecretEdgeView{}, nil
			}
			return &actorpb.SecretEdgeView{Device: &actorpb.Device{Id: "bob", Group: "hq"}, Found: true}, nil
		}
		return &actorpb.SecretEdgeView{
			Account: &actorpb.Account{Id: testAccount, DnsName: authDomain},
			Trunks:  []*actorpb.Trunk{{Id: "pbx", Sources: []string{"127.0.0.1/32"}}},
		}, nil
	case *actorpb.CheckMessage:
		return &actorpb.CheckReply{Verdict: "deliver"}, nil
	case *actorpb.GetDevice:
		if m.Device != "bob" {
			return &actorpb.DeviceReply{Error: &actorpb.Error{Code: actorpb.Code_CODE_NOT_FOUND}}, nil
		}
		return &actorpb.DeviceReply{Device: &actorpb.Device{Id: "bob", Group: "hq"}}, nil
	case *actorpb.StartCall:
		rec := proto.Clone(m.Call).(*actorpb.CallRecord)
		rec.State, rec.Node = "active", rec.EdgeNode
		return &actorpb.CallReply{Call: rec}, nil
	case *actorpb.LookupBindings:
		return &actorpb.RegisterReply{Bindings: f.bindings}, nil
	case *actorpb.AnswerCall:
		f.answered = append(f.answered, m.Target)
		return &actorpb.CallReply{}, nil
	case *actorpb.EndCall:
		f.ended = append(f.ended, proto.Clone(m).(*actorpb.EndCall))
		return &actorpb.CallReply{}, nil
	}
	return f.fakeActors.Request(ctx, kind, identity, msg)
}

func (f *callActors) Tell(kind, identity string, msg proto.Message) error {
	_, err := f.Request(context.Background(), kind, identity, msg)
	return err
}

func (f *callActors) RequestWithHint(ctx context.Context, kind, identity string, _ actors.Hint, msg proto.Message) (proto.Message, error) {
	return f.Request(ctx, kind, identity, msg)
}

func (f *callActors) CallHint(context.Context, string) (actors.Hint, error) {
	return actors.Hint{}, nil
}

// waitAnswered waits until the call is recorded answered, and returns the
// targets AnswerCall named.
func (f *callActors) waitAnswered(t *testing.T) []string {
	t.Helper()
	deadline := time.Now().Add(replyWait)
	for {
		f.mu.Lock()
		got := slices.Clone(f.answered)
		f.mu.Unlock()
		if len(got) > 0 || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEnded waits until the call's record is ended, and returns how.
func (f *callActors) waitEnded(t *testing.T) *actorpb.EndCall {
	t.Helper()
	deadline := time.Now().Add(replyWait)
	for {
		f.mu.Lock()
		var got *actorpb.EndCall
		if len(f.ended) > 0 {
			got = f.ended[0]
		}
		f.mu.Unlock()
		if got != nil {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call's record was not ended within %v", replyWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// phone is one registered contact of bob: a UDP socket answering what
// the edge sends it.
type phone struct {
	*udpPeer
	name string
	q    uint32 // thousandths
}

func (p *phone) binding() *actorpb.Binding {
	return &actorpb.Binding{Device: "bob", Contact: "sip:bob@" + p.addr(), Source: "udp:" + p.addr(), QMilli: p.q}
}

// next waits up to d for the next request of method the edge sends the
// phone, skipping others; nil if none came.
func (p *phone) next(method sip.RequestMethod, d time.Duration) *sip.Request {
	p.t.Helper()
	data := p.await(d, func(data []byte) bool {
		msg, err := sip.ParseMessage(data)
		req, ok := msg.(*sip.Request)
		return err == nil && ok && req.Method == method
	})
	if data == nil {
		return nil
	}
	msg, _ := sip.ParseMessage(data)
	return msg.(*sip.Request)
}

// must is next, failing the test when nothing comes within replyWait.
func (p *phone) must(method sip.RequestMethod) *sip.Request {
	p.t.Helper()
	req := p.next(method, replyWait)
	if req == nil {
		p.t.Fatalf("phone %s got no %s within %v", p.name, method, replyWait)
	}
	return req
}

// respond answers req from the phone, with its own To tag.
func (p *phone) respond(req *sip.Request, code int) {
	p.t.Helper()
	res := sip.NewResponseFromRequest(req, code, "", nil)
	res.To().Params.Add("tag", "tag-"+p.name)
	if code >= 180 && code < 300 {
		var c sip.Uri
		if err := sip.ParseUri("sip:bob@"+p.addr(), &c); err != nil {
			p.t.Fatal(err)
		}
		res.AppendHeader(&sip.ContactHeader{Address: c})
	}
	p.send([]byte(res.String()))
}

// forkCall is a call from the trunk to bob, whose contacts are phones.
type forkCall struct {
	t      *testing.T
	te     *testEdge
	actors *callActors
	caller *udpPeer
	phones []*phone
	callID string
	branch string
}

// startForkCall starts an edge in front of bob's phones, with q (in
// thousandths) each, and sends the caller's INVITE.
func startForkCall(t *testing.T, qs ...uint32) *forkCall {
	t.Helper()
	return startForkCallWith(t, nil, qs...)
}

// startForkCallWith is startForkCall with the edge's Config changed by
// mutate.
func startForkCallWith(t *testing.T, mutate func(*sipedge.Config), qs ...uint32) *forkCall {
	t.Helper()
	fa := &callActors{}
	te := startEdge(t, func(c *sipedge.Config) {
		c.Actors = fa
		// A contact that has not answered yet is waited for while the
		// test runs: every contact a test sees called was called by the
		// fork, not after a failover.
		c.FailoverTimeout = 4 * replyWait
		if mutate != nil {
			mutate(c)
		}
	})
	c := &forkCall{t: t, te: te, actors: fa, caller: newUDPPeer(t, te, "127.0.0.1"), callID: unique("fork"), branch: "z9hG4bK" + unique("b")}
	for i, q := range qs {
		p := &phone{udpPeer: newUDPPeer(t, te, "127.0.0.1"), name: string(rune('a' + i)), q: q}
		c.phones = append(c.phones, p)
		fa.mu.Lock()
		fa.bindings = append(fa.bindings, p.binding())
		fa.mu.Unlock()
	}
	c.caller.send(c.request(sip.INVITE))
	return c
}

// request is the caller's INVITE, or the CANCEL of it.
func (c *forkCall) request(method sip.RequestMethod) []byte {
	return crlf(fmt.Sprintf(`%[1]s sip:bob@%[2]s SIP/2.0
Via: SIP/2.0/UDP %[3]s;branch=%[4]s;rport
Max-Forwards: 70
From: <sip:pbx@%[2]s>;tag=caller
To: <sip:bob@%[2]s>
Call-ID: %[5]s
CSeq: 1 %[1]s
Contact: <sip:pbx@%[3]s>
Content-Length: 0

`, method, authDomain, c.caller.addr(), c.branch, c.callID))
}

// responsesUntil reads the codes of the caller's responses to its INVITE
// until one with code, or a final one, comes, which it returns too (nil
// if none came within replyWait).
func (c *forkCall) responsesUntil(code int) ([]int, *sip.Response) {
	c.t.Helper()
	var got []int
	res := parseResponse(c.caller.await(replyWait, func(data []byte) bool {
		res := parseResponse(data)
		if res == nil || res.CallID() == nil || res.CallID().Value() != c.callID || res.CSeq().MethodName != sip.INVITE {
			return false
		}
		got = append(got, res.StatusCode)
		return res.StatusCode == code || !res.IsProvisional()
	}))
	return got, res
}

// final is the caller's final response, failing the test when none came.
func (c *forkCall) final() *sip.Response {
	c.t.Helper()
	got, res := c.responsesUntil(0)
	if res == nil {
		c.t.Fatalf("the caller got %v and no final response within %v", got, replyWait)
	}
	return res
}

func toTag(m sip.Message) string {
	var to *sip.ToHeader
	switch m := m.(type) {
	case *sip.Response:
		to = m.To()
	case *sip.Request:
		to = m.To()
	}
	tag, _ := to.Params.Get("tag")
	return tag
}

// TestFork_RFC3261_16_7_FirstAnswerWinsOthersCancelled: bob's two
// contacts of equal q are called at once; the one that answers wins, its
// 200 goes to the caller, and the one still ringing gets CANCEL (section
// 16.10) and ends with 487.
func TestFork_RFC3261_16_7_FirstAnswerWinsOthersCancelled(t *testing.T) {
	c := startForkCall(t, 1000, 1000)
	a, b := c.phones[0], c.phones[1]
	inviteA, inviteB := a.must(sip.INVITE), b.must(sip.INVITE)
	// Each ringing is relayed. (One at a time: sipgo handles each
	// datagram in a goroutine of its own, and a 180 overtaken by the 200
	// of its transaction is dropped.)
	for _, p := range []*phone{b, a} {
		p.respond(map[*phone]*sip.Request{a: inviteA, b: inviteB}[p], 180)
		if got, res := c.responsesUntil(180); res == nil || toTag(res) != "tag-"+p.name {
			t.Fatalf("the caller got %v after %s rang, want its 180", got, p.name)
		}
	}
	a.respond(inviteA, 200)
	if res := c.final(); res.StatusCode != 200 || toTag(res) != "tag-a" {
		t.Fatalf("the caller got %d (To tag %q), want the 200 of contact a", res.StatusCode, toTag(res))
	}
	cancel := b.must(sip.CANCEL)
	b.respond(cancel, 200)
	b.respond(inviteB, 487)
	if ack := b.must(sip.ACK); toTag(ack) != "tag-b" {
		t.Fatalf("the 487 of b was acknowledged with To tag %q, want tag-b", toTag(ack))
	}
	if got := c.actors.waitAnswered(t); !slices.Equal(got, []string{a.addr()}) {
		t.Fatalf("the call was answered at %v, want [%s] (contact a)", got, a.addr())
	}
	if req := a.next(sip.CANCEL, silenceWait); req != nil {
		t.Fatalf("the contact that answered got a CANCEL:\n%s", req)
	}
}

// TestFork_RFC3261_16_6_QGroupsInTurn: the contact of the highest q is
// called alone; the one of lower q only once the first has failed, and
// never when the first answers.
func TestFork_RFC3261_16_6_QGroupsInTurn(t *testing.T) {
	t.Run("higher q busy, then lower q answers", func(t *testing.T) {
		c := startForkCall(t, 500, 1000)
		low, high := c.phones[0], c.phones[1]
		inviteHigh := high.must(sip.INVITE)
		high.respond(inviteHigh, 180)
		// The caller hears the ringing: the edge has dealt with the first
		// group, and has not called the second.
		if provisional, _ := c.responsesUntil(180); !slices.Contains(provisional, 180) {
			t.Fatalf("the caller got %v, want the 180 of the higher-q contact", provisional)
		}
		if req := low.next(sip.INVITE, silenceWait); req != nil {
			t.Fatalf("the lower-q contact was called while the higher-q one rang:\n%s", req)
		}
		high.respond(inviteHigh, 486)
		inviteLow := low.must(sip.INVITE)
		low.respond(inviteLow, 200)
		if res := c.final(); res.StatusCode != 200 || toTag(res) != "tag-a" {
			t.Fatalf("the caller got %d (To tag %q), want the 200 of the lower-q contact", res.StatusCode, toTag(res))
		}
	})
	t.Run("higher q answers, lower q never called", func(t *testing.T) {
		c := startForkCall(t, 1000, 300)
		high, low := c.phones[0], c.phones[1]
		high.respond(high.must(sip.INVITE), 200)
		if res := c.final(); res.StatusCode != 200 {
			t.Fatalf("the caller got %d, want 200", res.StatusCode)
		}
		if req := low.next(sip.INVITE, silenceWait); req != nil {
			t.Fatalf("the lower-q contact was called after the higher-q one answered:\n%s", req)
		}
	})
}

// TestFork_RFC3261_16_10_CallerCancelCancelsEveryBranch: the caller's
// CANCEL goes on to every branch that rings; the caller gets 487 and the
// call's record says it was cancelled.
func TestFork_RFC3261_16_10_CallerCancelCancelsEveryBranch(t *testing.T) {
	c := startForkCall(t, 1000, 1000)
	invites := map[*phone]*sip.Request{}
	for _, p := range c.phones {
		invites[p] = p.must(sip.INVITE)
		p.respond(invites[p], 180)
	}
	if got, _ := c.responsesUntil(180); !slices.Contains(got, 180) {
		t.Fatalf("the caller got %v, want 180", got)
	}
	c.caller.send(c.request(sip.CANCEL))
	for _, p := range c.phones {
		p.respond(p.must(sip.CANCEL), 200)
		p.respond(invites[p], 487)
	}
	if res := c.final(); res.StatusCode != 487 {
		t.Fatalf("the caller got %d, want 487", res.StatusCode)
	}
	if end := c.actors.waitEnded(t); end.Status != 487 || end.EndedBy != "cancel" {
		t.Fatalf("the call ended with %d by %q, want 487 by cancel", end.Status, end.EndedBy)
	}
}

// TestFork_RingTimeoutBoundsTheWholeFork: when no branch answers within
// RingTimeout of the first ringing, every branch is cancelled and the
// caller gets 408.
func TestFork_RingTimeoutBoundsTheWholeFork(t *testing.T) {
	c := startForkCallWith(t, func(c *sipedge.Config) { c.RingTimeout = 200 * time.Millisecond }, 1000, 1000)
	invites := map[*phone]*sip.Request{}
	for _, p := range c.phones {
		invites[p] = p.must(sip.INVITE)
		p.respond(invites[p], 180)
	}
	for _, p := range c.phones {
		p.respond(p.must(sip.CANCEL), 200)
		p.respond(invites[p], 487)
	}
	if res := c.final(); res.StatusCode != 408 {
		t.Fatalf("the caller got %d, want 408", res.StatusCode)
	}
	if end := c.actors.waitEnded(t); end.Status != 408 || end.EndedBy != "timeout" {
		t.Fatalf("the call ended with %d by %q, want 408 by timeout", end.Status, end.EndedBy)
	}
}

// TestFork_RFC3261_16_7_6_BestFinalResponse: when every branch fails the
// caller gets a 6xx if any, else the lowest class, a response about the
// callee rather than a 503 (which becomes 500).
func TestFork_RFC3261_16_7_6_BestFinalResponse(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  int
	}{
		{[]int{503, 486}, 486},
		{[]int{503, 503}, 500},
		{[]int{404, 302}, 302},
		{[]int{480, 600}, 600},
	} {
		t.Run(fmt.Sprint(tc.codes), func(t *testing.T) {
			c := startForkCall(t, 1000, 1000)
			invites := []*sip.Request{c.phones[0].must(sip.INVITE), c.phones[1].must(sip.INVITE)}
			for i, p := range c.phones {
				p.respond(invites[i], tc.codes[i])
			}
			if res := c.final(); res.StatusCode != tc.want {
				t.Fatalf("branches answered %v: the caller got %d, want %d", tc.codes, res.StatusCode, tc.want)
			}
			if end := c.actors.waitEnded(t); int(end.Status) != tc.want || end.EndedBy != "failure" {
				t.Fatalf("the call ended with %d by %q, want %d by failure", end.Status, end.EndedBy, tc.want)
			}
		})
	}
}

// TestFork_LateAnswerEndedByTheEdge: a contact that answers 200 after
// another won (it had not rung, so it could not be cancelled, RFC 3261
// section 16.10) gets ACK and BYE from the edge; the caller knows only
// the winner's dialog.
func TestFork_LateAnswerEndedByTheEdge(t *testing.T) {
	c := startForkCall(t, 1000, 1000)
	a, b := c.phones[0], c.phones[1]
	inviteA, inviteB := a.must(sip.INVITE), b.must(sip.INVITE)
	a.respond(inviteA, 200)
	if res := c.final(); res.StatusCode != 200 || toTag(res) != "tag-a" {
		t.Fatalf("the caller got %d (To tag %q), want the 200 of a", res.StatusCode, toTag(res))
	}
	if req := b.next(sip.CANCEL, silenceWait); req != nil {
		t.Fatalf("b got CANCEL before any provisional response (RFC 3261 section 9.1 forbids it):\n%s", req)
	}
	b.respond(inviteB, 200)
	ack := b.must(sip.ACK)
	bye := b.must(sip.BYE)
	if toTag(ack) != "tag-b" || toTag(bye) != "tag-b" || bye.CSeq().SeqNo != inviteB.CSeq().SeqNo+1 ||
		bye.CallID().Value() != inviteB.CallID().Value() || !strings.Contains(bye.Recipient.String(), b.addr()) {
		t.Fatalf("b's dialog was ended with\n%s\n%s\nwant ACK and BYE (CSeq %d) to its Contact with To tag tag-b",
			ack, bye, inviteB.CSeq().SeqNo+1)
	}
	b.respond(bye, 200)
	if got := c.actors.waitAnswered(t); !slices.Equal(got, []string{a.addr()}) {
		t.Fatalf("the call was answered at %v, want only [%s]", got, a.addr())
	}
	if res := parseResponse(c.caller.read(silenceWait)); res != nil && toTag(res) == "tag-b" {
		t.Fatalf("the caller got b's 200 too:\n%s", res)
	}
}
