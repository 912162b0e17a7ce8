package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/fraud"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// Bounds of the messaging supervisor.
const (
	// inflightTTL forgets a message in flight that never got its
	// MessageDone (its edge died): well past the SIP transaction's 32 s.
	inflightTTL = 5 * time.Minute
	// maintainEvery is the least time between two maintenance passes
	// (expiries, history and incident flushes), run by a message.
	maintainEvery = time.Minute
	// historyFlushEvery bounds the history writes of one sender.
	historyFlushEvery = time.Minute
	// incidentWindow is how far back the destinations a sender targeted
	// are blocked at critical, when the policy does not say.
	incidentWindow = 10 * time.Minute
	// maxBlockedPerIncident and maxTerminatedPerIncident bound one
	// incident's record.
	maxBlockedPerIncident    = 1000
	maxTerminatedPerIncident = 1000
	// defaultQueueTTL is a queued message's life when QueueMessage sets none.
	defaultQueueTTL = 24 * time.Hour
)

// messaging is the behavior of the messaging kind (identity: the account
// id): the account's fraud supervisor. See doc.go.
type messaging struct {
	sys    *System
	id     string
	exists bool

	policies map[string]storedPolicy  // by level key: "account", "grp/<g>", "dev/<d>"
	eff      map[string]*mergedPolicy // by group "\x00" device
	senders  map[string]*sender
	// histories are the fraud histories of the senders, groups and the
	// account, shared by the senders.
	histories map[string]*history
	inflight  map[string]*inflightMsg
	order     []*inflightMsg // arrival order, for expiry
	queued    map[string]*queuedMeta
	blocks    map[string]*versioned[*actorpb.Block] // by store key
	open      map[string]*versioned[*actorpb.Incident]
	bySender  map[string]string // sender key -> open incident id
	killed    map[string]string // terminated message id -> incident id
	dirty     map[string]bool   // open incidents to store again (messages_contained)
	seq       uint64
	swept     time.Time
}

// storedPolicy is a stored policy: the JSON of a fraud policy (not a
// proto), as the detector reads it. The zero value is no policy (version
// 0: persistence.MustNotExist).
type storedPolicy struct {
	raw     []byte
	version uint64
}

// sender is one sender's detector state (fraud.Sender, in fixed memory)
// and what the supervisor knows of it.
type sender struct {
	key      string
	det      *fraud.Sender
	hist     [3]*history   // device (or trunk), group, account
	policy   *mergedPolicy // of its last check, to fold with
	warnedAt time.Time
	// pending is a critical verdict whose incident could not be stored
	// (the detector has already emptied its windows): the sender's
	// requests fail until it is.
	pending *fraud.Verdict
	who     who
}

// inflightMsg is a MESSAGE between its CheckMessage and its MessageDone.
type inflightMsg struct {
	id, sender, device, group, destination string
	at                                     time.Time
	refused, done                          bool
}

// queuedMeta is what the supervisor keeps in memory of a queued message
// (the body stays in the store).
type queuedMeta struct {
	key, id, sender, destination string
	expires                      time.Time
}

func (m *messaging) store() persistence.Store { return m.sys.cfg.Store }

func (m *messaging) vacant() bool { return !m.exists }

// pinned keeps the supervisor while a message may still be in flight (the
// newest is younger than inflightTTL), so that idle passivation never
// drops the table (terminations are stored on their incident anyway).
func (m *messaging) pinned() bool {
	if len(m.inflight) == 0 || len(m.order) == 0 {
		return false
	}
	return m.sys.cfg.Clock.Now().Sub(m.order[len(m.order)-1].at) < inflightTTL
}

// load reads the supervisor's state from the store. What lives only in
// memory (the senders' windows, the messages in flight) survives a reload
// of the same activation (after a write whose outcome is unknown): a
// store hiccup must not give a flooding sender a fresh budget.
func (m *messaging) load(ctx context.Context) error {
	senders, histories, inflight, order := m.senders, m.histories, m.inflight, m.order
	if senders == nil {
		senders, histories, inflight = map[string]*sender{}, map[string]*history{}, map[string]*inflightMsg{}
	}
	*m = messaging{sys: m.sys, id: m.id,
		policies: map[string]storedPolicy{}, eff: map[string]*mergedPolicy{},
		senders: senders, histories: histories, inflight: inflight, order: order, queued: map[string]*queuedMeta{},
		blocks: map[string]*versioned[*actorpb.Block]{}, open: map[string]*versioned[*actorpb.Incident]{},
		bySender: map[string]string{}, killed: map[string]string{}, dirty: map[string]bool{},
		swept: m.sys.cfg.Clock.Now(),
	}
	res, err := m.sys.Request(ctx, KindAccount, m.id, &actorpb.GetAccount{})
	if err != nil {
		return fmt.Errorf("asking account %s whether it exists: %w", m.id, err)
	}
	if rep, ok := res.(*actorpb.AccountReply); !ok || (rep.Error != nil && rep.Error.Code != actorpb.Code_CODE_NOT_FOUND) {
		return fmt.Errorf("account %s answered GetAccount with %v", m.id, res)
	} else if rep.Error != nil {
		return nil // no such account: vacant
	}
	m.exists = true
	items, err := persistence.ScanAll(ctx, m.store(), fraudPolicyKey(m.id, ""))
	if err != nil {
		return err
	}
	for _, it := range items {
		m.policies[strings.TrimPrefix(it.Key, fraudPolicyKey(m.id, ""))] = storedPolicy{raw: it.Value, version: it.Version}
	}
	if err := loadAll(ctx, m.store(), fraudBlockPrefix(m.id), m.blocks); err != nil {
		return err
	}
	// loadAll keys by the last segment; blocks are keyed by the full key.
	blocks := map[string]*versioned[*actorpb.Block]{}
	for _, b := range m.blocks {
		blocks[fraudBlockKey(m.id, b.rec.Device, b.rec.Destination)] = b
	}
	m.blocks = blocks
	marks, err := persistence.ScanAll(ctx, m.store(), fraudOpenPrefix(m.id))
	if err != nil {
		return err
	}
	for _, mk := range marks {
		id := strings.TrimPrefix(mk.Key, fraudOpenPrefix(m.id))
		inc, err := loadOne[*actorpb.Incident](ctx, m.store(), fraudIncidentKey(m.id, id))
		if err != nil {
			return err
		}
		if inc == nil || inc.rec.State != incidentOpen {
			// A marker whose incident was never written, or was resolved
			// before the marker's delete: drop it.
			if err := m.store().Delete(ctx, mk.Key, mk.Version); err != nil && !errors.Is(err, persistence.ErrNotFound) {
				return err
			}
			continue
		}
		m.adopt(inc)
	}
	qs, err := persistence.ScanAll(ctx, m.store(), messageQueuePrefix(m.id))
	if err != nil {
		return err
	}
	for _, it := range qs {
		q := &actorpb.QueueMessage{}
		if err := proto.Unmarshal(it.Value, q); err != nil {
			return fmt.Errorf("decoding %s: %w", it.Key, err)
		}
		m.queued[q.MessageId] = &queuedMeta{key: it.Key, id: q.MessageId, sender: q.Sender, destination: q.Destination, expires: q.ExpiresAt.AsTime()}
	}
	return nil
}

// adopt makes an open incident current: its sender's suspension and its
// terminated messages.
func (m *messaging) adopt(inc *versioned[*actorpb.Incident]) {
	m.open[inc.rec.Id] = inc
	m.bySender[senderKey(inc.rec.Device, inc.rec.Trunk)] = inc.rec.Id
	for _, id := range inc.rec.TerminatedMessages {
		m.killed[id] = inc.rec.Id
	}
}

func senderKey(device, trunk string) string {
	switch {
	case device != "":
		return "dev." + device
	case trunk != "":
		return "trunk." + trunk
	}
	return "anonymous"
}

func (m *messaging) receive(t *turn, msg proto.Message) proto.Message {
	if !m.exists {
		return errorReply(msg, notFound("account", "account %q not found", m.id))
	}
	now := m.sys.cfg.Clock.Now()
	m.maintain(t, now)
	switch r := msg.(type) {
	case *actorpb.CheckMessage:
		return m.check(t, r, now)
	case *actorpb.MessageDone:
		return m.done(t, r, now)
	case *actorpb.QueueMessage:
		return m.enqueue(t, r, now)
	case *actorpb.TakeQueued:
		return m.take(t, r, now)
	case *actorpb.DeliveredQueued:
		return m.delivered(t, r, now)
	case *actorpb.PutFraudPolicy:
		return m.putPolicy(t, r)
	case *actorpb.GetFraudPolicy:
		return m.getPolicy(r)
	case *actorpb.ListIncidents:
		return m.listIncidents(t, r)
	case *actorpb.GetIncident:
		inc, e := m.incident(t, r.Id)
		if e != nil {
			return &actorpb.IncidentReply{Error: e}
		}
		return &actorpb.IncidentReply{Incident: inc.rec}
	case *actorpb.ResolveIncident:
		return m.resolve(t, r, now)
	case *actorpb.RestoreDevice:
		return m.restoreDevice(t, r)
	}
	return errorReply(msg, invalid("", "messaging actor does not handle %T", msg))
}

// ---- checks ----

func (m *messaging) check(t *turn, c *actorpb.CheckMessage, now time.Time) proto.Message {
	switch {
	case c.Kind != "message" && c.Kind != "call":
		return &actorpb.CheckReply{Error: invalid("kind", "kind must be \"message\" or \"call\", not %q", c.Kind)}
	case c.Kind == "message" && c.MessageId == "":
		return &actorpb.CheckReply{Error: invalid("message_id", "a MESSAGE needs its message_id (Call-ID)")}
	case c.Destination == "":
		return &actorpb.CheckReply{Error: invalid("destination", "destination is required")}
	}
	rep := m.decide(t, c, now)
	if rep.Error == nil {
		m.sys.fraud.checks.WithLabelValues(c.Kind, rep.Verdict).Inc()
		if c.Kind == "message" {
			m.track(c, now, rep.Verdict != verdictDeliver)
		}
	}
	return rep
}

// Verdicts of CheckReply.
const (
	verdictDeliver  = "deliver"
	verdictThrottle = "throttle"
	verdictRefuse   = "refuse"
)

const (
	incidentOpen     = "open"
	incidentResolved = "resolved"
)

func (m *messaging) decide(t *turn, c *actorpb.CheckMessage, now time.Time) *actorpb.CheckReply {
	key := senderKey(c.Device, c.Trunk)
	if inc := m.suspension(key, now); inc != nil {
		m.contained(inc)
		return &actorpb.CheckReply{Verdict: verdictRefuse, Level: fraud.LevelCritical.String(), Indicator: inc.rec.Indicator, Incident: inc.rec.Id, Reason: "Sender Suspended"}
	}
	p, err := m.policyFor(c.Group, c.Device)
	if err != nil {
		return &actorpb.CheckReply{Error: unavailable("fraud policy of account %s: %v", m.id, err)}
	}
	if !p.safe(c.Destination) {
		if b := m.blocked(c.Device, c.Destination, now); b != nil {
			if inc := m.open[b.Incident]; inc != nil {
				m.contained(inc)
			}
			return &actorpb.CheckReply{Verdict: verdictRefuse, Level: fraud.LevelCritical.String(), Indicator: fraud.BlockedDestination, Incident: b.Incident, Reason: "Destination Blocked"}
		}
	}
	s, err := m.senderFor(t.ctx, c.Device, c.Group, c.Trunk, p)
	if err != nil {
		return &actorpb.CheckReply{Error: unavailable("fraud history of sender %s: %v", key, err)}
	}
	if v := s.pending; v != nil {
		inc, e := m.critical(t, s.who, s, s.policy, *v, now)
		if e != nil {
			return &actorpb.CheckReply{Error: e}
		}
		return &actorpb.CheckReply{Verdict: v.Decision(), Level: v.Level.String(), Indicator: v.Indicator, Incident: inc.GetId(), Reason: "Refused By Fraud Policy"}
	}
	v := s.det.Check(&p.p, fraudEvent(m.id, c, now))
	if v.Folded {
		m.folded(t.ctx, s)
	}
	rep := &actorpb.CheckReply{Verdict: v.Decision(), Level: v.Level.String(), Indicator: v.Indicator}
	switch {
	case v.Level == fraud.LevelCritical:
		inc, e := m.critical(t, who{device: c.Device, group: c.Group, trunk: c.Trunk, source: c.Source}, s, p, v, now)
		if e != nil {
			return &actorpb.CheckReply{Error: e}
		}
		rep.Incident = inc.GetId()
		if rep.Verdict == verdictRefuse {
			rep.Reason = "Refused By Fraud Policy"
		}
	case v.Throttle:
		rep.Reason, rep.RetryAfter = "Rate Limited", uint32(throttleRetryAfter/time.Second)
	case v.Refuse:
		rep.Reason = "Destination Not Permitted"
	case v.Level == fraud.LevelWarning:
		m.warn(t, c, s, p, v, now)
	}
	return rep
}

// who is the sender of a request.
type who struct{ device, group, trunk, source string }

// critical handles a critical verdict: a new incident, or the sender's
// open one counting one more message contained.
func (m *messaging) critical(t *turn, w who, s *sender, p *mergedPolicy, v fraud.Verdict, now time.Time) (*actorpb.Incident, *actorpb.Error) {
	if id, ok := m.bySender[s.key]; ok {
		// Already contained (its suspension may have ended with the
		// reset): open nothing new.
		s.pending = nil
		inc := m.open[id]
		if !inc.rec.Monitor {
			m.contained(inc)
		}
		return inc.rec, nil
	}
	inc, e := m.openIncident(t, w, s, p, v, now)
	if e != nil && s.pending == nil {
		s.pending, s.who = &v, w
	} else if e == nil {
		s.pending = nil
	}
	return inc, e
}

// suspension returns the open incident that suspends the sender now, if
// any: from its opening until its blocks expire, or until its
// credentials reset succeeded (whoever authenticates after it holds the
// new secret), and never in monitor mode.
func (m *messaging) suspension(key string, now time.Time) *versioned[*actorpb.Incident] {
	id, ok := m.bySender[key]
	if !ok {
		return nil
	}
	inc := m.open[id]
	r := inc.rec
	if r.Monitor || r.CredentialsResetAt != nil || (r.BlocksExpireAt != nil && !now.Before(r.BlocksExpireAt.AsTime())) {
		return nil
	}
	return inc
}

// blocked returns the live block of (device, destination) or of the
// whole account's destination. Destinations are compared normalized
// (fraud.NormalizeDestination: "15550001" and "+1 555 0001" are one).
func (m *messaging) blocked(device, dest string, now time.Time) *actorpb.Block {
	dest = fraud.NormalizeDestination(dest)
	for _, d := range []string{device, ""} {
		if b, ok := m.blocks[fraudBlockKey(m.id, d, dest)]; ok && (b.rec.ExpiresAt == nil || now.Before(b.rec.ExpiresAt.AsTime())) {
			return b.rec
		}
		if device == "" {
			break
		}
	}
	return nil
}

// contained counts a message refused for an open incident; the count is
// stored with the incident's next write (at most every maintainEvery).
func (m *messaging) contained(inc *versioned[*actorpb.Incident]) {
	inc.rec.MessagesContained++
	m.dirty[inc.rec.Id] = true
}

// track records a MESSAGE as in flight until its MessageDone.
func (m *messaging) track(c *actorpb.CheckMessage, now time.Time, refused bool) {
	if old, ok := m.inflight[c.MessageId]; ok {
		old.done = true // a retransmitted check: the newer entry wins
	}
	f := &inflightMsg{id: c.MessageId, sender: senderKey(c.Device, c.Trunk), device: c.Device, group: c.Group, destination: c.Destination, at: now, refused: refused}
	m.inflight[c.MessageId] = f
	m.order = append(m.order, f)
}

// policyFor returns the merged policy of a sender, cached until a policy
// changes.
func (m *messaging) policyFor(group, device string) (*mergedPolicy, error) {
	k := group + "\x00" + device
	if p, ok := m.eff[k]; ok {
		return p, nil
	}
	p, err := mergePolicy(m.levelsFor(group, device))
	if err != nil {
		return nil, err
	}
	m.eff[k] = p
	return p, nil
}

// levelsFor returns the stored layers of a sender's policy.
func (m *messaging) levelsFor(group, device string) policyLevels {
	l := policyLevels{account: m.policies["account"].raw}
	if group != "" {
		l.group = m.policies["grp/"+group].raw
	}
	if device != "" {
		l.device = m.policies["dev/"+device].raw
	}
	return l
}

// senderFor returns the sender's state, with its histories read from
// the store on first use by this activation (one round trip per sender
// and per group, not per request).
func (m *messaging) senderFor(ctx context.Context, device, group, trunk string, p *mergedPolicy) (*sender, error) {
	key := senderKey(device, trunk)
	if s, ok := m.senders[key]; ok {
		s.policy = p
		return s, nil
	}
	s := &sender{key: key, policy: p}
	keys := [3]string{key, "", accountHistoryKey}
	if group != "" {
		keys[1] = groupHistoryKey(group)
	}
	var hs [3]*fraud.History
	for i, k := range keys {
		if k == "" {
			continue
		}
		h, err := m.historyFor(ctx, k, p)
		if err != nil {
			return nil, err
		}
		s.hist[i], hs[i] = h, h.h
	}
	s.det = fraud.NewSender(hs[0], hs[1], hs[2])
	m.senders[key] = s
	return s, nil
}

func (m *messaging) warn(t *turn, c *actorpb.CheckMessage, s *sender, p *mergedPolicy, v fraud.Verdict, now time.Time) {
	m.sys.fraud.warnings.WithLabelValues(v.Indicator).Inc()
	if now.Sub(s.warnedAt) < time.Minute {
		return // one event per sender per minute
	}
	s.warnedAt = now
	m.event(t.ctx, "fraud.warning", c.Device, map[string]any{
		"device": c.Device, "trunk": c.Trunk, "group": c.Group, "indicator": v.Indicator, "scope": v.Scope,
		"value": v.Value, "threshold": v.Threshold, "policy_level": p.levelOf(v.Indicator, v.Level), "monitor": v.Monitor,
	})
}

// ---- incidents ----

// openIncident stores a new incident, its open marker and its blocks
// before any of them takes effect, then takes the policy's actions.
func (m *messaging) openIncident(t *turn, w who, s *sender, p *mergedPolicy, v fraud.Verdict, now time.Time) (*actorpb.Incident, *actorpb.Error) {
	inc := &actorpb.Incident{
		Account: m.id, Device: w.device, Group: w.group, Trunk: w.trunk,
		Indicator: v.Indicator, Value: v.Value, Threshold: v.Threshold, PolicyLevel: p.levelOf(v.Indicator, v.Level),
		Node: m.sys.cfg.Node, State: incidentOpen, Monitor: v.Monitor,
		OpenedAt: timestamppb.New(now),
	}
	if w.source != "" {
		inc.AttackNetworks = []string{fraud.NetworkOf(w.source)}
	}
	if v.BlockFor > 0 {
		// Blocks and the suspension end then; 0: when resolved.
		inc.BlocksExpireAt = timestamppb.New(now.Add(v.BlockFor))
	}
	if !inc.Monitor {
		inc.Actions = slices.Clone(v.Actions)
		if slices.Contains(inc.Actions, fraud.ActionBlockDestinations) {
			for _, d := range v.Targets {
				if len(inc.BlockedDestinations) == maxBlockedPerIncident {
					break
				}
				if d = fraud.NormalizeDestination(d); !p.safe(d) {
					inc.BlockedDestinations = append(inc.BlockedDestinations, d)
				}
			}
		}
		if slices.Contains(inc.Actions, fraud.ActionTerminateInFlight) {
			for _, f := range m.order {
				if f.sender == s.key && !f.done && !f.refused && len(inc.TerminatedMessages) < maxTerminatedPerIncident {
					inc.TerminatedMessages = append(inc.TerminatedMessages, f.id)
				}
			}
		}
	}
	// The incident and its marker first: an incident is open when its
	// marker and record both exist (load drops a lone marker).
	for {
		m.seq++
		inc.Id = fmt.Sprintf("%013d-%03d", now.UnixMilli(), m.seq%1000)
		_, err := m.store().Put(t.ctx, fraudOpenKey(m.id, inc.Id), nil, persistence.MustNotExist)
		if err == nil {
			break
		}
		if !errors.Is(err, persistence.ErrConflict) {
			return nil, storeFailed(t, err, "incident")
		}
	}
	ver, err := putRecord(t.ctx, m.store(), fraudIncidentKey(m.id, inc.Id), inc, persistence.MustNotExist)
	if err != nil {
		return nil, storeFailed(t, err, "incident "+inc.Id)
	}
	cur := &versioned[*actorpb.Incident]{rec: inc, version: ver}
	stored := make([]*versioned[*actorpb.Block], 0, len(inc.BlockedDestinations))
	for _, d := range inc.BlockedDestinations {
		b := &actorpb.Block{Destination: d, ExpiresAt: inc.BlocksExpireAt, Incident: inc.Id}
		bv, err := putRecord(t.ctx, m.store(), fraudBlockKey(m.id, b.Device, b.Destination), b, persistence.AnyVersion)
		if err != nil {
			// The incident is stored; the blocks stored so far are kept
			// and the suspension holds. A retry of the check refuses.
			m.adopt(cur)
			m.keepBlocks(stored)
			return nil, storeFailed(t, err, "blocks of incident "+inc.Id)
		}
		stored = append(stored, &versioned[*actorpb.Block]{rec: b, version: bv})
	}
	// Stored: now they take effect.
	m.adopt(cur)
	m.keepBlocks(stored)
	m.sys.fraud.incidents.WithLabelValues(inc.Indicator).Inc()
	m.audit(t.ctx, inc, "incident.opened", true, fmt.Sprintf("%s %.0f >= %.0f (%s policy)", inc.Indicator, inc.Value, inc.Threshold, inc.PolicyLevel))
	m.event(t.ctx, "fraud.incident.opened", inc.Device, IncidentView(inc))
	for _, a := range inc.Actions {
		ok, detail := true, ""
		switch a {
		case fraud.ActionTerminateInFlight:
			detail = m.terminate(t, cur, s.key, now)
		case fraud.ActionResetCredentials:
			ok, detail = m.resetCredentials(t, cur, now)
		case fraud.ActionBlockDestinations:
			detail = fmt.Sprintf("%d destinations, until resolved", len(inc.BlockedDestinations))
			if inc.BlocksExpireAt != nil {
				detail = fmt.Sprintf("%d destinations until %s", len(inc.BlockedDestinations), inc.BlocksExpireAt.AsTime().Format(time.RFC3339))
			}
		case fraud.ActionRestore:
			ok, detail, _ = m.restore(t, cur)
		}
		m.sys.fraud.actions.WithLabelValues(a, map[bool]string{true: "ok", false: "failed"}[ok]).Inc()
		m.audit(t.ctx, inc, a, ok, detail)
		m.event(t.ctx, "fraud.action", inc.Device, map[string]any{"incident": inc.Id, "action": a, "ok": ok, "detail": detail})
	}
	if !inc.Monitor {
		m.contained(cur) // the message that tripped it
	}
	m.storeIncident(t.ctx, cur)
	return inc, nil
}

func (m *messaging) keepBlocks(bs []*versioned[*actorpb.Block]) {
	for _, b := range bs {
		m.blocks[fraudBlockKey(m.id, b.rec.Device, b.rec.Destination)] = b
	}
}

// terminate ends the sender's in-flight messages (their MessageDone
// answers CODE_CONFLICT) and drops its queued ones.
func (m *messaging) terminate(t *turn, inc *versioned[*actorpb.Incident], key string, now time.Time) string {
	n := len(inc.rec.TerminatedMessages)
	inc.rec.MessagesContained += uint32(n)
	dropped := 0
	for _, q := range m.queuedBy(key) {
		if err := m.dropQueued(t.ctx, q, 403, "terminated", now); err != nil {
			m.sys.log.Warn("dropping a queued message of a contained sender failed", "account", m.id, "message", q.id, "err", err)
			continue
		}
		dropped++
	}
	inc.rec.MessagesContained += uint32(dropped)
	return fmt.Sprintf("%d in flight terminated, %d queued dropped", n, dropped)
}

// queuedBy lists the queued messages of a sender (key as senderKey).
func (m *messaging) queuedBy(key string) []*queuedMeta {
	var out []*queuedMeta
	for _, q := range m.queued {
		if senderKey(q.sender, "") == key || "trunk."+q.sender == key {
			out = append(out, q)
		}
	}
	slices.SortFunc(out, func(a, b *queuedMeta) int { return strings.Compare(a.key, b.key) })
	return out
}

// resetCredentials asks the account actor for a new random secret for
// the device and its group for the removal of the device's bindings.
func (m *messaging) resetCredentials(t *turn, inc *versioned[*actorpb.Incident], now time.Time) (bool, string) {
	r := inc.rec
	if r.Device == "" {
		return false, "the sender is not a device"
	}
	res, err := m.sys.Request(t.ctx, KindAccount, m.id, &actorpb.ResetDeviceCredentials{Device: r.Device, Incident: r.Id})
	if err != nil {
		return false, "account did not answer: " + err.Error()
	}
	if rep, ok := res.(*actorpb.DeviceReply); !ok || rep.Error != nil {
		return false, fmt.Sprintf("account refused: %v", res)
	}
	r.CredentialsResetAt = timestamppb.New(now)
	detail := "new random secret"
	if r.Group != "" {
		// The bindings it had, for the restore path's check-sync NOTIFY.
		had, _ := m.sys.Request(t.ctx, KindDeviceGroup, deviceGroupIdentity(m.id, r.Group), &actorpb.LookupBindings{Device: r.Device})
		if rep, ok := had.(*actorpb.RegisterReply); ok && rep.Error == nil {
			r.RemovedBindings = rep.Bindings
		}
		res, err := m.sys.Request(t.ctx, KindDeviceGroup, deviceGroupIdentity(m.id, r.Group),
			&actorpb.Register{Device: r.Device, RemoveAll: true, CallId: "fraud-reset-" + r.Id, Cseq: 1, EdgeNode: m.sys.cfg.Node})
		if rep, ok := res.(*actorpb.RegisterReply); err != nil || !ok || rep.Error != nil {
			m.sys.log.Warn("removing a reset device's bindings failed", "account", m.id, "device", r.Device, "err", err, "reply", res)
			m.audit(t.ctx, r, "remove_bindings", false, fmt.Sprintf("%v %v", err, res))
		} else {
			detail += "; bindings removed"
		}
	}
	return true, detail
}

// storeIncident writes an incident again (counts, actions' results).
func (m *messaging) storeIncident(ctx context.Context, inc *versioned[*actorpb.Incident]) {
	v, err := putRecord(ctx, m.store(), fraudIncidentKey(m.id, inc.rec.Id), inc.rec, inc.version)
	if err != nil {
		m.sys.log.Warn("storing an incident failed; retried later", "account", m.id, "incident", inc.rec.Id, "err", err)
		m.dirty[inc.rec.Id] = true
		if errors.Is(err, persistence.ErrConflict) {
			// Another writer: take its version on the next load.
			if cur, e := loadOne[*actorpb.Incident](ctx, m.store(), fraudIncidentKey(m.id, inc.rec.Id)); e == nil && cur != nil {
				inc.version = cur.version
			}
		}
		return
	}
	inc.version = v
	delete(m.dirty, inc.rec.Id)
}

// audit appends one line to the account's fraud audit log.
func (m *messaging) audit(ctx context.Context, inc *actorpb.Incident, action string, ok bool, detail string) {
	now := m.sys.cfg.Clock.Now()
	e := &actorpb.AuditEntry{At: timestamppb.New(now), Incident: inc.GetId(), Action: action, Device: inc.GetDevice(), Detail: detail, Node: m.sys.cfg.Node, Ok: ok}
	for range 8 {
		m.seq++
		key := fmt.Sprintf("%s%019d-%06d", fraudAuditPrefix(m.id), now.UnixNano(), m.seq%1000000)
		_, err := putRecord(ctx, m.store(), key, e, persistence.MustNotExist)
		if errors.Is(err, persistence.ErrConflict) {
			continue
		}
		if err != nil {
			m.sys.log.Warn("appending to the fraud audit log failed", "account", m.id, "incident", inc.GetId(), "action", action, "err", err)
		}
		return
	}
}

// incident returns the incident id of this account.
func (m *messaging) incident(t *turn, id string) (*versioned[*actorpb.Incident], *actorpb.Error) {
	if !ValidID(id) {
		return nil, invalid("id", "%q is not an incident id", id)
	}
	if inc, ok := m.open[id]; ok {
		return inc, nil
	}
	inc, err := loadOne[*actorpb.Incident](t.ctx, m.store(), fraudIncidentKey(m.id, id))
	if err != nil {
		return nil, unavailable("reading incident %s: %v", id, err)
	}
	if inc == nil {
		return nil, notFound("incident", "incident %q not found in account %q", id, m.id)
	}
	return inc, nil
}

// Paging bounds for ListIncidents.
const (
	defaultIncidentPage = 50
	maxIncidentPage     = 500
)

// listIncidents pages incidents by id (oldest first: ids begin with the
// opening time); open ones come from memory, the others from the store.
func (m *messaging) listIncidents(t *turn, r *actorpb.ListIncidents) proto.Message {
	if r.State != "" && r.State != incidentOpen && r.State != incidentResolved {
		return &actorpb.IncidentListReply{Error: invalid("state", "state must be \"open\", \"resolved\" or empty, not %q", r.State)}
	}
	limit := pageSize(r.Limit, defaultIncidentPage, maxIncidentPage)
	out := &actorpb.IncidentListReply{}
	if r.State == incidentOpen {
		for _, id := range sortedKeys(m.open) {
			if id <= r.After {
				continue
			}
			if len(out.Incidents) == limit {
				out.Next = out.Incidents[limit-1].Id
				break
			}
			out.Incidents = append(out.Incidents, m.open[id].rec)
		}
		return out
	}
	after := scanFrom(fraudIncidentPrefix(m.id), r.After)
	for {
		page, err := m.store().Scan(t.ctx, fraudIncidentPrefix(m.id), after, limit+1)
		if err != nil {
			return &actorpb.IncidentListReply{Error: unavailable("listing incidents: %v", err)}
		}
		for _, it := range page {
			after = it.Key
			v, err := decodeItem[*actorpb.Incident](it)
			if err != nil {
				return &actorpb.IncidentListReply{Error: unavailable("%v", err)}
			}
			if o, ok := m.open[v.rec.Id]; ok {
				v = o // the current counts
			}
			if r.State != "" && v.rec.State != r.State {
				continue
			}
			if len(out.Incidents) == limit {
				out.Next = out.Incidents[limit-1].Id
				return out
			}
			out.Incidents = append(out.Incidents, v.rec)
		}
		if len(page) <= limit {
			return out
		}
	}
}

// resolve closes an open incident: its blocks are lifted and its sender's
// suspension ends. Resolving a resolved incident answers it unchanged.
func (m *messaging) resolve(t *turn, r *actorpb.ResolveIncident, now time.Time) proto.Message {
	inc, e := m.incident(t, r.Id)
	if e != nil {
		return &actorpb.IncidentReply{Error: e}
	}
	if inc.rec.State != incidentOpen {
		return &actorpb.IncidentReply{Incident: inc.rec}
	}
	rec := proto.Clone(inc.rec).(*actorpb.Incident)
	rec.State, rec.ResolvedAt = incidentResolved, timestamppb.New(now)
	if _, err := putRecord(t.ctx, m.store(), fraudIncidentKey(m.id, rec.Id), rec, inc.version); err != nil {
		return &actorpb.IncidentReply{Error: storeFailed(t, err, "incident "+rec.Id)}
	}
	// Resolved in the store: the blocks and the marker go after; a failure
	// leaves blocks that expire by themselves, and a marker load drops.
	lifted := 0
	for k, b := range m.blocks {
		if b.rec.Incident != rec.Id {
			continue
		}
		if err := m.store().Delete(t.ctx, k, b.version); err != nil && !errors.Is(err, persistence.ErrNotFound) {
			m.sys.log.Warn("lifting a block failed; it expires by itself", "account", m.id, "incident", rec.Id, "key", k, "err", err)
		}
		delete(m.blocks, k)
		lifted++
	}
	if err := m.store().Delete(t.ctx, fraudOpenKey(m.id, rec.Id), persistence.AnyVersion); err != nil && !errors.Is(err, persistence.ErrNotFound) {
		m.sys.log.Warn("removing an incident's open marker failed; dropped on next load", "account", m.id, "incident", rec.Id, "err", err)
	}
	delete(m.open, rec.Id)
	delete(m.dirty, rec.Id)
	if m.bySender[senderKey(rec.Device, rec.Trunk)] == rec.Id {
		delete(m.bySender, senderKey(rec.Device, rec.Trunk))
	}
	for _, id := range rec.TerminatedMessages {
		delete(m.killed, id)
	}
	if s, ok := m.senders[senderKey(rec.Device, rec.Trunk)]; ok {
		s.det.Reset() // the rightful user starts afresh
		s.pending = nil
	}
	m.audit(t.ctx, rec, "incident.resolved", true, fmt.Sprintf("%d blocks lifted", lifted))
	m.event(t.ctx, "fraud.incident.resolved", rec.Device, IncidentView(rec))
	return &actorpb.IncidentReply{Incident: rec}
}

// ---- messages in flight ----

// done ends a message in flight: its record is written, the outcome fed
// to the detector, and a terminated message answered CODE_CONFLICT.
func (m *messaging) done(t *turn, r *actorpb.MessageDone, now time.Time) proto.Message {
	if r.MessageId == "" {
		return &actorpb.MessageDoneReply{Error: invalid("message_id", "message_id is required")}
	}
	f, ok := m.inflight[r.MessageId]
	if ok {
		delete(m.inflight, r.MessageId)
		f.done = true
	}
	incID, killed := m.killed[r.MessageId]
	rec := &actorpb.MessageRecord{
		Id: r.MessageId, Account: m.id, Status: r.Status, Disposition: r.Disposition,
		Node: r.Node, Target: r.Target, EndedAt: timestamppb.New(now),
	}
	if f != nil {
		rec.Sender, rec.Destination, rec.ReceivedAt = strings.TrimPrefix(strings.TrimPrefix(f.sender, "dev."), "trunk."), f.destination, timestamppb.New(f.at)
	}
	if killed {
		rec.Disposition = "terminated"
	}
	// Written behind (writebehind.go): the message has had its final
	// answer, nobody waits for its record, and one store write per
	// message in this mailbox would cap the account's message rate.
	if err := m.sys.records.put(messageRecordKey(m.id, r.MessageId), rec); err != nil {
		return &actorpb.MessageDoneReply{Error: unavailable("encoding the record of message %s failed: %v", r.MessageId, err)}
	}
	if f != nil && !f.refused && !killed && (r.Disposition == "delivered" || r.Disposition == "failed") {
		m.outcome(t, f, r.Disposition == "failed", now)
	}
	if killed {
		delete(m.killed, r.MessageId)
		return &actorpb.MessageDoneReply{Error: conflict("message_id", "message %s was terminated by fraud incident %s; do not deliver it", r.MessageId, incID)}
	}
	return &actorpb.MessageDoneReply{}
}

// outcome feeds a delivery's result to the sender's failure ratio, which
// may reach critical by itself (SMS pumping: most messages fail).
func (m *messaging) outcome(t *turn, f *inflightMsg, failed bool, now time.Time) {
	s, ok := m.senders[f.sender]
	if !ok {
		return
	}
	p, err := m.policyFor(f.group, f.device)
	if err != nil {
		return
	}
	v := s.det.Outcome(&p.p, now, failed)
	if v.Folded {
		m.folded(t.ctx, s)
	}
	if v.Level == fraud.LevelCritical {
		w := who{device: f.device, group: f.group}
		if f.device == "" {
			w.trunk = strings.TrimPrefix(f.sender, "trunk.")
		}
		if _, e := m.critical(t, w, s, p, v, now); e != nil {
			m.sys.log.Warn("opening an incident from a delivery outcome failed", "account", m.id, "sender", f.sender, "err", e.Message)
		}
	}
}

// ---- maintenance ----

// maintain runs, at most every maintainEvery and from a message, what
// time makes due: in-flight entries without an end are forgotten, queued
// messages past their time dropped, expired blocks deleted, and dirty
// histories and incidents stored. It loops over the account's state, but
// once a minute at most.
func (m *messaging) maintain(t *turn, now time.Time) {
	if now.Sub(m.swept) < maintainEvery {
		return
	}
	m.swept = now
	i := 0
	for i < len(m.order) && (m.order[i].done || now.Sub(m.order[i].at) >= inflightTTL) {
		if f := m.order[i]; !f.done && m.inflight[f.id] == f {
			delete(m.inflight, f.id)
		}
		i++
	}
	m.order = slices.Clone(m.order[i:])
	for _, q := range m.queued {
		if !now.Before(q.expires) {
			if err := m.dropQueued(t.ctx, q, 408, "expired", now); err != nil {
				m.sys.log.Warn("dropping an expired queued message failed; retried later", "account", m.id, "message", q.id, "err", err)
			}
		}
	}
	for k, b := range m.blocks {
		if b.rec.ExpiresAt != nil && !now.Before(b.rec.ExpiresAt.AsTime()) {
			if err := m.store().Delete(t.ctx, k, b.version); err == nil || errors.Is(err, persistence.ErrNotFound) {
				delete(m.blocks, k)
			}
		}
	}
	m.flush(t.ctx)
}

// flush stores the incident counts that changed in memory only.
func (m *messaging) flush(ctx context.Context) {
	for id := range m.dirty {
		if inc, ok := m.open[id]; ok {
			m.storeIncident(ctx, inc)
		} else {
			delete(m.dirty, id)
		}
	}
}

// passivating folds the senders' current hour into their histories and
// stores them, and the incident counts, before the activation stops (the
// shell calls it). A crash loses at most the current hour's learning.
func (m *messaging) passivating(ctx context.Context) {
	if !m.exists {
		return
	}
	for _, s := range m.senders {
		if s.policy != nil {
			s.det.Flush(&s.policy.p)
			for _, h := range s.hist {
				if h != nil {
					h.dirty = true
				}
			}
		}
	}
	for _, h := range m.histories {
		m.storeHistory(ctx, h)
	}
	m.flush(ctx)
}

func (m *messaging) debug(context.Context) proto.Message {
	out := &actorpb.IncidentListReply{}
	for _, id := range sortedKeys(m.open) {
		out.Incidents = append(out.Incidents, m.open[id].rec)
	}
	return out
}
