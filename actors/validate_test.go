package actors

import (
	"slices"
	"testing"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// The routing checks take untrusted provisioning input: they never panic,
// what they accept they accept again unchanged once normalised, and what
// they refuse names a field.
func FuzzRoutingChecks(f *testing.F) {
	for _, s := range [][4]string{
		{"192.0.2.1", "INVITE", "*97", "192.0.2.10:5060"},
		{"2001:db8::/32", "*", "9*", "[2001:db8::1]:5061"},
		{"198.51.100.77/24", "MESSAGE", "%2Bconf", "127.0.0.1:0"},
		{"fe80::1%eth0", "invite", "a%zz", "[fe80::1%eth0]:5060"},
		{"::ffff:192.0.2.1", "INV*", "", "::1:5060"},
		{"0.0.0.0/0", "X-CUSTOM.1", "*", "255.255.255.255:65535"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, source, method, user, address string) {
		if out, e := NormalizeTrunkSources([]string{source}); e != nil {
			if e.Field != "sources[0]" {
				t.Fatalf("source %q refused on %q", source, e.Field)
			}
		} else if again, e := NormalizeTrunkSources(out); e != nil || !slices.Equal(again, out) {
			t.Fatalf("source %q normalised to %v, then to %v (%v)", source, out, again, e)
		}
		if e := CheckRoutes([]*actorpb.Route{{Method: method, User: user, Feature: "vm"}}); e != nil && e.Field != "routes[0].method" && e.Field != "routes[0].user" {
			t.Fatalf("route %q %q refused on %q", method, user, e.Field)
		}
		in := []*actorpb.FeatureTarget{{Address: address, Transport: "tcp"}}
		if out, e := NormalizeFeatureTargets(in); e != nil {
			if e.Field != "targets[0].address" {
				t.Fatalf("address %q refused on %q", address, e.Field)
			}
		} else if again, e := NormalizeFeatureTargets(out); e != nil || again[0].Address != out[0].Address {
			t.Fatalf("address %q normalised to %q, then %v (%v)", address, out[0].Address, again, e)
		}
	})
}
