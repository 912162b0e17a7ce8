package httpapi

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// TestProvisioning_Issue9_AccountAndFeatureIdsAreOneDNSLabel: issue 9,
// hole 5. Account bfs.beta would own bfs.beta.<zone>, account beta's
// forwarding name for feature bfs; gamma. would give gamma..<zone>. Ids
// with dots, trailing dots, empty labels or reserved labels are refused
// with a JSON error naming the field, and nothing changes.
func TestProvisioning_Issue9_AccountAndFeatureIdsAreOneDNSLabel(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	f.must(201, "PUT", "/v1/accounts/beta", `{}`)
	f.must(201, "PUT", "/v1/feature-servers/bfs", voicemail)
	f.must(200, "PUT", "/v1/accounts/beta/routes", `{"routes":[{"method":"*","user":"*","feature":"bfs"}]}`)
	snapshot := func() string {
		return f.must(200, "GET", "/v1/accounts/acme", "").body + f.must(200, "GET", "/v1/accounts/beta", "").body +
			f.must(200, "GET", "/v1/accounts/beta/routes", "").body + f.must(200, "GET", "/v1/feature-servers/bfs", "").body
	}
	before := snapshot()
	bad := []string{"bfs.beta", "gamma.", ".gamma", "a..b", "_sip", "_sips", "_udp", "_ip4-10-0-0-7", "a_b", "xn--p1ai", "acme-", "-acme"}
	var tests []badRequest
	for _, id := range bad {
		route := `{"routes":[{"method":"INVITE","user":"*","feature":"` + id + `"}]}`
		tests = append(tests,
			badRequest{"account " + id, "PUT", "/v1/accounts/" + id, `{}`, nil, 400, "account"},
			badRequest{"group of account " + id, "PUT", "/v1/accounts/" + id + "/groups/hq", `{}`, nil, 400, "account"},
			badRequest{"feature " + id, "PUT", "/v1/feature-servers/" + id, voicemail, nil, 400, "feature"},
			badRequest{"route to feature " + id, "PUT", "/v1/accounts/beta/routes", route, nil, 400, "routes[0].feature"},
		)
	}
	f.expectBad(t, tests)
	// The error says what is wrong and what the rule is.
	msg := f.do("PUT", "/v1/accounts/bfs.beta", `{}`).json(t)["error"].(string)
	for _, w := range []string{`"bfs.beta"`, "'.'", "one DNS label"} {
		if !strings.Contains(msg, w) {
			t.Fatalf("error %q does not say %s", msg, w)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("refused ids changed state:\nbefore %s\nafter  %s", before, after)
	}
	for _, id := range bad {
		if strings.HasPrefix(id, "_") || strings.HasPrefix(id, "-") || strings.HasPrefix(id, ".") {
			continue // not even a readable id
		}
		f.must(404, "GET", "/v1/accounts/"+id, "")
		f.must(404, "GET", "/v1/feature-servers/"+id, "")
	}
}

// TestProvisioning_Issue9_RecordsStoredBeforeTheRuleCanBeReadAndDeleted:
// an account or feature server written before the label rule is reported
// at start-up (actors.ReportInvalidIDs); the operator can read it and
// delete it, but not write it again.
func TestProvisioning_Issue9_RecordsStoredBeforeTheRuleCanBeReadAndDeleted(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	// The store keys of package actors (actors/keys.go).
	for key, rec := range map[string]proto.Message{
		"acct/bfs.beta": &actorpb.Account{Id: "bfs.beta", DnsName: "bfs.beta.sip.test"},
		"feat/sms.gw":   &actorpb.FeatureServer{Id: "sms.gw", Targets: []*actorpb.FeatureTarget{{Address: "192.0.2.1:5060", Transport: "udp"}}},
	} {
		b, err := proto.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Put(ctx, key, b, persistence.MustNotExist); err != nil {
			t.Fatal(err)
		}
	}
	f.must(200, "GET", "/v1/accounts/bfs.beta", "")
	f.must(200, "GET", "/v1/feature-servers/sms.gw", "")
	f.expectBad(t, []badRequest{
		{"update legacy account", "PUT", "/v1/accounts/bfs.beta", `{"display_name":"x"}`, nil, 400, "account"},
		{"group in legacy account", "PUT", "/v1/accounts/bfs.beta/groups/hq", `{}`, nil, 400, "account"},
		{"update legacy feature", "PUT", "/v1/feature-servers/sms.gw", voicemail, nil, 400, "feature"},
	})
	f.must(204, "DELETE", "/v1/accounts/bfs.beta", "")
	f.must(204, "DELETE", "/v1/feature-servers/sms.gw", "")
	f.must(404, "GET", "/v1/accounts/bfs.beta", "")
	f.must(404, "GET", "/v1/feature-servers/sms.gw", "")
}
