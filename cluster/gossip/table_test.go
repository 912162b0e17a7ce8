package gossip

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func metaBytes(t *testing.T, m Meta) []byte {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func memberByID(ms []Member, id string) (Member, bool) {
	for _, m := range ms {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

func TestTable_OlderReportNeverOverwritesNewer(t *testing.T) {
	tbl := newTable("self", 0, time.Hour)
	tbl.observe(nodeEvent{ID: "b", Addr: "127.0.0.1:2", State: StatusAlive}, t0)
	steps := []struct {
		name      string
		r         loadReport
		wantNewer bool
		wantCalls int
	}{
		{"first", loadReport{ID: "b", Epoch: 10, Seq: 5, Load: Load{ActiveCalls: 5}}, true, 5},
		{"older seq", loadReport{ID: "b", Epoch: 10, Seq: 4, Load: Load{ActiveCalls: 4}}, false, 5},
		{"same seq", loadReport{ID: "b", Epoch: 10, Seq: 5, Load: Load{ActiveCalls: 99}}, false, 5},
		{"newer seq", loadReport{ID: "b", Epoch: 10, Seq: 6, Load: Load{ActiveCalls: 6}}, true, 6},
		{"older epoch, higher seq", loadReport{ID: "b", Epoch: 9, Seq: 100, Load: Load{ActiveCalls: 100}}, false, 6},
		{"newer epoch restarts seq", loadReport{ID: "b", Epoch: 11, Seq: 1, Load: Load{ActiveCalls: 1}}, true, 1},
	}
	for i, st := range steps {
		now := t0.Add(time.Duration(i+1) * time.Second)
		newer, _ := tbl.applyReport(st.r, now)
		if newer != st.wantNewer {
			t.Fatalf("%s: newer=%v, want %v", st.name, newer, st.wantNewer)
		}
		m, _ := memberByID(tbl.members(), "b")
		if m.Load.ActiveCalls != st.wantCalls {
			t.Fatalf("%s: ActiveCalls=%d, want %d", st.name, m.Load.ActiveCalls, st.wantCalls)
		}
		if st.wantNewer && !m.LoadAt.Equal(now) {
			t.Fatalf("%s: LoadAt=%v, want %v", st.name, m.LoadAt, now)
		}
	}
}

// Only this node speaks for itself: a report about it relayed by others is
// ignored.
func TestTable_IgnoresOthersReportsAboutSelf(t *testing.T) {
	tbl := newTable("self", 0, time.Hour)
	tbl.observe(nodeEvent{ID: "self", State: StatusAlive}, t0)
	tbl.setLocal(loadReport{ID: "self", Epoch: 1, Seq: 1, Load: Load{ActiveCalls: 1}}, t0)
	if newer, _ := tbl.applyReport(loadReport{ID: "self", Epoch: 2, Seq: 9, Load: Load{ActiveCalls: 9}}, t0); newer {
		t.Fatal("took a report about itself from the network")
	}
	if got := tbl.local().Load.ActiveCalls; got != 1 {
		t.Fatalf("local ActiveCalls = %d", got)
	}
}

func TestTable_SuspectWhenReportsStopAliveWhenTheyResume(t *testing.T) {
	const after = 5 * time.Second
	tbl := newTable("self", after, time.Hour)
	tbl.observe(nodeEvent{ID: "self", State: StatusAlive}, t0)
	tbl.observe(nodeEvent{ID: "b", State: StatusAlive}, t0)
	status := func() Status { m, _ := memberByID(tbl.members(), "b"); return m.Status }

	if tbl.tick(t0.Add(after)) || status() != StatusAlive {
		t.Fatalf("suspect within the grace after joining: %s", status())
	}
	if !tbl.tick(t0.Add(after+time.Millisecond)) || status() != StatusSuspect {
		t.Fatalf("not suspect after %v without a report: %s", after, status())
	}
	_, changed := tbl.applyReport(loadReport{ID: "b", Seq: 1}, t0.Add(6*time.Second))
	if !changed || status() != StatusAlive {
		t.Fatalf("report did not bring it back: changed=%v %s", changed, status())
	}
	if tbl.tick(t0.Add(6*time.Second + after)) {
		t.Fatal("status changed within SuspectAfter of the last report")
	}
	// The node itself is never suspect.
	tbl.tick(t0.Add(time.Hour))
	if s := tbl.local().Status; s != StatusAlive {
		t.Fatalf("self is %s", s)
	}
}

func TestTable_DeadAndLeftKeptForRetentionThenForgotten(t *testing.T) {
	const retention = 10 * time.Minute
	tbl := newTable("self", 0, retention)
	tbl.observe(nodeEvent{ID: "self", State: StatusAlive}, t0)
	tbl.observe(nodeEvent{ID: "dead", State: StatusAlive}, t0)
	tbl.observe(nodeEvent{ID: "left", State: StatusAlive}, t0)
	if ch, _ := tbl.observe(nodeEvent{ID: "dead", State: StatusDead}, t0.Add(time.Minute)); !ch {
		t.Fatal("death not reported as a change")
	}
	if ch, _ := tbl.observe(nodeEvent{ID: "left", State: StatusLeft}, t0.Add(2*time.Minute)); !ch {
		t.Fatal("leave not reported as a change")
	}
	if tbl.tick(t0.Add(time.Minute+retention)) || len(tbl.members()) != 3 {
		t.Fatalf("forgot within retention: %+v", tbl.members())
	}
	if !tbl.tick(t0.Add(time.Minute+retention+time.Second)) || len(tbl.members()) != 2 {
		t.Fatalf("dead member kept past retention: %+v", tbl.members())
	}
	tbl.tick(t0.Add(2*time.Minute + retention + time.Second))
	if ms := tbl.members(); len(ms) != 1 || !ms[0].Local {
		t.Fatalf("after retention: %+v", ms)
	}
	if n := tbl.numAlive(); n != 1 {
		t.Fatalf("numAlive = %d", n)
	}
}

// DESIGN.md: a restarted node needs a new id; the human name is metadata.
// Both entries are listed: the old one dead, the new one alive.
func TestTable_RestartUnderSameNameIsANewMember(t *testing.T) {
	tbl := newTable("a", 0, time.Hour)
	meta := metaBytes(t, Meta{Name: "c", Actor: "127.0.0.1:8090"})
	tbl.observe(nodeEvent{ID: "a", State: StatusAlive}, t0)
	tbl.observe(nodeEvent{ID: "c-1", Addr: "127.0.0.1:7000", Meta: meta, State: StatusAlive}, t0)
	tbl.observe(nodeEvent{ID: "c-1", Addr: "127.0.0.1:7000", Meta: meta, State: StatusDead}, t0.Add(time.Second))
	tbl.observe(nodeEvent{ID: "c-2", Addr: "127.0.0.1:7000", Meta: meta, State: StatusAlive}, t0.Add(2*time.Second))
	ms := tbl.members()
	if len(ms) != 3 {
		t.Fatalf("members: %+v", ms)
	}
	old, _ := memberByID(ms, "c-1")
	cur, _ := memberByID(ms, "c-2")
	if old.Status != StatusDead || cur.Status != StatusAlive || old.Meta.Name != "c" || cur.Meta.Name != "c" {
		t.Fatalf("old %+v, new %+v", old, cur)
	}
}

// A push-pull may carry reports of nodes memberlist has not told us about
// yet: they are held, hidden, and shown once the node is listed.
func TestTable_ReportBeforeJoinIsHeldHidden(t *testing.T) {
	tbl := newTable("self", 0, time.Minute)
	tbl.applyReport(loadReport{ID: "b", Seq: 1, Load: Load{ActiveCalls: 7}}, t0)
	if len(tbl.members()) != 0 {
		t.Fatalf("unlisted member shown: %+v", tbl.members())
	}
	tbl.observe(nodeEvent{ID: "b", State: StatusAlive}, t0.Add(time.Second))
	m, ok := memberByID(tbl.members(), "b")
	if !ok || m.Load.ActiveCalls != 7 || !m.LoadAt.Equal(t0) {
		t.Fatalf("after join: %+v", m)
	}
	tbl.applyReport(loadReport{ID: "ghost", Seq: 1}, t0)
	tbl.tick(t0.Add(2 * time.Minute))
	if _, ok := tbl.entries["ghost"]; ok {
		t.Fatal("report of a never-listed node kept past retention")
	}
}

func TestTable_MetaUpdateIsAChangeAndBadMetaKeepsTheOld(t *testing.T) {
	tbl := newTable("self", 0, time.Hour)
	m1 := metaBytes(t, Meta{Name: "b", SIP: "127.0.0.1:5060"})
	m2 := metaBytes(t, Meta{Name: "b", SIP: "127.0.0.1:5070"})
	tbl.observe(nodeEvent{ID: "b", Meta: m1, State: StatusAlive}, t0)
	if ch, _ := tbl.observe(nodeEvent{ID: "b", Meta: m1, State: StatusAlive}, t0); ch {
		t.Fatal("identical update reported as a change")
	}
	if ch, _ := tbl.observe(nodeEvent{ID: "b", Meta: m2, State: StatusAlive}, t0); !ch {
		t.Fatal("metadata change not reported")
	}
	ch, err := tbl.observe(nodeEvent{ID: "b", Meta: []byte{0xff}, State: StatusAlive}, t0)
	if err == nil || ch {
		t.Fatalf("bad metadata: changed=%v err=%v", ch, err)
	}
	if m, _ := memberByID(tbl.members(), "b"); m.Meta.SIP != "127.0.0.1:5070" {
		t.Fatalf("meta after bad update: %+v", m.Meta)
	}
}

// Members hands out copies: a caller mutating a Load map cannot corrupt the
// table.
func TestTable_MembersShareNothing(t *testing.T) {
	tbl := newTable("self", 0, time.Hour)
	tbl.observe(nodeEvent{ID: "self", State: StatusAlive}, t0)
	tbl.setLocal(loadReport{ID: "self", Seq: 1, Load: Load{Activations: map[string]int{"call": 1}}}, t0)
	tbl.members()[0].Load.Activations["call"] = 99
	if got := tbl.local().Load.Activations["call"]; got != 1 {
		t.Fatalf("table changed through a returned Member: %d", got)
	}
}

// A node whose reports arrive but that memberlist has not announced is
// synced with, once per retry, while its reports are fresh.
func TestTable_StrangersAreSyncedWithOncePerRetry(t *testing.T) {
	const window, retry = 3 * time.Second, 5 * time.Second
	tbl := newTable("self", 0, time.Hour)
	tbl.observe(nodeEvent{ID: "known", State: StatusAlive}, t0)
	tbl.applyReport(loadReport{ID: "known", Addr: "127.0.0.1:1", Seq: 1}, t0)
	tbl.applyReport(loadReport{ID: "stranger", Addr: "127.0.0.1:2", Seq: 1}, t0)
	tbl.applyReport(loadReport{ID: "no-addr", Seq: 1}, t0)

	steps := []struct {
		at   time.Duration
		want []string
	}{
		{0, []string{"127.0.0.1:2"}},
		{time.Second, nil},     // tried within retry
		{5 * time.Second, nil}, // report older than window
	}
	for _, st := range steps {
		if got := tbl.strangers(t0.Add(st.at), window, retry); !slices.Equal(got, st.want) {
			t.Fatalf("at +%v: strangers = %v, want %v", st.at, got, st.want)
		}
	}
	tbl.applyReport(loadReport{ID: "stranger", Addr: "127.0.0.1:2", Seq: 2}, t0.Add(6*time.Second))
	if got := tbl.strangers(t0.Add(6*time.Second), window, retry); !slices.Equal(got, []string{"127.0.0.1:2"}) {
		t.Fatalf("fresh report after retry: %v", got)
	}
	tbl.observe(nodeEvent{ID: "stranger", State: StatusAlive}, t0.Add(7*time.Second))
	tbl.applyReport(loadReport{ID: "stranger", Addr: "127.0.0.1:2", Seq: 3}, t0.Add(20*time.Second))
	if got := tbl.strangers(t0.Add(20*time.Second), window, retry); got != nil {
		t.Fatalf("announced node still a stranger: %v", got)
	}
}
