package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/internal/syncbuf"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// Issue 9, hole 5: ids with dots made DNS names collide across tenants
// (account "bfs.beta" owned "bfs.beta.<zone>", account beta's forwarding
// name for feature bfs). Account and feature ids are one DNS label.
func TestCheckLabelID_Issue9_AccountAndFeatureIdsAreOneDNSLabel(t *testing.T) {
	tests := []struct {
		id   string
		want error // nil: valid
	}{
		{"acme", nil},
		{"a", nil},
		{"0", nil},
		{"acme-eu-2", nil},
		{"a-b", nil},
		{"x-n--", ErrIDNotLabel}, // ends with '-'
		{strings.Repeat("a", 63), nil},
		{strings.Repeat("a", 64), ErrIDNotLabel},
		{"", ErrIDNotLabel},
		{"bfs.beta", ErrIDNotLabel}, // the issue's collision
		{"gamma.", ErrIDNotLabel},   // trailing dot: gamma..<zone>
		{".gamma", ErrIDNotLabel},
		{"a..b", ErrIDNotLabel}, // empty label
		{".", ErrIDNotLabel},
		{"_sip", ErrIDReserved}, // the zone's service labels
		{"_udp", ErrIDReserved},
		{"_tcp", ErrIDReserved},
		{"_sips", ErrIDReserved},
		{"_ip4-10-0-0-7", ErrIDReserved}, // the zone's SRV target hosts
		{"a_b", ErrIDNotLabel},
		{"xn--80ak6aa92e", ErrIDReserved}, // IDNA, RFC 5891 4.2.3.1
		{"ab--c", ErrIDReserved},
		{"a--b", nil}, // '--' elsewhere is an ordinary label
		{"-acme", ErrIDNotLabel},
		{"acme-", ErrIDNotLabel},
		{"Acme", ErrIDNotLabel},
		{"acm\u00e9", ErrIDNotLabel},
		{"a b", ErrIDNotLabel},
		{"a/b", ErrIDNotLabel},
		{"a*", ErrIDNotLabel},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.id), func(t *testing.T) {
			err := CheckLabelID(tt.id)
			if tt.want == nil {
				if err != nil || !ValidAccountID(tt.id) || LabelIDError("f", "feature", tt.id) != nil {
					t.Fatalf("refused a valid id: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || ValidAccountID(tt.id) {
				t.Fatalf("CheckLabelID = %v, want %v", err, tt.want)
			}
			e := LabelIDError("account", "account", tt.id)
			if e == nil || e.Field != "account" || e.Code != actorpb.Code_CODE_INVALID || !strings.Contains(e.Message, err.Error()) {
				t.Fatalf("LabelIDError = %v", e)
			}
		})
	}
}

// candidateIDs returns every string of 1 to 4 characters over an alphabet
// that holds a DNS label's characters and the ones that break it ('.',
// '_'), and n seeded random ones of up to 63 characters, without repeats.
func candidateIDs(seed uint64, n int) []string {
	const alphabet = "ab0-._"
	out := []string{""}
	level := []string{""}
	for range 4 {
		var next []string
		for _, p := range level {
			for _, c := range alphabet {
				next = append(next, p+string(c))
			}
		}
		out = append(out, next...)
		level = next
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	for range n {
		b := make([]byte, 1+rng.IntN(63))
		for i := range b {
			b[i] = "abcxyz0189-"[rng.IntN(11)]
		}
		if rng.IntN(4) == 0 { // a quarter of them break the rule
			b[rng.IntN(len(b))] = "._"[rng.IntN(2)]
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Issue 9, hole 5: for all valid ids, no account's DNS name equals another
// account's name or any forwarding name <feature>.<account>.<zone>, and no
// name lies below a name of another account (or of another feature):
// every name's ancestors under the zone are its own account's name only.
// On today's rule (dots allowed) "a.b" is valid and its name is account
// b's forwarding name for feature a.
func TestDNSNames_Issue9_NoNameOfOneAccountEqualsOrContainsAnothers(t *testing.T) {
	const zone = "sip.switchboard.test"
	const seed = 9
	var valid []string
	for _, id := range candidateIDs(seed, 400) {
		if ValidAccountID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) < 200 {
		t.Fatalf("seed %d: the generator is too narrow: %d valid ids", seed, len(valid))
	}
	type owner struct{ account, feature string }
	names := make(map[string]owner, len(valid)*(len(valid)+1))
	add := func(name string, o owner) {
		if prev, dup := names[name]; dup {
			t.Fatalf("seed %d: %q is the name of both %+v and %+v", seed, name, prev, o)
		}
		names[name] = o
	}
	for _, a := range valid {
		add(AccountDNSName(a, zone), owner{account: a})
		for _, f := range valid {
			add(ForwardingDNSName(f, a, zone), owner{account: a, feature: f})
		}
	}
	for name, o := range names {
		rest, ok := strings.CutSuffix(name, "."+zone)
		if !ok || len(name) > 253 {
			t.Fatalf("seed %d: %q (%+v) is not a DNS name under %s", seed, name, o, zone)
		}
		labels := strings.Split(rest, ".")
		for _, l := range labels {
			if l == "" || len(l) > 63 {
				t.Fatalf("seed %d: %q (%+v) has an empty or long label", seed, name, o)
			}
		}
		// Each proper ancestor below the zone must be o's own account name.
		for i := 1; i < len(labels); i++ {
			anc := strings.Join(labels[i:], ".") + "." + zone
			if p, ok := names[anc]; ok && p != (owner{account: o.account}) {
				t.Fatalf("seed %d: %q (%+v) lies below %q, the name of %+v", seed, name, o, anc, p)
			}
		}
	}
}

// Defence in depth: the actors refuse what the HTTP layer refuses, and
// store nothing.
func TestActors_Issue9_RefuseAccountAndFeatureIdsThatAreNotOneLabel(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	targets := []*actorpb.FeatureTarget{{Address: "192.0.2.10:5060"}}
	for _, id := range []string{"bfs.beta", "gamma.", "a..b", "_sip", "a_b", "xn--p1ai", "acme-"} {
		t.Run(id, func(t *testing.T) {
			a := ask[*actorpb.AccountReply](t, s, KindAccount, id, &actorpb.PutAccount{})
			if code(a.Error) != actorpb.Code_CODE_INVALID || a.Error.Field != "account" {
				t.Fatalf("PutAccount %q: %v", id, a.Error)
			}
			f := ask[*actorpb.FeatureServerReply](t, s, KindFeatureServer, id, &actorpb.PutFeatureServer{Server: &actorpb.FeatureServer{Targets: targets}})
			if code(f.Error) != actorpb.Code_CODE_INVALID || f.Error.Field != "feature" {
				t.Fatalf("PutFeatureServer %q: %v", id, f.Error)
			}
			if e := CheckRoutes([]*actorpb.Route{{Method: "*", User: "*", Feature: id}}); e == nil || e.Field != "routes[0].feature" {
				t.Fatalf("CheckRoutes with feature %q: %v", id, e)
			}
			for _, k := range []string{accountKey(id), featureKey(id)} {
				if _, err := store.Get(context.Background(), k); !errors.Is(err, persistence.ErrNotFound) {
					t.Fatalf("%s was stored: %v", k, err)
				}
			}
		})
	}
}

// countingStore counts the items Scan returns.
type countingStore struct {
	persistence.Store
	mu    sync.Mutex
	items int
}

func (c *countingStore) Scan(ctx context.Context, prefix, after string, limit int) ([]persistence.Item, error) {
	page, err := c.Store.Scan(ctx, prefix, after, limit)
	c.mu.Lock()
	c.items += len(page)
	c.mu.Unlock()
	return page, err
}

// Issue 9, hole 5: data stored before the rule is reported at start-up.
// Keys that sort between an account and its children ("acme-eu",
// "acme.eu" before "acme/...") are not skipped, and an account's devices
// are not read one by one.
func TestFindInvalidIDs_Issue9_ReportsRecordsStoredBeforeTheRule(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: persistence.NewMemory()}
	put := func(key string) {
		if _, err := store.Put(ctx, key, []byte("x"), persistence.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"acme", "acme-eu", "acme.eu", "bfs.beta", "beta", "gamma.", "a_b", "zz"} {
		put(accountKey(a))
		put(groupKey(a, "hq"))
		put(routesKey(a))
	}
	for i := range 500 {
		put(deviceKey("acme", fmt.Sprintf("d%03d", i)))
	}
	for _, f := range []string{"bfs", "sms.gw", "vm", "_sip"} {
		put(featureKey(f))
	}
	bad, err := FindInvalidIDs(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bad {
		if b.Err == nil {
			t.Fatalf("%+v has no reason", b)
		}
		got = append(got, b.Kind+" "+b.ID)
	}
	want := "account a_b, account acme.eu, account bfs.beta, account gamma., featureserver _sip, featureserver sms.gw"
	if strings.Join(got, ", ") != want {
		t.Fatalf("found %v, want %s", got, want)
	}
	if store.items > 8*scanPage+4 {
		t.Fatalf("read %d items to check 8 accounts and 4 features: the scan reads children it should skip", store.items)
	}

	// The node's start-up call logs each one with what to do.
	var buf syncBuffer
	s := newSystem(t, store, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	if n := s.ReportInvalidIDs(ctx); n != 6 {
		t.Fatalf("ReportInvalidIDs = %d, want 6", n)
	}
	log := buf.String()
	for _, w := range []string{"id=bfs.beta", "DELETE /v1/accounts/bfs.beta", "id=sms.gw", "DELETE /v1/feature-servers/sms.gw", "level=WARN"} {
		if !strings.Contains(log, w) {
			t.Fatalf("log lacks %q:\n%s", w, log)
		}
	}
}

// syncBuffer is written by goroutines while the test reads it.
type syncBuffer = syncbuf.Buffer
