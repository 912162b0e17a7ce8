package gossip

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// Status is a member's state as this node sees it.
type Status string

const (
	// StatusAlive: memberlist counts the member alive and its load reports
	// arrive.
	StatusAlive Status = "alive"
	// StatusSuspect: memberlist still counts the member alive, but no load
	// report from it has arrived for Config.SuspectAfter. (memberlist v0.7.0
	// has no race-free way to read its own suspect state; see doc.go.)
	StatusSuspect Status = "suspect"
	// StatusDead: memberlist declared the member failed.
	StatusDead Status = "dead"
	// StatusLeft: the member announced that it leaves (Leave).
	StatusLeft Status = "left"
)

// Member is one node as this node sees it.
type Member struct {
	ID     string // memberlist node name = the node's actor system id (new per process)
	Addr   string // gossip host:port
	Meta   Meta
	Status Status
	Load   Load      // the latest load report; zero if none arrived
	LoadAt time.Time // when this node received that report (local clock); zero if never
	SeenAt time.Time // last time memberlist told us anything about it, or a load report arrived
	Local  bool      // this is the node itself
}

// nodeEvent is a copy of what memberlist said about a node, taken inside its
// event callback: the only place its Node fields can be read without racing
// memberlist's in-place updates.
type nodeEvent struct {
	ID    string
	Addr  string
	Meta  []byte
	State Status // StatusAlive (join, update) or StatusDead (failed or left)
}

// table is the member table: a state machine fed with memberlist events,
// load reports and clock ticks, each carrying the time. It does no I/O,
// starts no goroutine, reads no clock and is not safe for concurrent use.
type table struct {
	self         string
	suspectAfter time.Duration // 0: never suspect
	retention    time.Duration // how long dead/left members stay
	entries      map[string]*entry
}

type entry struct {
	id, addr string
	meta     Meta
	listed   bool      // memberlist told us about it (else: only a load report arrived)
	reported Status    // the last state memberlist reported: alive or dead (gone)
	leaving  bool      // its latest load report announced that it leaves
	status   Status    // what Members shows
	statusAt time.Time // when status last changed
	aliveAt  time.Time // when reported last became alive
	seenAt   time.Time

	report    loadReport
	hasReport bool
	loadAt    time.Time
	syncAt    time.Time // last state sync started with it while unlisted
}

func newTable(self string, suspectAfter, retention time.Duration) *table {
	return &table{self: self, suspectAfter: suspectAfter, retention: retention, entries: make(map[string]*entry)}
}

func (t *table) entry(id string) *entry {
	e, ok := t.entries[id]
	if !ok {
		e = &entry{id: id}
		t.entries[id] = e
	}
	return e
}

// observe applies a memberlist event. changed reports a change of
// membership, status, address or metadata; metaErr is set when the member's
// metadata could not be decoded (its previous Meta is kept).
func (t *table) observe(ev nodeEvent, now time.Time) (changed bool, metaErr error) {
	e := t.entry(ev.ID)
	changed = !e.listed || e.addr != ev.Addr
	e.listed = true
	e.addr = ev.Addr
	e.seenAt = now
	if m, err := DecodeMeta(ev.Meta); err != nil {
		metaErr = err
	} else if m != e.meta {
		e.meta = m
		changed = true
	}
	if ev.State == StatusAlive && e.reported != StatusAlive {
		e.aliveAt = now
	}
	e.reported = ev.State
	if t.refresh(e, now) {
		changed = true
	}
	return changed, metaErr
}

// applyReport keeps r if it is newer than the report held for its sender.
// It never takes a report about this node from others. statusChanged is set
// when the report brought a suspect member back to alive.
func (t *table) applyReport(r loadReport, now time.Time) (newer, statusChanged bool) {
	if r.ID == t.self {
		return false, false
	}
	e := t.entry(r.ID)
	if e.hasReport && !r.newerThan(e.report) {
		return false, false
	}
	e.report, e.hasReport, e.loadAt, e.seenAt = r, true, now, now
	e.leaving = r.Leaving
	return true, e.listed && t.refresh(e, now)
}

// setLocal records this node's own latest report; it tells whether the
// node's status changed (a report that announces leaving).
func (t *table) setLocal(r loadReport, now time.Time) (changed bool) {
	e := t.entry(t.self)
	e.report, e.hasReport, e.loadAt = r, true, now
	e.leaving = r.Leaving
	return e.listed && t.refresh(e, now)
}

// setLocalMeta records this node's own metadata ahead of memberlist's
// update event.
func (t *table) setLocalMeta(m Meta) (changed bool) {
	e := t.entry(t.self)
	changed = e.meta != m
	e.meta = m
	return changed
}

// strangers returns the gossip addresses of nodes whose load reports
// arrive (one within window) although memberlist has not announced them,
// each at most once per retry. memberlist would learn of them at its next
// push-pull (15-30s); a push-pull with them now closes the gap.
func (t *table) strangers(now time.Time, window, retry time.Duration) []string {
	var addrs []string
	for _, e := range t.entries {
		if e.listed || !e.hasReport || e.report.Addr == "" || now.Sub(e.loadAt) > window {
			continue
		}
		if !e.syncAt.IsZero() && now.Sub(e.syncAt) < retry {
			continue
		}
		e.syncAt = now
		addrs = append(addrs, e.report.Addr)
	}
	slices.Sort(addrs)
	return addrs
}

// tick recomputes suspicion and forgets dead and left members older than
// the retention, and load reports of nodes memberlist never named.
func (t *table) tick(now time.Time) (changed bool) {
	for id, e := range t.entries {
		if id == t.self {
			continue
		}
		if !e.listed {
			if now.Sub(e.loadAt) > t.retention {
				delete(t.entries, id)
			}
			continue
		}
		if t.refresh(e, now) {
			changed = true
		}
		if (e.status == StatusDead || e.status == StatusLeft) && now.Sub(e.statusAt) > t.retention {
			delete(t.entries, id)
			changed = true
		}
	}
	return changed
}

// refresh recomputes e.status; it tells whether it changed.
func (t *table) refresh(e *entry, now time.Time) bool {
	s := e.reported
	switch {
	case e.leaving:
		s = StatusLeft
	case s == StatusAlive && e.id != t.self && t.suspectAfter > 0:
		last := e.aliveAt
		if e.loadAt.After(last) {
			last = e.loadAt
		}
		if now.Sub(last) > t.suspectAfter {
			s = StatusSuspect
		}
	}
	if s == e.status {
		return false
	}
	e.status, e.statusAt = s, now
	return true
}

// reports returns every load report held, this node's included, for
// push-pull.
func (t *table) reports() []loadReport {
	var rs []loadReport
	for _, e := range t.entries {
		if e.hasReport {
			rs = append(rs, e.report)
		}
	}
	slices.SortFunc(rs, func(a, b loadReport) int { return cmp.Compare(a.ID, b.ID) })
	return rs
}

// numAlive counts the members memberlist reports alive (suspects included),
// this node included.
func (t *table) numAlive() int {
	n := 0
	for _, e := range t.entries {
		if e.listed && e.reported == StatusAlive {
			n++
		}
	}
	return n
}

// local returns this node's entry as a Member.
func (t *table) local() Member {
	return t.member(t.entry(t.self))
}

// members returns every listed member, sorted by ID, sharing nothing with
// the table.
func (t *table) members() []Member {
	ms := make([]Member, 0, len(t.entries))
	for _, e := range t.entries {
		if e.listed {
			ms = append(ms, t.member(e))
		}
	}
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return ms
}

func (t *table) member(e *entry) Member {
	m := Member{
		ID:     e.id,
		Addr:   e.addr,
		Meta:   e.meta,
		Status: e.status,
		SeenAt: e.seenAt,
		Local:  e.id == t.self,
	}
	if e.hasReport {
		m.Load = e.report.Load.clone()
		m.LoadAt = e.loadAt
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
