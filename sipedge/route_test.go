package sipedge_test

import (
	"testing"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

func TestMatchRoute_FirstMatchingRuleWins(t *testing.T) {
	r := func(method, user, feature string) *actorpb.Route {
		return &actorpb.Route{Method: method, User: user, Feature: feature}
	}
	routes := []*actorpb.Route{
		r("INVITE", "*97", "voicemail"),
		r("INVITE", "9*", "pstn"),
		r("MESSAGE", "*", "sms"),
		r("*", "*98", "ivr"),
		r("INVITE", "99*", "never"), // shadowed by "9*" above: first match wins
	}
	for _, tc := range []struct {
		name         string
		routes       []*actorpb.Route
		method, user string
		want         string
	}{
		{"exact user", routes, "INVITE", "*97", "voicemail"},
		{"exact user does not match a longer user", routes, "INVITE", "*970", ""},
		{"exact user does not match a prefix of it", routes, "INVITE", "*9", ""},
		{"prefix", routes, "INVITE", "912125551234", "pstn"},
		{"prefix alone matches", routes, "INVITE", "9", "pstn"},
		{"prefix does not match another start", routes, "INVITE", "8912", ""},
		{"first match wins", routes, "INVITE", "991", "pstn"},
		{"* is any user", routes, "MESSAGE", "alice", "sms"},
		{"* is also the empty user", routes, "MESSAGE", "", "sms"},
		{"method * matches any method", routes, "SUBSCRIBE", "*98", "ivr"},
		{"method * matches INVITE too", routes, "INVITE", "*98", "ivr"},
		{"method is case-insensitive", routes, "invite", "*97", "voicemail"},
		{"rule method is case-insensitive", []*actorpb.Route{r("Invite", "*", "x")}, "INVITE", "bob", "x"},
		{"user is case-sensitive", []*actorpb.Route{r("*", "Alice", "x")}, "INVITE", "alice", ""},
		{"other method does not match", routes, "OPTIONS", "*97", ""},
		{"no routes", nil, "INVITE", "*97", ""},
		{"empty rule user matches only the empty user", []*actorpb.Route{r("*", "", "x")}, "OPTIONS", "", "x"},
		{"empty rule user does not match a user", []*actorpb.Route{r("*", "", "x")}, "OPTIONS", "bob", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sipedge.MatchRoute(tc.routes, tc.method, tc.user); got != tc.want {
				t.Fatalf("MatchRoute(%s, %q) = %q, want %q", tc.method, tc.user, got, tc.want)
			}
		})
	}
}
