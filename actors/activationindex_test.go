package actors

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

func pageKeys(page []*Activation) []string {
	var out []string
	for _, a := range page {
		out = append(out, a.Kind+"/"+a.Identity)
	}
	return out
}

// The index pages in (kind, identity) order, by kind or across kinds,
// each activation once; removal and replacement keep its counts.
func TestActivationIndex_PagesInKeyOrder(t *testing.T) {
	x := NewActivationIndex()
	at := time.Unix(0, 0)
	var want []string
	for _, k := range []ActivationKey{{"call", "c2"}, {"account", "b"}, {"call", "c1"}, {"account", "a"}, {"devicegroup", "a/hq"}, {"account", "c"}} {
		x.Put(NewActivation(k.Kind, k.Identity, at))
		want = append(want, k.Kind+"/"+k.Identity)
	}
	slices.Sort(want)
	for _, limit := range []int{1, 2, 5, 6} {
		var got []string
		after := ActivationKey{}
		for {
			page, more := x.Page("", after, limit)
			got = append(got, pageKeys(page)...)
			if !more {
				break
			}
			if len(page) != limit {
				t.Fatalf("limit %d: a page with more has %d", limit, len(page))
			}
			after = page[len(page)-1].Key()
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: %v, want %v", limit, got, want)
		}
	}
	if page, more := x.Page("call", ActivationKey{}, 0); more || !slices.Equal(pageKeys(page), []string{"call/c1", "call/c2"}) {
		t.Fatalf("kind call: %v %v", pageKeys(page), more)
	}
	if page, _ := x.Page("call", ActivationKey{"account", "zzz"}, 0); len(page) != 2 {
		t.Fatalf("kind call after an account: %v", pageKeys(page))
	}
	if page, _ := x.Page("account", ActivationKey{"call", "c1"}, 0); len(page) != 0 {
		t.Fatalf("kind account after a call: %v", pageKeys(page))
	}
	if page, _ := x.Page("account", ActivationKey{"account", "a"}, 1); !slices.Equal(pageKeys(page), []string{"account/b"}) {
		t.Fatalf("after account/a: %v", pageKeys(page))
	}
	a, ok := x.Get(ActivationKey{"account", "b"})
	if !ok {
		t.Fatal("account/b not found")
	}
	x.Remove(NewActivation("account", "b", at)) // another activation of the key: kept
	if _, ok := x.Get(ActivationKey{"account", "b"}); !ok || x.Counts()["account"] != 3 {
		t.Fatalf("removing another activation of account/b dropped it: %v", x.Counts())
	}
	x.Remove(a)
	x.Put(NewActivation("call", "c1", at)) // replaces
	if _, ok := x.Get(ActivationKey{"account", "b"}); ok || x.Len() != 5 || x.Counts()["account"] != 2 || x.Counts()["call"] != 2 {
		t.Fatalf("after remove and replace: len %d counts %v", x.Len(), x.Counts())
	}
}

// The system's activations page from the lookup's index, and Find sees
// one without activating anything.
func TestSystem_ActivationPageAndFind(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	for i := range 5 {
		ask[*actorpb.AccountReply](t, s, KindAccount, fmt.Sprintf("a%d", i), &actorpb.GetAccount{})
	}
	page, more := s.ActivationPage(KindAccount, ActivationKey{KindAccount, "a1"}, 2)
	if !more || !slices.Equal(pageKeys(page), []string{"account/a2", "account/a3"}) {
		t.Fatalf("page after a1: %v more %v", pageKeys(page), more)
	}
	if _, ok := s.FindActivation(KindAccount, "a4"); !ok {
		t.Fatal("a4 not found")
	}
	if _, ok := s.FindActivation(KindAccount, "nobody"); ok {
		t.Fatal("found an account never asked")
	}
	if n := s.ActivationCounts()[KindAccount]; n != 5 || len(s.Activations("")) != 5 {
		t.Fatalf("counts %v, activations %d", s.ActivationCounts(), len(s.Activations("")))
	}
}

// seedDevices writes an account with n devices (d00000...) in group hq
// straight into the store, as a large account left them.
func seedDevices(tb testing.TB, st persistence.Store, account string, n int) {
	tb.Helper()
	ctx := context.Background()
	if _, err := putRecord(ctx, st, accountKey(account), &actorpb.Account{Id: account}, persistence.MustNotExist); err != nil {
		tb.Fatal(err)
	}
	if _, err := putRecord(ctx, st, groupKey(account, "hq"), &actorpb.Group{Id: "hq"}, persistence.MustNotExist); err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("d%05d", i)
		if _, err := putRecord(ctx, st, deviceKey(account, id), &actorpb.Device{Id: id, Group: "hq"}, persistence.MustNotExist); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkDevicePage measures one page (100) of an account's device list
// in the middle of it, at 1,000 and 10,000 devices: the time per page must
// not grow with the account.
//
//	go test -run '^$' -bench DevicePage ./actors/
func BenchmarkDevicePage(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			st := persistence.NewMemory()
			seedDevices(b, st, "big", n)
			s, err := New(Config{Store: st, Zone: "sip.test"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			msg := &actorpb.ListDevices{After: fmt.Sprintf("d%05d", n/2), Limit: 100}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rep, err := s.Request(context.Background(), KindAccount, "big", msg)
				if err != nil {
					b.Fatal(err)
				}
				if l := rep.(*actorpb.DeviceListReply); len(l.Devices) != 100 || l.Error != nil {
					b.Fatalf("page: %d devices, %v", len(l.Devices), l.Error)
				}
			}
		})
	}
}
