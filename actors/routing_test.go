package actors

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/persistence"
)

func TestTrunk_SourcesNormalisedAndGroupMustExist(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	provision(t, s, "acme", "hq")
	many := make([]string, MaxTrunkSources+1)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.%d.0/24", i)
	}
	tests := []struct {
		name  string
		trunk *actorpb.Trunk
		code  actorpb.Code
		field string
		want  []string
	}{
		{"no id", &actorpb.Trunk{Sources: []string{"192.0.2.1"}}, actorpb.Code_CODE_INVALID, "trunk", nil},
		{"no sources", &actorpb.Trunk{Id: "pstn"}, actorpb.Code_CODE_INVALID, "sources", nil},
		{"too many sources", &actorpb.Trunk{Id: "pstn", Sources: many}, actorpb.Code_CODE_INVALID, "sources", nil},
		{"not a prefix", &actorpb.Trunk{Id: "pstn", Sources: []string{"192.0.2.0/24", "carrier.example"}}, actorpb.Code_CODE_INVALID, "sources[1]", nil},
		{"bits out of range", &actorpb.Trunk{Id: "pstn", Sources: []string{"192.0.2.0/33"}}, actorpb.Code_CODE_INVALID, "sources[0]", nil},
		{"zoned address", &actorpb.Trunk{Id: "pstn", Sources: []string{"fe80::1%eth0"}}, actorpb.Code_CODE_INVALID, "sources[0]", nil},
		{"unknown group", &actorpb.Trunk{Id: "pstn", Sources: []string{"192.0.2.1"}, Group: "sales"}, actorpb.Code_CODE_INVALID, "group", nil},
		{"bare addresses become host prefixes, prefixes are masked",
			&actorpb.Trunk{Id: "pstn", Sources: []string{"192.0.2.1", "2001:db8::1", "198.51.100.77/24"}, Group: "hq"},
			actorpb.Code_CODE_UNSPECIFIED, "", []string{"192.0.2.1/32", "2001:db8::1/128", "198.51.100.0/24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask[*actorpb.TrunkReply](t, s, KindAccount, "acme", &actorpb.PutTrunk{Trunk: tt.trunk})
			if code(r.Error) != tt.code || r.Error.GetField() != tt.field {
				t.Fatalf("got %+v, want %v on %q", r.Error, tt.code, tt.field)
			}
			if tt.want != nil && fmt.Sprint(r.Trunk.Sources) != fmt.Sprint(tt.want) {
				t.Fatalf("sources %v, want %v", r.Trunk.Sources, tt.want)
			}
		})
	}
	l := ask[*actorpb.TrunkListReply](t, s, KindAccount, "acme", &actorpb.ListTrunks{})
	if len(l.Trunks) != 1 || l.Trunks[0].Trunk.Id != "pstn" {
		t.Fatalf("after one good put and seven bad ones: %+v", l)
	}
	// A group a trunk places its calls by cannot be deleted.
	if r := ask[*actorpb.GroupReply](t, s, KindAccount, "acme", &actorpb.DeleteGroup{Group: "hq"}); code(r.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("deleting the trunk's group: %+v", r.Error)
	}
}

func TestTrunk_IfMatchTimestampsDeleteAndReload(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	store := persistence.NewMemory()
	s := newSystem(t, store, func(c *Config) { c.Clock = clk })
	provision(t, s, "acme", "hq")
	put := func(ifMatch *uint64, src string) *actorpb.TrunkReply {
		t.Helper()
		return ask[*actorpb.TrunkReply](t, s, KindAccount, "acme", &actorpb.PutTrunk{Trunk: &actorpb.Trunk{Id: "pstn", Sources: []string{src}}, IfMatch: ifMatch})
	}
	r1 := put(nil, "192.0.2.1")
	if r1.Error != nil || !r1.Created {
		t.Fatalf("create: %+v", r1)
	}
	if _, err := store.Get(context.Background(), trunkKey("acme", "pstn")); err != nil {
		t.Fatalf("trunk not stored before the reply: %v", err)
	}
	clk.Advance(time.Minute)
	v1 := r1.Version
	r2 := put(&v1, "192.0.2.2")
	if r2.Error != nil || r2.Created || !r2.Trunk.CreatedAt.AsTime().Equal(r1.Trunk.CreatedAt.AsTime()) ||
		r2.Trunk.UpdatedAt.AsTime().Sub(r2.Trunk.CreatedAt.AsTime()) != time.Minute {
		t.Fatalf("update: %+v", r2)
	}
	if r := put(&v1, "192.0.2.3"); code(r.Error) != actorpb.Code_CODE_CONFLICT || r.Error.Field != "version" {
		t.Fatalf("stale If-Match: %+v", r.Error)
	}
	// A restarted node reads the trunk back.
	s2 := newSystem(t, store, nil)
	g := ask[*actorpb.TrunkReply](t, s2, KindAccount, "acme", &actorpb.GetTrunk{Trunk: "pstn"})
	if g.Error != nil || g.Version != r2.Version || g.Trunk.Sources[0] != "192.0.2.2/32" {
		t.Fatalf("reloaded: %+v", g)
	}
	if r := ask[*actorpb.TrunkReply](t, s, KindAccount, "acme", &actorpb.DeleteTrunk{Trunk: "pstn", IfMatch: &v1}); code(r.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("delete with a stale version: %+v", r.Error)
	}
	if r := ask[*actorpb.TrunkReply](t, s, KindAccount, "acme", &actorpb.DeleteTrunk{Trunk: "pstn"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if r := ask[*actorpb.TrunkReply](t, s, KindAccount, "acme", &actorpb.GetTrunk{Trunk: "pstn"}); code(r.Error) != actorpb.Code_CODE_NOT_FOUND || r.Error.Field != "trunk" {
		t.Fatalf("deleted trunk: %+v", r.Error)
	}
	if _, err := store.Get(context.Background(), trunkKey("acme", "pstn")); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("deleted trunk still stored: %v", err)
	}
}

func TestRoutes_RulesValidated(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	provision(t, s, "acme", "hq")
	route := func(method, user, feature string) []*actorpb.Route {
		return []*actorpb.Route{{Method: "*", User: "*", Feature: "ok"}, {Method: method, User: user, Feature: feature}}
	}
	tooMany := make([]*actorpb.Route, MaxRoutes+1)
	for i := range tooMany {
		tooMany[i] = &actorpb.Route{Method: "INVITE", User: "*", Feature: "vm"}
	}
	tests := []struct {
		name   string
		routes []*actorpb.Route
		field  string
	}{
		{"too many", tooMany, "routes"},
		{"lower-case method", route("invite", "*", "vm"), "routes[1].method"},
		{"empty method", route("", "*", "vm"), "routes[1].method"},
		{"method with a space", route("IN VITE", "*", "vm"), "routes[1].method"},
		{"wildcard inside a method", route("INV*", "*", "vm"), "routes[1].method"},
		{"empty user", route("INVITE", "", "vm"), "routes[1].user"},
		{"user with '@'", route("INVITE", "a@b", "vm"), "routes[1].user"},
		{"user with a bad escape", route("INVITE", "a%zz", "vm"), "routes[1].user"},
		{"user too long", route("INVITE", strings.Repeat("1", MaxRouteUser+1), "vm"), "routes[1].user"},
		{"bad feature", route("INVITE", "*97", "Voice Mail"), "routes[1].feature"},
		{"empty feature", route("INVITE", "*97", ""), "routes[1].feature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask[*actorpb.RoutesReply](t, s, KindAccount, "acme", &actorpb.PutRoutes{Routes: &actorpb.RouteSet{Routes: tt.routes}})
			if code(r.Error) != actorpb.Code_CODE_INVALID || r.Error.Field != tt.field {
				t.Fatalf("got %+v, want INVALID on %q", r.Error, tt.field)
			}
		})
	}
	if g := ask[*actorpb.RoutesReply](t, s, KindAccount, "acme", &actorpb.GetRoutes{}); g.Version != 0 || len(g.Routes.GetRoutes()) != 0 {
		t.Fatalf("bad route sets changed the routes: %+v", g)
	}
	good := []*actorpb.Route{
		{Method: "INVITE", User: "*97", Feature: "voicemail"},
		{Method: "MESSAGE", User: "9*", Feature: "sms-gw"},
		{Method: "*", User: "%2Bconf", Feature: "conference"},
	}
	r := ask[*actorpb.RoutesReply](t, s, KindAccount, "acme", &actorpb.PutRoutes{Routes: &actorpb.RouteSet{Routes: good}})
	if r.Error != nil || r.Version == 0 || len(r.Routes.Routes) != 3 || r.Routes.UpdatedAt == nil {
		t.Fatalf("good routes: %+v", r)
	}
	stale := r.Version - 1
	if c := ask[*actorpb.RoutesReply](t, s, KindAccount, "acme", &actorpb.PutRoutes{Routes: &actorpb.RouteSet{}, IfMatch: &stale}); code(c.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("stale If-Match: %+v", c.Error)
	}
	s2 := newSystem(t, s.cfg.Store, nil)
	if g := ask[*actorpb.RoutesReply](t, s2, KindAccount, "acme", &actorpb.GetRoutes{}); g.Version != r.Version || g.Routes.Routes[2].User != "%2Bconf" {
		t.Fatalf("reloaded routes: %+v", g)
	}
}

func TestAccount_DeleteRemovesTrunksAndRoutes(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	provision(t, s, "acme", "hq")
	ask[*actorpb.TrunkReply](t, s, KindAccount, "acme", &actorpb.PutTrunk{Trunk: &actorpb.Trunk{Id: "pstn", Sources: []string{"192.0.2.1"}}})
	ask[*actorpb.RoutesReply](t, s, KindAccount, "acme", &actorpb.PutRoutes{Routes: &actorpb.RouteSet{Routes: []*actorpb.Route{{Method: "*", User: "*", Feature: "vm"}}}})
	if r := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.DeleteAccount{}); r.Error != nil {
		t.Fatal(r.Error)
	}
	items, err := persistence.ScanAll(context.Background(), store, accountChildren("acme"))
	if err != nil || len(items) != 0 {
		t.Fatalf("after delete %d records remain under the account (%v)", len(items), err)
	}
	ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.PutAccount{})
	if l := ask[*actorpb.TrunkListReply](t, s, KindAccount, "acme", &actorpb.ListTrunks{}); len(l.Trunks) != 0 {
		t.Fatalf("re-created account has trunks: %+v", l)
	}
	if g := ask[*actorpb.RoutesReply](t, s, KindAccount, "acme", &actorpb.GetRoutes{}); len(g.Routes.GetRoutes()) != 0 {
		t.Fatalf("re-created account has routes: %+v", g)
	}
}

// The edge view is the one reply with HA1s; GetDevice and the debug state
// of the same account never carry them.
func TestEdgeView_CarriesHA1sPoolsTrunksAndRoutes(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	provision(t, s, "acme", "hq", "alice")
	for _, g := range []*actorpb.Group{{Id: "lab", Pool: "p2"}, {Id: "ops", Pool: "p2"}} {
		if r := ask[*actorpb.GroupReply](t, s, KindAccount, "acme", &actorpb.PutGroup{Group: g}); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
	ask[*actorpb.TrunkReply](t, s, KindAccount, "acme", &actorpb.PutTrunk{Trunk: &actorpb.Trunk{Id: "pstn", Sources: []string{"192.0.2.1"}}})
	ask[*actorpb.RoutesReply](t, s, KindAccount, "acme", &actorpb.PutRoutes{Routes: &actorpb.RouteSet{Routes: []*actorpb.Route{{Method: "INVITE", User: "*97", Feature: "vm"}}}})
	h := credential.Derive("alice", "acme.sip.test", "password-alice")

	v := ask[*actorpb.SecretEdgeView](t, s, KindAccount, "acme", &actorpb.GetSecretEdgeView{Device: "alice"})
	if v.Error != nil || v.Account.GetId() != "acme" {
		t.Fatalf("edge view: %+v", v)
	}
	if !bytes.Equal(v.Device.GetHa1Md5(), h.MD5) || !bytes.Equal(v.Device.GetHa1Sha256(), h.SHA256) {
		t.Fatal("the edge view lacks the device's HA1s")
	}
	if fmt.Sprint(v.Pools) != "[default p2]" {
		t.Fatalf("pools %v, want the distinct assigned pools sorted", v.Pools)
	}
	if len(v.Trunks) != 1 || v.Trunks[0].Id != "pstn" || len(v.Routes.GetRoutes()) != 1 {
		t.Fatalf("trunks %v routes %v", v.Trunks, v.Routes)
	}
	// Redacting the returned copy in place leaves the actor's record whole.
	v.Device.Ha1Md5 = nil
	if v2 := ask[*actorpb.SecretEdgeView](t, s, KindAccount, "acme", &actorpb.GetSecretEdgeView{Device: "alice"}); !bytes.Equal(v2.Device.GetHa1Md5(), h.MD5) {
		t.Fatal("the edge view shares the actor's device record")
	}
	if v := ask[*actorpb.SecretEdgeView](t, s, KindAccount, "acme", &actorpb.GetSecretEdgeView{Device: "nobody"}); v.Error != nil || v.Device != nil {
		t.Fatalf("unknown device: %+v", v)
	}
	if v := ask[*actorpb.SecretEdgeView](t, s, KindAccount, "nobody", &actorpb.GetSecretEdgeView{}); code(v.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("unknown account: %+v", v)
	}

	d := ask[*actorpb.DeviceReply](t, s, KindAccount, "acme", &actorpb.GetDevice{Device: "alice"})
	if len(d.Device.Ha1Md5) > 0 || len(d.Device.Ha1Sha256) > 0 {
		t.Fatal("GetDevice carried HA1s")
	}
	dbg := ask[*actorpb.DebugStateReply](t, s, KindAccount, "acme", &actorpb.DebugState{})
	for _, secret := range []string{"ha1", base64.StdEncoding.EncodeToString(h.MD5), base64.StdEncoding.EncodeToString(h.SHA256)} {
		if strings.Contains(strings.ToLower(dbg.Json), strings.ToLower(secret)) {
			t.Fatalf("debug state leaks %q: %s", secret, dbg.Json)
		}
	}
}

func TestFeatureServer_CRUDAndTargetRules(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	store := persistence.NewMemory()
	s := newSystem(t, store, func(c *Config) { c.Clock = clk })
	target := func(addr string, prio, weight uint32, tr string) *actorpb.FeatureTarget {
		return &actorpb.FeatureTarget{Address: addr, Priority: prio, Weight: weight, Transport: tr}
	}
	many := make([]*actorpb.FeatureTarget, MaxFeatureTargets+1)
	for i := range many {
		many[i] = target(fmt.Sprintf("192.0.2.%d:5060", i+1), 1, 1, "")
	}
	tests := []struct {
		name    string
		targets []*actorpb.FeatureTarget
		field   string
	}{
		{"no targets", nil, "targets"},
		{"too many", many, "targets"},
		{"host name", []*actorpb.FeatureTarget{target("vm.example:5060", 1, 1, "udp")}, "targets[0].address"},
		{"no port", []*actorpb.FeatureTarget{target("192.0.2.1", 1, 1, "udp")}, "targets[0].address"},
		{"port 0", []*actorpb.FeatureTarget{target("192.0.2.1:0", 1, 1, "udp")}, "targets[0].address"},
		{"priority above 65535", []*actorpb.FeatureTarget{target("192.0.2.1:5060", 65536, 1, "udp")}, "targets[0].priority"},
		{"weight above 65535", []*actorpb.FeatureTarget{target("192.0.2.1:5060", 1, 70000, "udp")}, "targets[0].weight"},
		{"sctp", []*actorpb.FeatureTarget{target("192.0.2.1:5060", 1, 1, "sctp")}, "targets[0].transport"},
		{"duplicate", []*actorpb.FeatureTarget{target("192.0.2.1:5060", 1, 1, ""), target("192.0.2.1:5060", 2, 1, "udp")}, "targets[1].address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, "voicemail", &actorpb.PutFeatureServer{Server: &actorpb.FeatureServer{Targets: tt.targets}})
			if code(r.Error) != actorpb.Code_CODE_INVALID || r.Error.Field != tt.field {
				t.Fatalf("got %+v, want INVALID on %q", r.Error, tt.field)
			}
		})
	}
	if r := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, "voicemail", &actorpb.GetFeatureServer{}); code(r.Error) != actorpb.Code_CODE_NOT_FOUND || r.Error.Field != "feature" {
		t.Fatalf("bad puts created the feature server: %+v", r)
	}
	same := []*actorpb.FeatureTarget{target("192.0.2.1:5060", 1, 1, "udp"), target("192.0.2.1:5060", 1, 1, "tcp"), target("[2001:db8::1]:5061", 2, 0, "tls")}
	r1 := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, "voicemail", &actorpb.PutFeatureServer{Server: &actorpb.FeatureServer{Targets: same[:1]}})
	if r1.Error != nil || !r1.Created || r1.Server.Id != "voicemail" || r1.Server.Targets[0].Transport != "udp" {
		t.Fatalf("create: %+v", r1)
	}
	clk.Advance(time.Second)
	v1 := r1.Version
	r2 := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, "voicemail", &actorpb.PutFeatureServer{Server: &actorpb.FeatureServer{Targets: same}, IfMatch: &v1})
	if r2.Error != nil || r2.Created || len(r2.Server.Targets) != 3 || !r2.Server.CreatedAt.AsTime().Equal(r1.Server.CreatedAt.AsTime()) || !r2.Server.UpdatedAt.AsTime().After(r2.Server.CreatedAt.AsTime()) {
		t.Fatalf("update: %+v", r2)
	}
	if r := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, "voicemail", &actorpb.PutFeatureServer{Server: &actorpb.FeatureServer{Targets: same[:1]}, IfMatch: &v1}); code(r.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("stale If-Match: %+v", r.Error)
	}
	s2 := newSystem(t, store, nil)
	if g := ask[*actorpb.FeatureServerReply](t, s2, KindFeatureServer, "voicemail", &actorpb.GetFeatureServer{}); g.Version != r2.Version || len(g.Server.Targets) != 3 {
		t.Fatalf("reloaded: %+v", g)
	}
	if r := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, "voicemail", &actorpb.DeleteFeatureServer{IfMatch: &v1}); code(r.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("delete with a stale version: %+v", r.Error)
	}
	if r := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, "voicemail", &actorpb.DeleteFeatureServer{}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if g := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, "voicemail", &actorpb.GetFeatureServer{}); code(g.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("after delete: %+v", g)
	}
	if _, err := store.Get(context.Background(), featureKey("voicemail")); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("deleted feature server still stored: %v", err)
	}
}
