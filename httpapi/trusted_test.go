package httpapi

import (
	"context"
	"slices"
	"testing"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// TestProvisioning_TrustedSourcesRoundTrip: an account's
// sip_trusted_sources are stored canonical (host bits masked, a bare
// address its own prefix, sorted, each once), shown, handed to the SIP
// edge in the account's edge view, and cleared by a PUT without them.
func TestProvisioning_TrustedSourcesRoundTrip(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	a := f.must(200, "PUT", "/v1/accounts/acme", `{"sip_trusted_sources":["203.0.113.77/24","2001:db8:1::9","198.51.100.7","203.0.113.0/24"]}`).json(t)
	want := []string{"198.51.100.7/32", "203.0.113.0/24", "2001:db8:1::9/128"}
	if got := stringList(a["sip_trusted_sources"]); !slices.Equal(got, want) {
		t.Fatalf("sip_trusted_sources = %v, want %v", a["sip_trusted_sources"], want)
	}
	rep, err := f.sys.Request(context.Background(), actors.KindAccount, "acme", &actorpb.GetSecretEdgeView{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.(*actorpb.SecretEdgeView).GetAccount().GetSipTrustedSources(); !slices.Equal(got, want) {
		t.Fatalf("edge view's trusted sources = %v, want %v", got, want)
	}
	a = f.must(200, "PUT", "/v1/accounts/acme", `{}`).json(t)
	if _, ok := a["sip_trusted_sources"]; ok {
		t.Fatalf("account after PUT {} = %v, want no trusted sources", a)
	}
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, s := range l {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}
