package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/credential"
)

// Demo provisioning: one account, one group, two devices. The passwords
// are fixed so that a softphone configured once keeps working across
// restarts; the demo is meant for a node on loopback.
var demoDevices = []struct{ id, password string }{
	{"alice", "alice-demo-1234"},
	{"bob", "bob-demo-1234"},
}

const (
	demoAccount = "acme"
	demoGroup   = "hq"
)

// provisionDemo creates the demo account on first start (demoExists) and
// prints its credentials on every start.
func (n *Node) provisionDemo(ctx context.Context) error {
	realm := demoAccount + "." + n.cfg.Zone
	// The first requests of a node that has just started can time out:
	// its lease and the cluster's handover may still be settling on a
	// loaded machine. Each step is retried: the read changes nothing, and
	// the writes are PUTs that a second try repeats as they were.
	var exists bool
	err := n.demoRetry(ctx, func() (err error) {
		exists, err = n.demoExists(ctx)
		return err
	})
	if err == nil && !exists {
		err = n.demoRetry(ctx, func() error { return n.createDemo(ctx, realm) })
	}
	if err != nil {
		return err
	}
	out := n.cfg.Out
	fmt.Fprintf(out, "\nSwitchboard demo on node %s\n", n.cfg.Name)
	if exists {
		fmt.Fprintf(out, "  (account %s exists already and was left as it is: the passwords below are those\n"+
			"   it was created with, unless they were changed since)\n", demoAccount)
	}
	fmt.Fprintf(out, "  HTTP API  http://%s   (try: curl http://%s/v1/accounts/%s)\n", n.HTTPAddr(), n.HTTPAddr(), demoAccount)
	fmt.Fprintf(out, "  account   %s   SIP domain and digest realm: %s\n", demoAccount, realm)
	fmt.Fprintf(out, "  group     %s\n", demoGroup)
	for _, d := range demoDevices {
		fmt.Fprintf(out, "  device    %-6s username %-6s password %s\n", d.id, d.id, d.password)
	}
	fmt.Fprintln(out)
	return nil
}

// demoTries is how many times each demo step is tried.
const demoTries = 5

// demoRefused is the account actor's answer to a demo step: final, not
// retried.
type demoRefused struct{ e *actorpb.Error }

func (r demoRefused) Error() string { return "demo: " + r.e.Message }

// demoRetry runs step until it succeeds, up to demoTries times a second
// apart, while it fails to reach the account (or the account answers
// unavailable).
func (n *Node) demoRetry(ctx context.Context, step func() error) error {
	again := func(err error) bool {
		var r demoRefused
		return err != nil && (!errors.As(err, &r) || r.e.Code == actorpb.Code_CODE_UNAVAILABLE)
	}
	err := step()
	for try := 1; again(err) && try < demoTries && ctx.Err() == nil; try++ {
		n.log.Info("demo: the account is not answering yet; trying again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		err = step()
	}
	return err
}

// demoExists says whether the demo account is stored already: --demo
// creates it once and never overwrites what a user changed since.
func (n *Node) demoExists(ctx context.Context) (bool, error) {
	rep, err := n.actors.Request(ctx, actors.KindAccount, demoAccount, &actorpb.GetAccount{})
	if err != nil {
		return false, err
	}
	switch e := rep.(*actorpb.AccountReply).GetError(); {
	case e == nil:
		return true, nil
	case e.Code == actorpb.Code_CODE_NOT_FOUND:
		return false, nil
	default:
		return false, demoRefused{e}
	}
}

// createDemo provisions the demo account, its group and devices.
func (n *Node) createDemo(ctx context.Context, realm string) error {
	msgs := []proto.Message{
		&actorpb.PutAccount{DisplayName: "Acme Corp (demo)"},
		&actorpb.PutGroup{Group: &actorpb.Group{Id: demoGroup, DisplayName: "Headquarters"}},
	}
	for _, d := range demoDevices {
		h := credential.Derive(d.id, realm, d.password)
		msgs = append(msgs, &actorpb.PutDevice{Device: d.id, Group: demoGroup, Ha1Md5: h.MD5, Ha1Sha256: h.SHA256})
	}
	for _, m := range msgs {
		rep, err := n.actors.Request(ctx, actors.KindAccount, demoAccount, m)
		if err != nil {
			return err
		}
		if e := rep.(interface{ GetError() *actorpb.Error }).GetError(); e != nil {
			return demoRefused{e}
		}
	}
	return nil
}
