package fraud

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// Kind is what a checked request is: the indicators apply to both.
type Kind uint8

const (
	// KindMessage is a SIP MESSAGE (RFC 3428).
	KindMessage Kind = iota
	// KindCall is an initial INVITE (toll fraud).
	KindCall
)

// Event is one request from a sender, as the detector sees it.
type Event struct {
	Kind Kind
	// Account, Group and Device name the sender; the detector keys nothing
	// on them (the caller keeps one Sender per device) but copies nothing
	// either: they are for the caller's records.
	Account, Group, Device string
	// Destination is the request-URI user: a number or a device id.
	Destination string
	// Internal is true when the destination is a device of the same
	// account (no cost, no country): destination_risk and
	// sequential_destinations skip it.
	Internal bool
	// BodyHash is BodyHash(body); 0 for a call or no body.
	BodyHash uint64
	// Network is NetworkOf(the request's source); UserAgent its
	// User-Agent header.
	Network, UserAgent string
	// Time is when the request arrived: the detector has no clock.
	Time time.Time
}

// Level is how serious a verdict is.
type Level uint8

// Levels, in increasing order.
const (
	LevelOK Level = iota
	LevelWarning
	LevelThrottle
	LevelCritical
)

var levelNames = [...]string{"ok", "warning", "throttle", "critical"}

func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Verdict is the detector's answer for one request or outcome.
type Verdict struct {
	Level Level `json:"level"`
	// Indicator is the indicator that set Level (the first of the
	// highest level), SafeListed or BlockedDestination; "" when nothing
	// fired.
	Indicator string `json:"indicator,omitempty"`
	// Scope is "device", "group" or "account" for history_deviation.
	Scope string `json:"scope,omitempty"`
	// Value is the indicator's value and Threshold the threshold it
	// reached (after day/time windows and history headroom).
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Monitor is true when monitor mode kept this verdict from acting:
	// Level says what would have happened.
	Monitor bool `json:"monitor,omitempty"`
	// Refuse: answer 403 (critical, or a blocked country).
	Refuse bool `json:"refuse,omitempty"`
	// Throttle: answer 503 with Retry-After.
	Throttle bool `json:"throttle,omitempty"`
	// Actions are the policy's actions to carry out (at critical, not in
	// monitor mode), in order: terminate_in_flight, reset_credentials,
	// block_destinations, restore.
	Actions []string `json:"actions,omitempty"`
	// Targets are the destinations of the incident window, to block for
	// BlockFor (0: until the incident is resolved) when Actions holds
	// block_destinations. Only numbers are listed.
	Targets  []string      `json:"targets,omitempty"`
	BlockFor time.Duration `json:"block_for,omitempty"`
	// Folded is true when the device's History took the last hour's
	// aggregates: persist it.
	Folded bool `json:"-"`
}

// Decision is what the edge does with the request: "deliver", "throttle"
// or "refuse" (the CheckReply verdict).
func (v Verdict) Decision() string {
	switch {
	case v.Refuse:
		return "refuse"
	case v.Throttle:
		return "throttle"
	}
	return "deliver"
}

// Action names, as in Verdict.Actions and incidents.
const (
	ActionTerminateInFlight = "terminate_in_flight"
	ActionResetCredentials  = "reset_credentials"
	ActionBlockDestinations = "block_destinations"
	ActionRestore           = "restore"
)

// Sender is the detector state of one sender (a device, or a trunk): the
// sliding windows of its indicators, its recent destinations and bodies,
// and the current hour's aggregates, in fixed memory (SenderBytes, whatever
// it sends). Device, Group and Account are its histories, which the caller
// loads and persists; Group and Account may be shared by the Senders of
// one account, and may be nil (their deviation is then not checked); a nil
// Device is created on first use. Not safe for concurrent use.
type Sender struct {
	Device, Group, Account *History

	rate, burst, distinct, risk, newSrc, lastHour, outcomes, failures window

	dests  [maxDests]destEntry
	ndests int
	bodies [maxBodies]bodyEntry

	hour    int64 // the unix hour acc is for; 0 before the first event
	acc     Peaks32
	msgs    float32
	srcs    [maxHourSources]source
	nsrcs   int
	tainted bool // an incident in this hour: it is not learned
}

const (
	maxDests       = 64 // recent destinations kept (least recent evicted)
	maxBodies      = 8  // recent bodies kept
	maxHourSources = 4  // sources learned per hour at most
)

type destEntry struct {
	num    uint64
	hash   uint32
	body   uint32
	last   uint32 // unix seconds
	chain  float32
	digits uint8
}

type bodyEntry struct {
	hash uint32
	last uint32
	w    window
}

// NewSender returns a Sender over the given histories; a nil one is
// replaced by an empty History of the default retention.
func NewSender(device, group, account *History) *Sender {
	fill := func(h *History) *History {
		if h == nil {
			return NewHistory(defaultRetention)
		}
		return h
	}
	return &Sender{Device: fill(device), Group: fill(group), Account: fill(account)}
}

const defaultRetention = 28

// icfg is one indicator's configuration at one moment.
type icfg struct {
	on                   bool
	warn, thr, crit      float64 // +Inf when unset
	window, known, count float64
}

// or is *p, or d when p is nil.
func or[T any](p *T, d T) T {
	if p == nil {
		return d
	}
	return *p
}

func (p *Policy) cfg(i int, local time.Time) icfg {
	in := p.Indicators.list()[i]
	inf := math.Inf(1)
	c := icfg{on: in.Enabled != nil && *in.Enabled, warn: or(in.Warning, inf), thr: or(in.Throttle, inf),
		crit: or(in.Critical, inf), window: or(in.WindowSeconds, 600),
		known: or(in.KnownWeight, or(p.History.KnownDestinationWeight, 1)), count: or(in.MinCount, 0)}
	for _, s := range in.Schedules {
		if !s.matches(local) {
			continue
		}
		if s.Enabled != nil {
			c.on = *s.Enabled
		}
		c.warn, c.thr, c.crit = or(s.Warning, c.warn), or(s.Throttle, c.thr), or(s.Critical, c.crit)
		break
	}
	return c
}

func (c icfg) level(v float64) Level {
	switch {
	case v >= c.crit:
		return LevelCritical
	case v >= c.thr:
		return LevelThrottle
	case v >= c.warn:
		return LevelWarning
	}
	return LevelOK
}

func (c icfg) threshold(l Level) float64 {
	switch l {
	case LevelCritical:
		return c.crit
	case LevelThrottle:
		return c.thr
	}
	return c.warn
}

// scale raises the thresholds to at least floor (history headroom).
func (c *icfg) scale(floor float64) {
	c.warn, c.thr, c.crit = max(c.warn, floor), max(c.thr, floor), max(c.crit, floor)
}

// matches tells whether local (the time in the policy's offset) is in s.
func (s Schedule) matches(local time.Time) bool {
	if len(s.Days) > 0 && !slices.ContainsFunc(s.Days, func(d string) bool {
		wd, known := weekdays[d]
		return known && time.Weekday(wd) == local.Weekday()
	}) {
		return false
	}
	from, ok1 := clockMinutes(s.From)
	to, ok2 := clockMinutes(s.To)
	if !ok1 || !ok2 {
		return false
	}
	m := local.Hour()*60 + local.Minute()
	if from < to {
		return m >= from && m < to
	}
	return m >= from || m < to
}

// Check scores one request from this sender at ev.Time under the merged
// policy p (Merge's result) and updates the sender's state. At critical
// (not in monitor mode) the sender's windows are emptied, as containment
// ends the incident, and the hour is not learned into the history.
func (s *Sender) Check(p *Policy, ev Event) Verdict {
	if s.Device == nil {
		s.Device = NewHistory(or(p.History.RetentionDays, 0))
	}
	v := Verdict{Folded: s.roll(p, ev.Time)}
	d := parseDest(ev.Destination)
	if matchAny(d.text, p.SafeList) {
		v.Indicator = SafeListed
		return v
	}
	now, sec := ev.Time.UnixNano(), uint32(ev.Time.Unix())
	local := ev.Time.UTC().Add(time.Duration(or(p.UTCOffsetMinutes, 0)) * time.Minute)
	var c [nIndicators]icfg
	for i := range c {
		c[i] = p.cfg(i, local)
	}
	known := s.Device.knowsDest(d.hash)
	w := func(i int) float64 {
		if known {
			return c[i].known
		}
		return 1
	}
	e := s.find(d.hash)
	var val [nIndicators]float64

	val[iRate] = s.rate.add(now, widthOf(60), w(iRate))
	val[iBurst] = s.burst.add(now, widthOf(1), w(iBurst))

	dw := widthOf(c[iDistinct].window)
	if e == nil || float64(sec-e.last) >= c[iDistinct].window {
		s.distinct.add(now, dw, w(iDistinct))
	}
	val[iDistinct] = s.distinct.sum(now, dw)

	body := uint32(ev.BodyHash) ^ uint32(ev.BodyHash>>32)
	if ev.BodyHash != 0 {
		bw := widthOf(c[iSameBody].window)
		b := s.bodySlot(body, sec)
		if e == nil || e.body != body || float64(sec-e.last) >= c[iSameBody].window {
			b.w.add(now, bw, w(iSameBody))
		}
		val[iSameBody] = b.w.sum(now, bw)
	}

	riskW, blocked := destinationRisk(p, d, ev.Internal)
	rw := widthOf(c[iRisk].window)
	if riskW > 0 {
		s.risk.add(now, rw, riskW*w(iRisk))
	}
	val[iRisk] = s.risk.sum(now, rw)

	var chain float32
	if d.isNum && !ev.Internal {
		if e != nil && float64(sec-e.last) < c[iSeq].window {
			chain = e.chain
		} else {
			chain = s.chainTo(d, sec, c[iSeq].window, or(p.History.SequentialGap, 0)) + float32(w(iSeq))
		}
	}
	val[iSeq] = float64(chain)

	nw := widthOf(c[iNewSource].window)
	netH, uaH := hash32(ev.Network), hash32(ev.UserAgent)
	if !known {
		kn, ka, anyKnown := s.Device.knowsSource(netH, uaH)
		nov := 0.0
		switch {
		case !anyKnown, kn && ka:
		case !kn && !ka:
			nov = 1
		default:
			nov = or(p.History.NewSourcePartialWeight, 0.25)
		}
		if nov > 0 {
			s.newSrc.add(now, nw, nov)
		}
	}
	val[iNewSource] = s.newSrc.sum(now, nw)

	// The expected hour: the floor, the same hour of earlier weeks, or
	// the busiest hour retained, whichever is most.
	peak := s.Device.Peak(ev.Time)
	sigmas := or(p.History.Sigmas, 3)
	expected, _ := s.Device.Expected(ev.Time, sigmas)
	val[iDeviation] = s.lastHour.add(now, widthOf(3600), w(iDeviation)) / max(or(p.History.FloorPerHour, 20), expected, peak.PerHour)

	val[iFailure] = s.failureRatio(now, c[iFailure])

	// History headroom: a sender is judged against its own peaks.
	head := or(p.History.Headroom, 0)
	c[iRate].scale(head * peak.PerMinute)
	c[iBurst].scale(head * peak.PerSecond)
	c[iDistinct].scale(head * peak.Distinct)
	c[iSameBody].scale(head * peak.SameBody)

	for i := range c {
		if !c[i].on {
			continue
		}
		if l := c[i].level(val[i]); l > v.Level {
			v.Level, v.Indicator, v.Value, v.Threshold = l, indicatorNames[i], val[i], c[i].threshold(l)
			if i == iDeviation {
				v.Scope = "device"
			}
		}
	}
	if c[iDeviation].on && v.Level < LevelWarning {
		dev := c[iDeviation]
		for _, lv := range []struct {
			scope string
			h     *History
			floor float64
		}{{"group", s.Group, or(p.History.GroupFloorPerHour, 200)}, {"account", s.Account, or(p.History.AccountFloorPerHour, 1000)}} {
			if lv.h == nil {
				continue
			}
			exp, _ := lv.h.Expected(ev.Time, sigmas)
			x := (lv.h.Current(ev.Time) + w(iDeviation)) / max(lv.floor, exp)
			if dev.level(x) >= LevelWarning { // a surge of many senders warns; it does not contain one
				v.Level, v.Indicator, v.Scope, v.Value, v.Threshold = LevelWarning, HistoryDeviation, lv.scope, x, dev.warn
				break
			}
		}
	}

	s.remember(d, sec, body, chain)
	s.acc = s.acc.max(Peaks32{float32(val[iRate]), float32(val[iBurst]), float32(val[iDistinct]), float32(val[iSameBody]), 0})
	s.noteSource(netH, uaH)
	if blocked && v.Level < LevelCritical && v.Indicator == "" {
		v.Indicator = BlockedDestination
	}
	s.finish(p, &v, sec)
	if blocked && !v.Monitor {
		v.Refuse = true
	}
	if !v.Refuse && !v.Throttle {
		s.msgs += float32(w(iDeviation))
		for _, h := range [2]*History{s.Group, s.Account} {
			if h != nil {
				h.Observe(ev.Time, w(iDeviation))
			}
		}
	}
	return v
}

// Outcome feeds the delivery result of one of the sender's messages at
// (failed: a 4xx/5xx final answer from the gateway or device) to the
// failure-ratio indicator, whose verdict it returns.
func (s *Sender) Outcome(p *Policy, at time.Time, failed bool) Verdict {
	v := Verdict{Folded: s.roll(p, at)}
	now := at.UnixNano()
	local := at.UTC().Add(time.Duration(or(p.UTCOffsetMinutes, 0)) * time.Minute)
	c := p.cfg(iFailure, local)
	width := widthOf(c.window)
	s.outcomes.add(now, width, 1)
	if failed {
		s.failures.add(now, width, 1)
	}
	if x := s.failureRatio(now, c); c.on {
		if l := c.level(x); l > LevelOK {
			v.Level, v.Indicator, v.Value, v.Threshold = l, FailureRatio, x, c.threshold(l)
		}
	}
	s.finish(p, &v, uint32(at.Unix()))
	return v
}

func (s *Sender) failureRatio(now int64, c icfg) float64 {
	width := widthOf(c.window)
	n := s.outcomes.sum(now, width)
	if n < max(c.count, 1) {
		return 0
	}
	return s.failures.sum(now, width) / n
}

// finish turns a level into the decision, and carries out containment of
// the sender's state at critical.
func (s *Sender) finish(p *Policy, v *Verdict, sec uint32) {
	if p.Monitor != nil && *p.Monitor {
		v.Monitor = v.Level > LevelOK
		return
	}
	switch v.Level {
	case LevelThrottle:
		v.Throttle = true
	case LevelCritical:
		v.Refuse = true
		a := p.Actions
		for _, x := range []struct {
			on   *bool
			name string
		}{{a.TerminateInFlight, ActionTerminateInFlight}, {a.ResetCredentials, ActionResetCredentials},
			{a.BlockDestinations, ActionBlockDestinations}, {a.Restore, ActionRestore}} {
			if x.on != nil && *x.on {
				v.Actions = append(v.Actions, x.name)
			}
		}
		if a.BlockDestinations != nil && *a.BlockDestinations {
			win := uint32(max(or(a.IncidentWindowSeconds, 0), 1))
			for _, e := range s.dests[:s.ndests] {
				if e.digits > 0 && sec-e.last < win {
					v.Targets = append(v.Targets, "+"+strconv.FormatUint(e.num, 10))
				}
			}
			v.BlockFor = time.Duration(or(a.BlockExpirySeconds, 0)) * time.Second
		}
		// Containment: the incident ends here; the rightful user starts
		// afresh once restored.
		s.Reset()
	}
}

// Reset forgets the sender's windows and keeps the current hour out of
// the history (as at an incident's containment and after it is
// resolved), keeping its histories.
func (s *Sender) Reset() {
	*s = Sender{Device: s.Device, Group: s.Group, Account: s.Account, hour: s.hour, tainted: true}
}

// roll folds the finished hour into the device's history when t is in a
// later hour, and reports whether it did.
func (s *Sender) roll(p *Policy, t time.Time) bool {
	hr := unixHour(t)
	if s.hour == 0 {
		s.hour = hr
		return false
	}
	if hr <= s.hour {
		return false
	}
	s.fold(p)
	s.hour = hr
	return true
}

// Flush folds the current hour's aggregates into the device's history now
// (before the Sender is dropped, so nothing learned is lost); a later
// Check in the same hour keeps counting on top.
func (s *Sender) Flush(p *Policy) {
	if s.hour != 0 {
		s.fold(p)
	}
}

func (s *Sender) fold(p *Policy) {
	if s.Device == nil {
		s.Device = NewHistory(or(p.History.RetentionDays, 0))
	}
	for _, h := range [3]*History{s.Device, s.Group, s.Account} {
		if h != nil {
			h.SetRetention(or(p.History.RetentionDays, 0))
		}
	}
	start := time.Unix(s.hour*3600, 0)
	if !s.tainted {
		if s.msgs > 0 {
			s.Device.Observe(start, float64(s.msgs))
			s.acc.PerHour = s.msgs // s.acc is reset below
			s.Device.AddPeaks(start, s.acc.wide())
		}
		for _, src := range s.srcs[:s.nsrcs] {
			s.Device.learnSource(src.network, src.agent, s.hour)
		}
		day := unixDay(start)
		for _, e := range s.dests[:s.ndests] {
			if int64(e.last) >= s.hour*3600 {
				s.Device.learnDest(e.hash, day)
			}
		}
	}
	s.acc, s.msgs, s.nsrcs, s.tainted = Peaks32{}, 0, 0, false
}

func (s *Sender) find(hash uint32) *destEntry {
	if i := slices.IndexFunc(s.dests[:s.ndests], func(e destEntry) bool { return e.hash == hash }); i >= 0 {
		return &s.dests[i]
	}
	return nil
}

// remember records a message to d, evicting the least recent destination
// when the set is full.
func (s *Sender) remember(d dest, sec, body uint32, chain float32) {
	e := s.find(d.hash)
	if e == nil {
		if s.ndests < maxDests {
			e = &s.dests[s.ndests]
			s.ndests++
		} else {
			e = &s.dests[0]
			for i := range s.dests {
				if s.dests[i].last < e.last {
					e = &s.dests[i]
				}
			}
		}
		*e = destEntry{hash: d.hash}
		if d.isNum {
			e.num, e.digits = d.num, d.digits
		}
	}
	e.last, e.body, e.chain = sec, body, chain
}

// chainTo is the longest chain among recent numbers of d's length within
// gap of d (enumeration: +15550100, +15550101, ...).
func (s *Sender) chainTo(d dest, sec uint32, window float64, gap int) float32 {
	var best float32
	for _, e := range s.dests[:s.ndests] {
		if e.digits != d.digits || e.num == d.num || float64(sec-e.last) >= window {
			continue
		}
		if diff := max(e.num, d.num) - min(e.num, d.num); diff <= uint64(gap) && e.chain > best {
			best = e.chain
		}
	}
	return best
}

func (s *Sender) bodySlot(hash, sec uint32) *bodyEntry {
	oldest := &s.bodies[0]
	for i := range s.bodies {
		b := &s.bodies[i]
		if b.hash == hash && b.last != 0 {
			b.last = sec
			return b
		}
		if b.last < oldest.last {
			oldest = b
		}
	}
	*oldest = bodyEntry{hash: hash, last: sec}
	return oldest
}

func (s *Sender) noteSource(n, a uint32) {
	src := source{network: n, agent: a}
	if s.nsrcs < maxHourSources && !slices.Contains(s.srcs[:s.nsrcs], src) {
		s.srcs[s.nsrcs] = src
		s.nsrcs++
	}
}

// destinationRisk is what a message to d adds to destination_risk, and
// whether d's country is blocked.
func destinationRisk(p *Policy, d dest, internal bool) (float64, bool) {
	if internal || !d.isNum {
		return 0, false
	}
	dp := &p.Destinations
	perm := or(dp.DefaultCountry, CountryAllow)
	if len(dp.Countries) > 0 {
		if cc := countryCode(d.text[1:]); cc != "" {
			if x, ok := dp.Countries[cc]; ok {
				perm = x
			}
		}
	}
	if perm == CountryBlock {
		return 1, true
	}
	switch {
	case matchAny(d.text, dp.PremiumPrefixes):
		return or(dp.PremiumWeight, 1), false
	case matchAny(d.text, dp.HighCostPrefixes):
		return or(dp.HighCostWeight, 0.5), false
	case perm == CountryMonitor:
		return or(dp.MonitorWeight, 0.25), false
	}
	return 0, false
}
