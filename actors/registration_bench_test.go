package actors

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// BenchmarkRegister_Growth measures a REGISTER refresh (one contact, a
// higher CSeq, stored before the reply) on badger in a temporary folder,
// as the group and the account grow: one group of 5, 2,000 and 50,000
// devices, and accounts of 1,000, 10,000 and 50,000 devices in groups of
// 5. Every device has a binding. Compare ns/op, B/op, allocs/op and
// stored-B/op (keys and values a REGISTER writes to the store) across the
// sizes: a REGISTER costs its device's bindings, so they stay flat.
// ns/op is mostly badger's fsync, which varies on a shared machine;
// stored-B/op and B/op do not.
// The store is seeded directly (parallel puts, which badger batches into
// few commits), not through the actors, so that 50,000 devices take
// seconds; the groups the loop reaches are activated before it.
//
//	go test -run '^$' -bench Register_Growth -benchtime 2000x ./actors/
func BenchmarkRegister_Growth(b *testing.B) {
	for _, c := range []struct {
		name              string
		devices, perGroup int
	}{
		{"group=5", 5, 5},
		{"group=2000", 2000, 2000},
		{"group=50000", 50_000, 50_000},
		{"account=1000/group=5", 1000, 5},
		{"account=10000/group=5", 10_000, 5},
		{"account=50000/group=5", 50_000, 5},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			st, err := persistence.OpenBadger(b.TempDir(), persistence.DefaultBadgerConfig())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			counted := &writeCounter{Store: st}
			s := benchSystem(b, counted)
			devices := seedRegistrations(b, st, "acme", c.devices, c.perGroup)
			ctx := context.Background()
			// The account reads the seeded groups and devices afresh.
			if err := s.PassivateAll(ctx); err != nil {
				b.Fatal(err)
			}
			// The loop refreshes up to 2,000 devices in turn (in as many
			// groups as they fill), all of them active first.
			targets := devices[:min(len(devices), 2000)]
			for i, d := range targets {
				if i == 0 || d.group != targets[i-1].group {
					lookupOne(b, s, d)
				}
			}
			i := 0
			_, _, written := counted.during(func() {
				for b.Loop() {
					refresh(b, s, targets[i%len(targets)], uint32(2+i/len(targets)))
					i++
				}
			})
			b.ReportMetric(float64(written)/float64(i), "stored-B/op")
		})
	}
}

// refresh sends d's REGISTER refreshing its one contact with CSeq cseq.
func refresh(b *testing.B, s *System, d seededDevice, cseq uint32) {
	b.Helper()
	m := &actorpb.Register{Device: d.device, CallId: "c-" + d.device, Cseq: cseq,
		Contacts: []*actorpb.ContactUpdate{{Uri: "sip:" + d.device + "@192.0.2.7:5060", Expires: 3600, QMilli: 1000}},
		Source:   "udp:192.0.2.7:5060", EdgeNode: "n1", UserAgent: "phone/1"}
	rep, err := s.Request(context.Background(), KindDeviceGroup, "acme/"+d.group, m)
	if err != nil {
		b.Fatal(err)
	}
	if r := rep.(*actorpb.RegisterReply); r.Error != nil || len(r.Bindings) != 1 {
		b.Fatalf("register %s: %+v", d.device, r)
	}
}

// seededDevice is a device seedRegistrations stored, and its group.
type seededDevice struct{ device, group string }

// seedRegistrations stores n devices of account a in groups of perGroup
// (g00000, g00001, ...), each device with one binding, and returns them in
// group order.
func seedRegistrations(b *testing.B, st persistence.Store, a string, n, perGroup int) []seededDevice {
	b.Helper()
	now := time.Now()
	recs := map[string]proto.Message{}
	var out []seededDevice
	for gi := 0; gi*perGroup < n; gi++ {
		g := fmt.Sprintf("g%05d", gi)
		recs[groupKey(a, g)] = &actorpb.Group{Id: g, CreatedAt: timestamppb.New(now)}
		var bindings []*actorpb.Binding
		for di := gi * perGroup; di < min(n, (gi+1)*perGroup); di++ {
			d := fmt.Sprintf("d%05d", di)
			out = append(out, seededDevice{d, g})
			recs[deviceKey(a, d)] = &actorpb.Device{Id: d, Group: g, CreatedAt: timestamppb.New(now)}
			bindings = append(bindings, &actorpb.Binding{Device: d, Contact: "sip:" + d + "@192.0.2.7:5060", Source: "udp:192.0.2.7:5060",
				CallId: "c-" + d, Cseq: 1, ExpiresAt: timestamppb.New(now.Add(24 * time.Hour)), UpdatedAt: timestamppb.New(now),
				QMilli: 1000, EdgeNode: "n1", UserAgent: "phone/1"})
		}
		seedGroupBindings(recs, a, g, now, bindings)
	}
	putMany(b, st, recs)
	return out
}

// seedGroupBindings adds group g's state record and its devices' bindings
// records to recs, as the devicegroup actor stores them.
func seedGroupBindings(recs map[string]proto.Message, a, g string, now time.Time, bindings []*actorpb.Binding) {
	recs[deviceGroupKey(a, g)] = &actorpb.DeviceGroupState{Account: a, Group: g, FirstActivatedAt: timestamppb.New(now)}
	for _, bd := range bindings {
		recs[deviceBindingsKey(a, g, bd.Device)] = &actorpb.DeviceGroupState{Bindings: []*actorpb.Binding{bd}}
	}
}

// putMany writes recs (new keys) from 256 goroutines at once.
func putMany(b *testing.B, st persistence.Store, recs map[string]proto.Message) {
	b.Helper()
	keys := make(chan string)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range 256 {
		wg.Go(func() {
			for k := range keys {
				if _, err := putRecord(context.Background(), st, k, recs[k], persistence.MustNotExist); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, fmt.Errorf("seeding %s: %w", k, err))
					mu.Unlock()
				}
			}
		})
	}
	for k := range recs {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// lookupOne activates d's group and checks that it has d's seeded binding.
func lookupOne(b *testing.B, s *System, d seededDevice) {
	b.Helper()
	rep, err := s.Request(context.Background(), KindDeviceGroup, "acme/"+d.group, &actorpb.LookupBindings{Device: d.device})
	if err != nil {
		b.Fatal(err)
	}
	if r := rep.(*actorpb.RegisterReply); r.Error != nil || len(r.Bindings) != 1 {
		b.Fatalf("lookup %s in %s: %+v", d.device, d.group, r)
	}
}
