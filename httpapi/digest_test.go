package httpapi

import (
	"context"
	"testing"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/sipauth"
)

// TestProvisioning_DigestSettingsRoundTrip: digest_algorithm (account
// and device) and strict_min_expires are stored in canonical form and
// shown; a device's SHA-256 answer, recorded by the SIP edge, survives a
// PUT without digest_algorithm and the passivation of the account actor,
// and only "MD5" clears it.
func TestProvisioning_DigestSettingsRoundTrip(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	a := f.must(200, "PUT", "/v1/accounts/acme", `{"digest_algorithm":"sha-256","strict_min_expires":true}`).json(t)
	if a["digest_algorithm"] != "SHA-256" || a["strict_min_expires"] != true {
		t.Fatalf("account = %v, want digest_algorithm SHA-256 and strict_min_expires", a)
	}
	d := f.must(200, "PUT", "/v1/accounts/acme/devices/alice", `{"group":"hq","digest_algorithm":"md5"}`).json(t)
	if d["digest_algorithm"] != "MD5" {
		t.Fatalf("device = %v, want digest_algorithm MD5", d)
	}

	answered := func() bool {
		t.Helper()
		return f.must(200, "GET", "/v1/accounts/acme/devices/alice", "").json(t)["sha256_answered"] == true
	}
	rep, err := f.sys.Request(context.Background(), actors.KindAccount, "acme", &actorpb.DigestAnswered{Device: "alice", Algorithm: sipauth.SHA256})
	if err != nil || rep.(*actorpb.DeviceReply).Error != nil {
		t.Fatalf("DigestAnswered: %v %v", rep, err)
	}
	if !answered() {
		t.Fatal("sha256_answered not shown after DigestAnswered")
	}
	f.must(200, "PUT", "/v1/accounts/acme/devices/alice", `{"group":"hq","display_name":"Alice"}`)
	if err := f.sys.PassivateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !answered() {
		t.Fatal("sha256_answered lost by a PUT without digest_algorithm or by passivation")
	}
	f.must(200, "PUT", "/v1/accounts/acme/devices/alice", `{"group":"hq","digest_algorithm":"MD5"}`)
	if answered() {
		t.Fatal(`sha256_answered kept after digest_algorithm "MD5"`)
	}
	// A PUT without the settings restores the defaults.
	a = f.must(200, "PUT", "/v1/accounts/acme", `{}`).json(t)
	if _, ok := a["digest_algorithm"]; ok || a["strict_min_expires"] != false {
		t.Fatalf("account after PUT {} = %v, want the defaults", a)
	}
}
