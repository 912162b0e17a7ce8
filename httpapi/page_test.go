package httpapi

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// pageOf is one page of a list: its item keys and its next cursor.
type pageOf struct {
	keys []string
	next string
	body map[string]any
}

// readPages reads a list from path page by page (limit a page), passing
// each page's next as after, until a page has no next; it checks that
// every page but the last is full, and returns every key read in order.
func readPages(t *testing.T, f *fixture, path string, limit int, read func(map[string]any) []string) []string {
	t.Helper()
	var all []string
	after := ""
	for range 1000 {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		l := f.must(200, "GET", fmt.Sprintf("%s%slimit=%d&after=%s", path, sep, limit, url.QueryEscape(after)), "").json(t)
		keys := read(l)
		if len(keys) > limit {
			t.Fatalf("a page of limit %d has %d items", limit, len(keys))
		}
		all = append(all, keys...)
		next, ok := l["next"].(string)
		if !ok {
			return all
		}
		if len(keys) != limit || next != keys[len(keys)-1] {
			t.Fatalf("a page with next %q has %d items %v, want %d ending at next", next, len(keys), keys, limit)
		}
		after = next
	}
	t.Fatalf("%s: no last page after 1000 pages", path)
	return nil
}

// everyOnceInOrder fails unless got is want (which is sorted): each item
// exactly once, in order.
func everyOnceInOrder(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("paged listing:\n got %v\nwant %v", got, want)
	}
}

func activationKeys(l map[string]any) []string {
	var keys []string
	for _, a := range l["activations"].([]any) {
		m := a.(map[string]any)
		keys = append(keys, m["kind"].(string)+"/"+m["id"].(string))
	}
	return keys
}

// /debug/actors pages: each activation exactly once across pages, in
// (kind, id) order, every page full but the last, which has no next;
// the counts tell all of them on every page.
func TestDebugActors_PagesEveryActivationOnce(t *testing.T) {
	f := newFixture(t, "")
	var want []string
	for i := range 23 {
		id := fmt.Sprintf("acct%02d", i)
		actor[*actorpb.AccountReply](f, actors.KindAccount, id, &actorpb.GetAccount{})
		want = append(want, "account/"+id)
	}
	for _, id := range []string{"voicemail", "ivr"} {
		actor[*actorpb.FeatureServerReply](f, actors.KindFeatureServer, id, &actorpb.GetFeatureServer{})
	}
	want = append(want, "featureserver/ivr", "featureserver/voicemail")
	slices.Sort(want)
	for _, limit := range []int{1, 4, 25, 26} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			everyOnceInOrder(t, readPages(t, f, "/debug/actors", limit, activationKeys), want)
		})
	}
	t.Run("one kind", func(t *testing.T) {
		everyOnceInOrder(t, readPages(t, f, "/debug/actors?kind=account", 5, activationKeys), want[:23])
		everyOnceInOrder(t, readPages(t, f, "/debug/actors?kind=featureserver", 1, activationKeys), want[23:])
	})
	l := f.must(200, "GET", "/debug/actors?limit=2", "").json(t)
	counts := l["counts"].(map[string]any)["n1"].(map[string]any)
	if counts["account"] != 23.0 || counts["featureserver"] != 2.0 || len(l["activations"].([]any)) != 2 {
		t.Fatalf("a page of 2 must count all 25 activations: %v", l)
	}
}

// Bad paging parameters get 400 naming the field, on every list page.
func TestPaging_BadLimitOrAfterNamesTheField(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	f.expectBad(t, []badRequest{
		{name: "actors: limit 0", method: "GET", path: "/debug/actors?limit=0", code: 400, field: "limit"},
		{name: "actors: limit too large", method: "GET", path: "/debug/actors?limit=10001", code: 400, field: "limit"},
		{name: "actors: limit not a number", method: "GET", path: "/debug/actors?limit=ten", code: 400, field: "limit"},
		{name: "actors: cluster limit", method: "GET", path: "/debug/actors?scope=cluster&limit=-1", code: 400, field: "limit"},
		{name: "actors: after without a kind", method: "GET", path: "/debug/actors?after=acme", code: 400, field: "after"},
		{name: "actors: after of an unknown kind", method: "GET", path: "/debug/actors?after=nosuch/acme", code: 400, field: "after"},
		{name: "actors: after with a bad id", method: "GET", path: "/debug/actors?after=account/Bad%20Id", code: 400, field: "after"},
		{name: "actors: after for edge actors", method: "GET", path: "/debug/actors?kind=edge&after=account/acme", code: 400, field: "after"},
		{name: "devices: limit 0", method: "GET", path: "/v1/accounts/acme/devices?limit=0", code: 400, field: "limit"},
		{name: "devices: limit too large", method: "GET", path: "/v1/accounts/acme/devices?limit=1001", code: 400, field: "limit"},
		{name: "devices: bad after", method: "GET", path: "/v1/accounts/acme/devices?after=a%2Fb", code: 400, field: "after"},
		{name: "bindings: limit 0", method: "GET", path: "/v1/accounts/acme/groups/hq/bindings?limit=0", code: 400, field: "limit"},
		{name: "bindings: limit too large", method: "GET", path: "/v1/accounts/acme/groups/hq/bindings?limit=10001", code: 400, field: "limit"},
		{name: "bindings: after without a contact", method: "GET", path: "/v1/accounts/acme/groups/hq/bindings?after=alice", code: 400, field: "after"},
		{name: "bindings: after with a bad device", method: "GET", path: "/v1/accounts/acme/groups/hq/bindings?after=A%20B/sip:x", code: 400, field: "after"},
	})
}

// A client that accepts gzip gets a gzip reply that decodes to the page;
// one that does not gets plain JSON, compact once it is large.
func TestDebugActors_GzipWhenAccepted(t *testing.T) {
	f := newFixture(t, "")
	for i := range 400 {
		actor[*actorpb.AccountReply](f, actors.KindAccount, fmt.Sprintf("acct%03d", i), &actorpb.GetAccount{})
	}
	r := f.do("GET", "/debug/actors?kind=account", "", "Accept-Encoding", "gzip")
	if r.code != 200 || r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("with Accept-Encoding: gzip: %d, Content-Encoding %q", r.code, r.header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var l map[string]any
	if err := json.Unmarshal(plain, &l); err != nil {
		t.Fatalf("gunzipped reply is not JSON: %v", err)
	}
	if n := len(l["activations"].([]any)); n != 400 || len(r.body) >= len(plain) {
		t.Fatalf("gzip reply: %d activations, %d bytes for %d plain", n, len(r.body), len(plain))
	}
	r = f.do("GET", "/debug/actors?kind=account", "", "Accept-Encoding", "identity")
	if r.header.Get("Content-Encoding") != "" || !json.Valid([]byte(r.body)) {
		t.Fatalf("without gzip: Content-Encoding %q", r.header.Get("Content-Encoding"))
	}
	if len(r.body) < indentBelow || strings.Contains(r.body, "\n  ") {
		t.Fatalf("a %d-byte page must go out compact", len(r.body))
	}
}

// Describing one actor finds its activation (activated_at) without
// listing them all.
func TestDebugActors_DescribeShowsTheActivation(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	d := f.must(200, "GET", "/debug/actors/account/acme", "").json(t)
	a, ok := d["activation"].(map[string]any)
	if !ok || a["kind"] != "account" || a["id"] != "acme" || d["was_active"] != true {
		t.Fatalf("describe: %v", d)
	}
}

// The device list pages every device once, with a group filter too.
func TestDevices_PagesEveryDeviceOnce(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	f.must(201, "PUT", "/v1/accounts/acme/groups/sales", `{}`)
	all, sales := []string{"alice"}, []string{}
	for i := range 30 {
		id, g := fmt.Sprintf("d%02d", i), "hq"
		if i%3 == 0 {
			g = "sales"
			sales = append(sales, id)
		}
		f.must(201, "PUT", "/v1/accounts/acme/devices/"+id, `{"group":"`+g+`","password":"password-`+id+`"}`)
		all = append(all, id)
	}
	slices.Sort(all)
	ids := func(l map[string]any) []string {
		var out []string
		for _, d := range l["devices"].([]any) {
			out = append(out, d.(map[string]any)["id"].(string))
		}
		return out
	}
	everyOnceInOrder(t, readPages(t, f, "/v1/accounts/acme/devices", 7, ids), all)
	everyOnceInOrder(t, readPages(t, f, "/v1/accounts/acme/devices?group=sales", 3, ids), sales)
}

// The account's groups and trunks page like its devices.
func TestGroupsAndTrunks_PageEveryOneOnce(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	groups, trunks := []string{"hq"}, []string{}
	for i := range 12 {
		g, tr := fmt.Sprintf("g%02d", i), fmt.Sprintf("t%02d", i)
		f.must(201, "PUT", "/v1/accounts/acme/groups/"+g, `{}`)
		f.must(201, "PUT", "/v1/accounts/acme/trunks/"+tr, `{"sources":["192.0.2.1"],"group":"hq"}`)
		groups, trunks = append(groups, g), append(trunks, tr)
	}
	slices.Sort(groups)
	ids := func(list string) func(map[string]any) []string {
		return func(l map[string]any) []string {
			var out []string
			for _, d := range l[list].([]any) {
				out = append(out, d.(map[string]any)["id"].(string))
			}
			return out
		}
	}
	everyOnceInOrder(t, readPages(t, f, "/v1/accounts/acme/groups", 5, ids("groups")), groups)
	everyOnceInOrder(t, readPages(t, f, "/v1/accounts/acme/trunks", 4, ids("trunks")), trunks)
	f.expectBad(t, []badRequest{
		{name: "groups: limit 0", method: "GET", path: "/v1/accounts/acme/groups?limit=0", code: 400, field: "limit"},
		{name: "trunks: bad after", method: "GET", path: "/v1/accounts/acme/trunks?after=a%2Fb", code: 400, field: "after"},
	})
}

// The account's debug view shows its first hundred devices by id, with
// the count of all.
func TestDebugActors_AccountDebugIsBounded(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	for i := range 120 {
		id := fmt.Sprintf("d%03d", i)
		f.must(201, "PUT", "/v1/accounts/acme/devices/"+id, `{"group":"hq","password":"password-`+id+`"}`)
	}
	st := f.must(200, "GET", "/debug/actors/account/acme", "").json(t)["state"].(map[string]any)
	devs := st["devices"].([]any)
	first, last := devs[0].(map[string]any)["id"], devs[len(devs)-1].(map[string]any)["id"]
	if len(devs) != 100 || st["device_count"] != 121.0 || st["group_count"] != 1.0 || first != "alice" || last != "d098" {
		t.Fatalf("account debug: %d devices (%v to %v), device_count %v, group_count %v", len(devs), first, last, st["device_count"], st["group_count"])
	}
}

// registerContacts provisions dev in group hq and registers n contacts
// for it (120 s); it returns their keys, <device>/<contact>.
func registerContacts(t *testing.T, f *fixture, dev string, n int) []string {
	t.Helper()
	f.must(201, "PUT", "/v1/accounts/acme/devices/"+dev, `{"group":"hq","password":"password-`+dev+`"}`)
	reg := &actorpb.Register{Device: dev, CallId: "c" + dev, Cseq: 1, Source: "udp:192.0.2.7:5060"}
	var keys []string
	for j := range n {
		uri := fmt.Sprintf("sip:%s@192.0.2.%d", dev, j)
		reg.Contacts = append(reg.Contacts, &actorpb.ContactUpdate{Uri: uri, Expires: 120, QMilli: 1000})
		keys = append(keys, dev+"/"+uri)
	}
	if r := actor[*actorpb.RegisterReply](f, actors.KindDeviceGroup, "acme/hq", reg); r.Error != nil {
		t.Fatal(r.Error)
	}
	return keys
}

// A group's bindings page in (device, contact) order, each once; expired
// ones are left out.
func TestBindings_PagesEveryBindingOnce(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	f := newFixtureOn(t, "", clk)
	f.seed()
	var want []string
	for i := range 6 {
		dev := fmt.Sprintf("p%d", i)
		want = append(want, registerContacts(t, f, dev, 3)...)
	}
	slices.Sort(want)
	keys := func(l map[string]any) []string {
		var out []string
		for _, b := range l["bindings"].([]any) {
			m := b.(map[string]any)
			out = append(out, m["device"].(string)+"/"+m["contact"].(string))
		}
		return out
	}
	for _, limit := range []int{1, 4, 18} {
		everyOnceInOrder(t, readPages(t, f, "/v1/accounts/acme/groups/hq/bindings", limit, keys), want)
	}
	clk.Advance(121 * time.Second)
	if got := readPages(t, f, "/v1/accounts/acme/groups/hq/bindings", 5, keys); len(got) != 0 {
		t.Fatalf("expired bindings listed: %v", got)
	}
}

// The group's debug view is bounded: the first hundred bindings, with the
// count of all.
func TestDebugActors_GroupDebugIsBounded(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	for i := range 40 {
		registerContacts(t, f, fmt.Sprintf("p%02d", i), 3)
	}
	d := f.must(200, "GET", "/debug/actors/devicegroup/acme/hq", "").json(t)
	st := d["state"].(map[string]any)
	bs := st["state"].(map[string]any)["bindings"].([]any)
	if len(bs) != 100 || st["binding_count"] != 120.0 || st["member_count"] != 41.0 {
		t.Fatalf("group debug: %d bindings shown, binding_count %v, member_count %v", len(bs), st["binding_count"], st["member_count"])
	}
}

// fakeCluster answers ActivationQuery as each member's activator would:
// its own activations in key order, at most the limit after the cursor.
type fakeCluster struct {
	members map[string][]ActivationView // by node, sorted by key
}

func (c fakeCluster) Members() []MemberView { return nil }

func (c fakeCluster) Placement(context.Context, string, string) (PlacementView, bool, error) {
	return PlacementView{}, false, nil
}

func (c fakeCluster) Activations(_ context.Context, q ActivationQuery) ([]MemberActivations, error) {
	var out []MemberActivations
	for node, acts := range c.members {
		ma := MemberActivations{Node: node, NodeID: "id-" + node, Counts: map[string]int{}}
		for _, a := range acts {
			k := actors.ActivationKey{Kind: a.Kind, Identity: a.ID}
			if q.Kind != "" && a.Kind != q.Kind {
				continue
			}
			ma.Counts[a.Kind]++
			if k.Compare(q.After) <= 0 {
				continue
			}
			if len(ma.Activations) == q.Limit {
				ma.More = true
				continue
			}
			ma.Activations = append(ma.Activations, a)
		}
		out = append(out, ma)
	}
	return out, nil
}

// scope=cluster pages over every member's activations: each once, in key
// order, across pages whose members interleave.
func TestDebugActors_ClusterScopePagesEveryActivationOnce(t *testing.T) {
	c := fakeCluster{members: map[string][]ActivationView{}}
	var want []string
	for i := range 40 {
		node := fmt.Sprintf("n%d", i%3)
		kind := actors.KindAccount
		if i%5 == 0 {
			kind = actors.KindCall
		}
		id := fmt.Sprintf("x%02d", i)
		c.members[node] = append(c.members[node], ActivationView{Kind: kind, ID: id, Node: node, NodeID: "id-" + node})
		want = append(want, kind+"/"+id)
	}
	for _, acts := range c.members {
		slices.SortFunc(acts, func(a, b ActivationView) int {
			return actors.ActivationKey{Kind: a.Kind, Identity: a.ID}.Compare(actors.ActivationKey{Kind: b.Kind, Identity: b.ID})
		})
	}
	slices.Sort(want)
	sys, err := actors.New(actors.Config{Store: persistence.NewMemory(), Zone: "sip.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Close() })
	h, err := New(Config{Actors: sys, Zone: "sip.test", Node: "n0", Cluster: c})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f := &fixture{t: t, srv: srv}
	for _, limit := range []int{1, 6, 40, 41} {
		everyOnceInOrder(t, readPages(t, f, "/debug/actors?scope=cluster", limit, activationKeys), want)
	}
	everyOnceInOrder(t, readPages(t, f, "/debug/actors?scope=cluster&kind=call", 3, activationKeys), want[32:])
	l := f.must(200, "GET", "/debug/actors?scope=cluster&limit=1", "").json(t)
	var total float64
	for _, byKind := range l["counts"].(map[string]any) {
		for _, n := range byKind.(map[string]any) {
			total += n.(float64)
		}
	}
	if total != 40 {
		t.Fatalf("cluster counts must tell all 40 activations: %v", l["counts"])
	}
}
