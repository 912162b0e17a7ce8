package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/fraud"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// floodPolicy fires at 5 messages a minute from one sender, with every
// other indicator off, and takes every action at critical.
const floodPolicy = `{
  "indicators": {
    "rate_per_minute": {"warning": 3, "critical": 5},
    "burst_per_second": {"enabled": false},
    "distinct_destinations": {"enabled": false},
    "destination_risk": {"enabled": false},
    "sequential_destinations": {"enabled": false},
    "same_body": {"enabled": false},
    "history_deviation": {"enabled": false},
    "new_source": {"enabled": false},
    "failure_ratio": {"enabled": false}
  },
  "actions": {"terminate_in_flight": true, "reset_credentials": true, "block_destinations": true, "block_expiry_seconds": 3600}
}`

func fakeClock(s *System) *clock.Fake { return s.cfg.Clock.(*clock.Fake) }

// messagingSetup provisions acme (group sales: d1, d2, d3) with policy,
// and registers d1.
func messagingSetup(t *testing.T, s *System, policy string) {
	t.Helper()
	provision(t, s, "acme", "sales", "d1", "d2", "d3")
	if r := ask[*actorpb.FraudPolicyReply](t, s, KindMessaging, "acme", &actorpb.PutFraudPolicy{PolicyJson: []byte(policy)}); r.Error != nil {
		t.Fatal(r.Error)
	}
	r := ask[*actorpb.RegisterReply](t, s, KindDeviceGroup, "acme/sales", &actorpb.Register{
		Device: "d1", CallId: "reg-1", Cseq: 1, Contacts: []*actorpb.ContactUpdate{{Uri: "sip:d1@192.0.2.1", Expires: 3600}},
	})
	if r.Error != nil || len(r.Bindings) != 1 {
		t.Fatalf("register d1: %+v", r)
	}
}

func checkMsg(t *testing.T, s *System, device, dest, id string) *actorpb.CheckReply {
	t.Helper()
	return ask[*actorpb.CheckReply](t, s, KindMessaging, "acme", &actorpb.CheckMessage{
		Kind: "message", Device: device, Group: "sales", Destination: dest, MessageId: id, Source: "udp:192.0.2.1:5060",
	})
}

func ha1(t *testing.T, s *System, device string) []byte {
	t.Helper()
	v := ask[*actorpb.SecretEdgeView](t, s, KindAccount, "acme", &actorpb.GetSecretEdgeView{Device: device})
	if v.Error != nil || v.Device == nil {
		t.Fatalf("edge view of %s: %+v", device, v)
	}
	return v.Device.Ha1Md5
}

// flood sends MESSAGEs from d1 to distinct numbers, a second apart, until
// one is refused, and returns that reply and how many were sent.
func flood(t *testing.T, s *System, max int) (*actorpb.CheckReply, int) {
	t.Helper()
	for i := 1; i <= max; i++ {
		fakeClock(s).Advance(time.Second)
		r := checkMsg(t, s, "d1", fmt.Sprintf("+1555000%04d", i), fmt.Sprintf("flood-%d", i))
		if r.Error != nil {
			t.Fatalf("check %d: %v", i, r.Error)
		}
		if r.Verdict != verdictDeliver {
			return r, i
		}
		done := ask[*actorpb.MessageDoneReply](t, s, KindMessaging, "acme", &actorpb.MessageDone{MessageId: fmt.Sprintf("flood-%d", i), Status: 200, Disposition: "delivered"})
		if done.Error != nil {
			t.Fatalf("done %d: %v", i, done.Error)
		}
	}
	return nil, max
}

// Patent abstract 3: "terminate in-process messages ... reset the network
// access credentials ... block further messages ... to specific
// destination addresses", with "minimal impact on authorized messaging
// users".
func TestMessaging_FloodContainsTheSender_Abstract3(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	messagingSetup(t, s, floodPolicy)
	oldHA1 := ha1(t, s, "d1")

	// d1 has a message queued for d3 and one in flight; d2 one queued.
	for _, q := range []*actorpb.QueueMessage{
		{MessageId: "q-d1", Sender: "d1", Destination: "d3", Body: []byte("hi")},
		{MessageId: "q-d2", Sender: "d2", Destination: "d3", Body: []byte("hello")},
	} {
		if r := ask[*actorpb.QueueReply](t, s, KindMessaging, "acme", q); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
	if r := checkMsg(t, s, "d1", "+15559990000", "in-flight"); r.Verdict != verdictDeliver {
		t.Fatalf("first message: %+v", r)
	}

	r, n := flood(t, s, 20)
	// The in-flight one counts: the 5th message of the minute is refused.
	if r == nil || n != 4 || r.Verdict != verdictRefuse || r.Level != fraud.LevelCritical.String() || r.Incident == "" {
		t.Fatalf("flood: refused at message %d with %+v; want the 5th refused with an incident", n+1, r)
	}
	// Stored before the reply that refused.
	inc, err := loadOne[*actorpb.Incident](context.Background(), store, fraudIncidentKey("acme", r.Incident))
	if err != nil || inc == nil {
		t.Fatalf("incident %s not stored when the refusal came: %v", r.Incident, err)
	}
	want := []string{fraud.ActionTerminateInFlight, fraud.ActionResetCredentials, fraud.ActionBlockDestinations, fraud.ActionRestore}
	if fmt.Sprint(inc.rec.Actions) != fmt.Sprint(want) || inc.rec.Indicator != "rate_per_minute" || inc.rec.Threshold != 5 ||
		inc.rec.PolicyLevel != "account" || inc.rec.Device != "d1" || inc.rec.State != incidentOpen {
		t.Fatalf("incident: %+v", inc.rec)
	}
	if len(inc.rec.BlockedDestinations) != 5 {
		t.Fatalf("blocked %v, want the 5 destinations of the window", inc.rec.BlockedDestinations)
	}
	blocks, _ := persistence.ScanAll(context.Background(), store, fraudBlockPrefix("acme"))
	if len(blocks) != 5 {
		t.Fatalf("%d blocks stored, want 5", len(blocks))
	}

	// (b) The old HA1 is gone from the edge's view; the bindings too.
	if bytes.Equal(ha1(t, s, "d1"), oldHA1) {
		t.Fatal("d1's HA1 did not change")
	}
	if lb := ask[*actorpb.RegisterReply](t, s, KindDeviceGroup, "acme/sales", &actorpb.LookupBindings{Device: "d1"}); len(lb.Bindings) != 0 {
		t.Fatalf("d1 still has bindings: %v", lb.Bindings)
	}
	// (a) Its queued message is dropped, d2's is not; its message in
	// flight is terminated.
	tq := ask[*actorpb.QueuedMessages](t, s, KindMessaging, "acme", &actorpb.TakeQueued{Device: "d3"})
	if len(tq.Messages) != 1 || tq.Messages[0].MessageId != "q-d2" {
		t.Fatalf("queued for d3 after containment: %v", tq.Messages)
	}
	done := ask[*actorpb.MessageDoneReply](t, s, KindMessaging, "acme", &actorpb.MessageDone{MessageId: "in-flight", Status: 200, Disposition: "delivered"})
	if code(done.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("MessageDone of the terminated message: %v, want CONFLICT", done.Error)
	}
	s.records.flush() // records are written behind
	rec, _ := loadOne[*actorpb.MessageRecord](context.Background(), store, messageRecordKey("acme", "in-flight"))
	if rec == nil || rec.rec.Disposition != "terminated" || rec.rec.Sender != "d1" {
		t.Fatalf("record of the terminated message: %+v", rec)
	}
	// Other devices keep sending; a blocked destination is refused to all.
	if r := checkMsg(t, s, "d2", "+15558880000", "d2-ok"); r.Verdict != verdictDeliver {
		t.Fatalf("d2 to a fresh destination: %+v", r)
	}
	if r := checkMsg(t, s, "d2", "+15550000001", "d2-blocked"); r.Verdict != verdictRefuse || r.Incident != inc.rec.Id {
		t.Fatalf("d2 to a blocked destination: %+v", r)
	}
	// The audit log has the incident and each action.
	audit, _ := persistence.ScanAll(context.Background(), store, fraudAuditPrefix("acme"))
	var actions []string
	for _, it := range audit {
		e, _ := decodeItem[*actorpb.AuditEntry](it)
		actions = append(actions, e.rec.Action)
	}
	if got := strings.Join(actions, ","); got != "incident.opened,terminate_in_flight,reset_credentials,block_destinations,restore" {
		t.Fatalf("audit log: %s", got)
	}
}

// fraudFailingStore fails writes under the fraud keys while fail is set.
type fraudFailingStore struct {
	persistence.Store
	fail atomic.Bool
}

func (f *fraudFailingStore) Put(ctx context.Context, key string, v []byte, expect uint64) (uint64, error) {
	if f.fail.Load() && strings.Contains(key, "/fraud/") {
		return 0, errors.New("disk full")
	}
	return f.Store.Put(ctx, key, v, expect)
}

// A refusal comes only after the incident is stored: when it cannot be,
// the check fails (the edge answers 503) and nothing takes effect.
func TestMessaging_IncidentStoredBeforeRefusal(t *testing.T) {
	store := &fraudFailingStore{Store: persistence.NewMemory()}
	s := newSystem(t, store, nil)
	messagingSetup(t, s, floodPolicy)
	oldHA1 := ha1(t, s, "d1")
	for i := 1; i <= 4; i++ {
		if r := checkMsg(t, s, "d1", fmt.Sprintf("+4420%d", i), fmt.Sprint("m", i)); r.Verdict != verdictDeliver {
			t.Fatalf("message %d: %+v", i, r)
		}
	}
	store.fail.Store(true)
	r := checkMsg(t, s, "d1", "+44205", "m5")
	if code(r.Error) != actorpb.Code_CODE_UNAVAILABLE || r.Verdict != "" {
		t.Fatalf("critical check with the store failing: %+v, want UNAVAILABLE", r)
	}
	if !bytes.Equal(ha1(t, s, "d1"), oldHA1) {
		t.Fatal("credentials were reset for an incident that was not stored")
	}
	store.fail.Store(false)
	r = checkMsg(t, s, "d1", "+44206", "m6")
	if r.Verdict != verdictRefuse || r.Incident == "" {
		t.Fatalf("after the store healed: %+v", r)
	}
	if inc, _ := loadOne[*actorpb.Incident](context.Background(), store, fraudIncidentKey("acme", r.Incident)); inc == nil {
		t.Fatal("incident not stored")
	}
}

// Issue 10: "a blocked (sender, destination) pair is never delivered
// during failover": another node's supervisor, started on the same store
// while the first still runs (a crash: nothing was flushed), refuses it.
func TestMessaging_BlocksAndTerminationsSurviveFailover(t *testing.T) {
	store := persistence.NewMemory()
	s1 := newSystem(t, store, nil)
	messagingSetup(t, s1, floodPolicy)
	if r := checkMsg(t, s1, "d1", "+15559990000", "in-flight"); r.Verdict != verdictDeliver {
		t.Fatalf("first: %+v", r)
	}
	r, _ := flood(t, s1, 20)
	if r == nil || r.Verdict != verdictRefuse {
		t.Fatalf("flood: %+v", r)
	}
	s2 := newSystem(t, store, func(c *Config) { c.Clock = clock.NewFake(fakeClock(s1).Now()) })
	if r2 := checkMsg(t, s2, "d2", "+15550000002", "after-failover"); r2.Verdict != verdictRefuse || r2.Incident != r.Incident {
		t.Fatalf("blocked destination on the new node: %+v", r2)
	}
	done := ask[*actorpb.MessageDoneReply](t, s2, KindMessaging, "acme", &actorpb.MessageDone{MessageId: "in-flight", Status: 200})
	if code(done.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("terminated message on the new node: %v, want CONFLICT", done.Error)
	}
	// Stopped and reactivated (passivation): the same.
	if err := s2.PassivateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r3 := checkMsg(t, s2, "d3", "+15550000003", "after-reactivation"); r3.Verdict != verdictRefuse {
		t.Fatalf("blocked destination after reactivation: %+v", r3)
	}
}

// Resolving lifts the incident's blocks (and the sender's suspension).
func TestMessaging_ResolveLiftsBlocks(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	messagingSetup(t, s, floodPolicy)
	r, _ := flood(t, s, 20)
	if r == nil {
		t.Fatal("no incident")
	}
	open := ask[*actorpb.IncidentListReply](t, s, KindMessaging, "acme", &actorpb.ListIncidents{State: "open"})
	if len(open.Incidents) != 1 || open.Incidents[0].Id != r.Incident {
		t.Fatalf("open incidents: %+v", open)
	}
	res := ask[*actorpb.IncidentReply](t, s, KindMessaging, "acme", &actorpb.ResolveIncident{Id: r.Incident})
	if res.Error != nil || res.Incident.State != incidentResolved || res.Incident.ResolvedAt == nil {
		t.Fatalf("resolve: %+v", res)
	}
	if r2 := checkMsg(t, s, "d2", "+15550000001", "x"); r2.Verdict != verdictDeliver {
		t.Fatalf("after resolve, the lifted destination: %+v", r2)
	}
	if blocks, _ := persistence.ScanAll(context.Background(), store, fraudBlockPrefix("acme")); len(blocks) != 0 {
		t.Fatalf("%d blocks left in the store", len(blocks))
	}
	if open := ask[*actorpb.IncidentListReply](t, s, KindMessaging, "acme", &actorpb.ListIncidents{State: "open"}); len(open.Incidents) != 0 {
		t.Fatalf("still open: %+v", open.Incidents)
	}
	all := ask[*actorpb.IncidentListReply](t, s, KindMessaging, "acme", &actorpb.ListIncidents{})
	if len(all.Incidents) != 1 || all.Incidents[0].State != incidentResolved {
		t.Fatalf("all incidents: %+v", all.Incidents)
	}
	// Another account does not know it.
	provision(t, s, "other", "g")
	if g := ask[*actorpb.IncidentReply](t, s, KindMessaging, "other", &actorpb.GetIncident{Id: r.Incident}); code(g.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("another account's incident: %+v", g)
	}
}

// Monitor (shadow) mode records the incident and acts on nothing.
func TestMessaging_MonitorModeActsOnNothing(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	messagingSetup(t, s, strings.Replace(floodPolicy, `"indicators"`, `"monitor": true, "indicators"`, 1))
	oldHA1 := ha1(t, s, "d1")
	if r, n := flood(t, s, 10); r != nil {
		t.Fatalf("monitor mode refused message %d: %+v", n, r)
	}
	list := ask[*actorpb.IncidentListReply](t, s, KindMessaging, "acme", &actorpb.ListIncidents{})
	if len(list.Incidents) != 1 || !list.Incidents[0].Monitor || len(list.Incidents[0].Actions) != 0 {
		t.Fatalf("monitor incidents: %+v", list.Incidents)
	}
	if !bytes.Equal(ha1(t, s, "d1"), oldHA1) {
		t.Fatal("monitor mode reset credentials")
	}
	if blocks, _ := persistence.ScanAll(context.Background(), store, fraudBlockPrefix("acme")); len(blocks) != 0 {
		t.Fatalf("monitor mode stored %d blocks", len(blocks))
	}
}

// The store-and-forward queue: oldest first, kept until acknowledged,
// dropped (and recorded) when its time passes.
func TestMessaging_QueueOrderAndTTL(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	messagingSetup(t, s, floodPolicy)
	clk := fakeClock(s)
	for i, id := range []string{"a", "b", "c"} {
		q := &actorpb.QueueMessage{MessageId: id, Sender: "d1", Destination: "d2", Body: []byte(id)}
		if id == "c" {
			q.ExpiresAt = timestamppb.New(clk.Now().Add(10 * time.Second))
		}
		if r := ask[*actorpb.QueueReply](t, s, KindMessaging, "acme", q); r.Error != nil {
			t.Fatalf("queue %d: %v", i, r.Error)
		}
		clk.Advance(time.Second)
	}
	ids := func() string {
		r := ask[*actorpb.QueuedMessages](t, s, KindMessaging, "acme", &actorpb.TakeQueued{Device: "d2"})
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		var out []string
		for _, m := range r.Messages {
			out = append(out, m.MessageId)
		}
		return strings.Join(out, ",")
	}
	if got := ids(); got != "a,b,c" {
		t.Fatalf("queued: %s, want a,b,c", got)
	}
	if got := ids(); got != "a,b,c" {
		t.Fatalf("taken again without acknowledgement: %s, want a,b,c", got)
	}
	clk.Advance(10 * time.Second)
	if got := ids(); got != "a,b" {
		t.Fatalf("after c's TTL: %s, want a,b", got)
	}
	ask[*actorpb.QueueReply](t, s, KindMessaging, "acme", &actorpb.DeliveredQueued{MessageIds: []string{"a"}, Status: 200})
	if got := ids(); got != "b" {
		t.Fatalf("after a was delivered: %s, want b", got)
	}
	for id, disp := range map[string]string{"a": "delivered", "c": "expired"} {
		rec, _ := loadOne[*actorpb.MessageRecord](context.Background(), store, messageRecordKey("acme", id))
		if rec == nil || rec.rec.Disposition != disp {
			t.Fatalf("record of %s: %+v, want %s", id, rec, disp)
		}
	}
	// A bad expiry names its field.
	r := ask[*actorpb.QueueReply](t, s, KindMessaging, "acme", &actorpb.QueueMessage{MessageId: "z", Destination: "d2", ExpiresAt: timestamppb.New(clk.Now())})
	if code(r.Error) != actorpb.Code_CODE_INVALID || r.Error.Field != "expires_at" {
		t.Fatalf("expired on arrival: %+v", r.Error)
	}
}

// A policy with bad thresholds is refused naming the field, and the
// effective policy is the merge.
func TestMessaging_PolicyValidationAndMerge(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	provision(t, s, "acme", "sales", "d1")
	for _, tc := range []struct{ body, field string }{
		{`{"indicators":{"rate_per_minute":{"warning":9,"critical":3}}}`, "indicators.rate_per_minute"},
		{`{"indicators":{"rate_per_minute":{"critical":"x"}}}`, "indicators.rate_per_minute.critical"},
		{`{"nonsense":1}`, "nonsense"},
	} {
		r := ask[*actorpb.FraudPolicyReply](t, s, KindMessaging, "acme", &actorpb.PutFraudPolicy{PolicyJson: []byte(tc.body)})
		if code(r.Error) != actorpb.Code_CODE_INVALID || !strings.HasPrefix(r.Error.Field, tc.field) {
			t.Errorf("%s: %+v, want INVALID on %s", tc.body, r.Error, tc.field)
		}
	}
	if r := ask[*actorpb.FraudPolicyReply](t, s, KindMessaging, "acme", &actorpb.PutFraudPolicy{Device: "d1", PolicyJson: []byte(`{"monitor":true}`)}); r.Error != nil {
		t.Fatal(r.Error)
	}
	eff := ask[*actorpb.FraudPolicyReply](t, s, KindMessaging, "acme", &actorpb.GetFraudPolicy{Group: "sales", Device: "d1", Effective: true})
	if eff.Error != nil || !strings.Contains(string(eff.PolicyJson), `"monitor":true`) || !strings.Contains(string(eff.PolicyJson), `"rate_per_minute"`) {
		t.Fatalf("effective: %s %v", eff.PolicyJson, eff.Error)
	}
	if r := ask[*actorpb.CheckReply](t, s, KindMessaging, "nobody", &actorpb.CheckMessage{Kind: "message", MessageId: "x", Destination: "1"}); code(r.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("unknown account: %+v", r.Error)
	}
}

// recordingSink keeps the events appended to it.
type recordingSink struct {
	mu     sync.Mutex
	events []string
}

func (r *recordingSink) AppendEvent(_ context.Context, account, typ, user string, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, account+" "+typ+" "+user)
	return nil
}

func (r *recordingSink) list() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, ",")
}

// Issue 10 section 6: incidents and actions go out as events; a number
// blocked in one form is refused in another.
func TestMessaging_EventsAndNormalizedBlocks(t *testing.T) {
	sink := &recordingSink{}
	s := newSystem(t, persistence.NewMemory(), func(c *Config) { c.Events = sink })
	messagingSetup(t, s, floodPolicy)
	r, _ := flood(t, s, 20)
	if r == nil {
		t.Fatal("no incident")
	}
	if r2 := checkMsg(t, s, "d2", "1 555 000 0002", "other-form"); r2.Verdict != verdictRefuse {
		t.Fatalf("blocked number in another form: %+v", r2)
	}
	ask[*actorpb.IncidentReply](t, s, KindMessaging, "acme", &actorpb.ResolveIncident{Id: r.Incident})
	want := "acme fraud.warning d1,acme fraud.incident.opened d1,acme fraud.action d1,acme fraud.action d1,acme fraud.action d1,acme fraud.action d1,acme fraud.incident.resolved d1"
	if got := sink.list(); got != want {
		t.Fatalf("events:\n%s\nwant\n%s", got, want)
	}
	// And as metrics.
	for _, c := range []struct {
		name string
		c    prometheus.Counter
		want float64
	}{
		{"incidents", s.fraud.incidents.WithLabelValues("rate_per_minute"), 1},
		{"refusals", s.fraud.checks.WithLabelValues("message", verdictRefuse), 2},
		{"resets", s.fraud.actions.WithLabelValues(fraud.ActionResetCredentials, "ok"), 1},
	} {
		if got := testutilCount(c.c); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// Issue 10: "a supervisor reactivated on another node resumes with its
// history": histories are stored when their hour folds and when the
// supervisor passivates, not per message.
func TestMessaging_HistoriesStoredAtFoldAndPassivation(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	messagingSetup(t, s, floodPolicy)
	keys := func() int {
		items, _ := persistence.ScanAll(context.Background(), store, fraudPrefix("acme")+"hist/")
		return len(items)
	}
	checkMsg(t, s, "d1", "+4420111", "h1")
	checkMsg(t, s, "d1", "+4420112", "h2")
	if n := keys(); n != 0 {
		t.Fatalf("%d histories stored by plain checks; want none (bounded writes)", n)
	}
	fakeClock(s).Advance(time.Hour)
	checkMsg(t, s, "d1", "+4420113", "h3")
	if n := keys(); n != 3 {
		t.Fatalf("%d histories stored after the hour folded, want device, group and account", n)
	}
	_ = store.Delete(context.Background(), fraudHistoryKey("acme", "dev.d1"), persistence.AnyVersion)
	if err := s.PassivateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := keys(); n != 3 {
		t.Fatalf("%d histories after passivation, want 3", n)
	}
}
