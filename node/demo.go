package node

import (
	"context"
	"fmt"

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

func (n *Node) provisionDemo(ctx context.Context) error {
	msgs := []proto.Message{
		&actorpb.PutAccount{DisplayName: "Acme Corp (demo)"},
		&actorpb.PutGroup{Group: &actorpb.Group{Id: demoGroup, DisplayName: "Headquarters"}},
	}
	realm := demoAccount + "." + n.cfg.Zone
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
			return fmt.Errorf("demo: %s", e.Message)
		}
	}
	out := n.cfg.Out
	fmt.Fprintf(out, "\nSwitchboard demo on node %s\n", n.cfg.Name)
	fmt.Fprintf(out, "  HTTP API  http://%s   (try: curl http://%s/v1/accounts/%s)\n", n.HTTPAddr(), n.HTTPAddr(), demoAccount)
	fmt.Fprintf(out, "  account   %s   SIP domain and digest realm: %s\n", demoAccount, realm)
	fmt.Fprintf(out, "  group     %s\n", demoGroup)
	for _, d := range demoDevices {
		fmt.Fprintf(out, "  device    %-6s username %-6s password %s\n", d.id, d.id, d.password)
	}
	fmt.Fprintln(out)
	return nil
}
