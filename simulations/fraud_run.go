package simulations

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/fraud"
)

// Fraud report files in the output folder.
const (
	FraudFileJSON     = "fraud-report.json"
	FraudFileMarkdown = "fraud-report.md"
)

// Mode names in the fraud report.
const (
	FraudOurs     = "ours"
	FraudBaseline = "opensips_fixed_threshold"
)

// fraudEpoch is the simulation's time zero: a Monday, 00:00 UTC.
var fraudEpoch = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// FraudReport is fraud-report.json.
type FraudReport struct {
	Scenario       string                   `json:"scenario"`
	Seed           uint64                   `json:"seed"`
	Users          int                      `json:"users"`
	Compromised    int                      `json:"compromised"`
	Days           float64                  `json:"days"`
	HistoryDays    int                      `json:"history_days"`
	LegitMessages  int                      `json:"legit_messages"`
	AttackMessages int                      `json:"attack_messages_offered"`
	Modes          map[string]FraudMeasures `json:"modes"`
	Goals          FraudGoals               `json:"goals"`
	Notes          []string                 `json:"notes"`
}

// FraudGoals are issue 10's goals, checked for ours.
type FraudGoals struct {
	RecallAtLeast099         bool     `json:"recall_at_least_0_99"`
	AllContainedIn20And10s   bool     `json:"all_contained_within_20_messages_and_10s"`
	LegitBlockedAtMost01Pct  bool     `json:"legit_blocked_at_most_0_1_percent"`
	AheadOfBaselineEveryType bool     `json:"ahead_of_baseline_on_every_attack_type"`
	Shortfalls               []string `json:"shortfalls"`
}

// FraudMeasures are one detector's measures.
type FraudMeasures struct {
	// Precision and Recall are per sender: a sender flagged at critical
	// during its attack is a true positive; a sender flagged otherwise is
	// a false one; an attack never flagged is a miss.
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
	FlaggedSenders int     `json:"flagged_senders"`
	FalseIncidents int     `json:"false_incidents"`
	// FalseBy counts the false incidents by the indicator that raised them.
	FalseBy           map[string]int `json:"false_incidents_by,omitempty"`
	LegitBlocked      int            `json:"legit_messages_blocked"`
	LegitBlockedShare float64        `json:"legit_blocked_share"`
	// Leaked: attack messages delivered (before containment, or ever for
	// the baseline, which contains nothing). Prevented: attack messages
	// refused, or never sent because containment locked the attacker out.
	Leaked    int `json:"attack_messages_leaked"`
	Prevented int `json:"attack_messages_prevented"`
	// Detection delay of the detected attacks: attack messages up to and
	// including the one that detected it, and seconds from its start.
	DelayMessagesP50 float64 `json:"delay_messages_p50"`
	DelayMessagesP99 float64 `json:"delay_messages_p99"`
	DelaySecondsP50  float64 `json:"delay_seconds_p50"`
	DelaySecondsP99  float64 `json:"delay_seconds_p99"`
	// WithinGoal: attacks contained within 20 messages and 10 s of their
	// start (for the baseline: first refused within them; it never
	// contains).
	WithinGoal int                        `json:"attacks_within_20_messages_and_10s"`
	Within20   int                        `json:"attacks_within_20_messages"`
	PerAttack  map[string]*AttackMeasures `json:"per_attack"`
}

// AttackMeasures are the measures of one attack type.
type AttackMeasures struct {
	Attacks          int            `json:"attacks"`
	Detected         int            `json:"detected"`
	Recall           float64        `json:"recall"`
	DelayMessagesP50 float64        `json:"delay_messages_p50"`
	DelayMessagesP99 float64        `json:"delay_messages_p99"`
	DelaySecondsP50  float64        `json:"delay_seconds_p50"`
	DelaySecondsP99  float64        `json:"delay_seconds_p99"`
	Leaked           int            `json:"leaked"`
	LeakedMax        int            `json:"leaked_max"`
	WithinGoal       int            `json:"within_20_messages_and_10s"`
	Within20         int            `json:"within_20_messages"`
	Indicators       map[string]int `json:"indicators,omitempty"`
	delaysM, delaysS []float64
}

// RunFraud runs the fraud scenario with seed: the same workload through
// ours and the baseline.
func RunFraud(ctx context.Context, sc FraudScenario, seed uint64) (*FraudReport, error) {
	sc = sc.WithDefaults()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	w := genFraudWorkload(sc, seed)
	rep := &FraudReport{Scenario: sc.Name, Seed: seed, Users: sc.Users, Compromised: len(w.attacks), Days: sc.Days,
		HistoryDays: sc.HistoryDays, Modes: map[string]FraudMeasures{}}
	for _, m := range w.msgs {
		if m.attack < 0 {
			rep.LegitMessages++
		} else {
			rep.AttackMessages++
		}
	}
	for _, mode := range []string{FraudOurs, FraudBaseline} {
		r := newFraudRun(w, mode, seed)
		if err := r.run(ctx); err != nil {
			return nil, fmt.Errorf("fraud scenario %s, seed %d, %s: %w (replay: make sim SCENARIO=fraud SEED=%d)", sc.Name, seed, mode, err, seed)
		}
		rep.Modes[mode] = r.measures(rep.LegitMessages)
	}
	rep.goals()
	rep.Notes = []string{
		"Ours is package fraud's Sender.Check/Outcome on fraud.DefaultPolicy(), the code the messaging supervisor runs; the baseline is fraud.DefaultFixedThreshold() (OpenSIPS fraud_detection's calls per minute, sequential and total counters per prefix rule, refusing a message while a counter is at critical, no containment).",
		"History before the simulated days is built through the History API from the same traffic model in hourly aggregates (not message by message); marketing senders' past weekly campaigns are run message by message through Sender.Check in monitor mode, as a new campaign sender would be onboarded.",
		"Slow drip sends one message every 10 to 135 s: no detector can contain it within 10 s of its start without a first-message signal; its delay in seconds is reported as it is.",
		"Message-level leak counts attack messages delivered; after containment (credentials reset) the attacker's further messages are counted as prevented.",
	}
	return rep, nil
}

func (rep *FraudReport) goals() {
	o, b := rep.Modes[FraudOurs], rep.Modes[FraudBaseline]
	g := &rep.Goals
	g.RecallAtLeast099 = o.Recall >= 0.99
	g.LegitBlockedAtMost01Pct = o.LegitBlockedShare <= 0.001
	total := 0
	for _, a := range o.PerAttack {
		total += a.Attacks
	}
	g.AllContainedIn20And10s = o.WithinGoal == total
	g.AheadOfBaselineEveryType = true
	for _, k := range AttackTypes() {
		oa, ba := o.PerAttack[k], b.PerAttack[k]
		if oa == nil || ba == nil {
			continue
		}
		if oa.Recall < ba.Recall || oa.Leaked > ba.Leaked {
			g.AheadOfBaselineEveryType = false
			g.Shortfalls = append(g.Shortfalls, fmt.Sprintf("%s: not ahead of the baseline (recall %.3f vs %.3f, leaked %d vs %d)",
				k, oa.Recall, ba.Recall, oa.Leaked, ba.Leaked))
		}
		if oa.WithinGoal < oa.Attacks {
			g.Shortfalls = append(g.Shortfalls, fmt.Sprintf("%s: %d of %d attacks contained within 20 messages and 10 s (%d within 20 messages; delay p99 %.0f messages, %.1f s)",
				k, oa.WithinGoal, oa.Attacks, oa.Within20, oa.DelayMessagesP99, oa.DelaySecondsP99))
		}
	}
	if !g.RecallAtLeast099 {
		g.Shortfalls = append(g.Shortfalls, fmt.Sprintf("recall %.4f < 0.99", o.Recall))
	}
	if !g.LegitBlockedAtMost01Pct {
		g.Shortfalls = append(g.Shortfalls, fmt.Sprintf("legitimate messages blocked %.4f%% > 0.1%%", 100*o.LegitBlockedShare))
	}
}

// fraudRun is one detector over the workload.
type fraudRun struct {
	w    *fraudWorkload
	mode string
	seed uint64
	pol  fraud.Policy

	senders []*fraud.Sender
	fixed   fraud.FixedThreshold
	states  []fraud.FixedState
	blocks  []fraud.Blocks // per account
	downTo  []int64        // per user: the rightful user is back at
	pending outcomeHeap

	// per attack
	contained []bool
	detected  []bool
	sent      []int // attack messages offered so far
	leaked    []int
	caughtBy  []string
	delayM    []float64
	delayS    []float64

	flagged      []bool // per user
	truePos      []bool // per user: flagged during its attack
	falseInc     int
	falseBy      map[string]int
	legitBlocked int
	prevented    int
}

func newFraudRun(w *fraudWorkload, mode string, seed uint64) *fraudRun {
	n := len(w.users)
	r := &fraudRun{w: w, mode: mode, seed: seed, pol: fraud.Merge(), downTo: make([]int64, n),
		contained: make([]bool, len(w.attacks)), detected: make([]bool, len(w.attacks)),
		sent: make([]int, len(w.attacks)), leaked: make([]int, len(w.attacks)),
		caughtBy: make([]string, len(w.attacks)), delayM: make([]float64, len(w.attacks)),
		delayS: make([]float64, len(w.attacks)), flagged: make([]bool, n), truePos: make([]bool, n), falseBy: map[string]int{}}
	accounts := (n-1)/(w.sc.UsersPerGroup*w.sc.GroupsPerAccount) + 1
	r.blocks = make([]fraud.Blocks, accounts)
	if mode == FraudBaseline {
		r.fixed = fraud.DefaultFixedThreshold()
		r.states = make([]fraud.FixedState, n)
		return r
	}
	r.warmUp()
	return r
}

func (r *fraudRun) at(ns int64) time.Time { return fraudEpoch.Add(time.Duration(ns)) }

func homeNet(u int) string {
	return "10." + strconv.Itoa(u>>8&255) + "." + strconv.Itoa(u&255) + ".0/24"
}
func homeUA(u int) string { return "Softphone/" + strconv.Itoa(3+u%4) + ".1" }

// source is the network and user agent of a message.
func (r *fraudRun) source(m simMsg) (string, string) {
	u := int(m.user)
	switch m.source {
	case 1:
		return "172.16." + strconv.Itoa(u&255) + ".0/24", homeUA(u)
	case 2:
		return homeNet(u), "Softphone/9.0"
	case 3:
		return "203.0.113.0/24", "sipcli/1.0"
	case 4:
		return "203.0.113.0/24", homeUA(u)
	}
	return homeNet(u), homeUA(u)
}

// warmUp builds each user's, group's and account's history for the
// HistoryDays before the simulated days, through the History API.
func (r *fraudRun) warmUp() {
	sc := r.w.sc
	rng := rand.New(rand.NewPCG(r.seed, 0x415707))
	groups := make([]*fraud.History, (len(r.w.users)-1)/sc.UsersPerGroup+1)
	accounts := make([]*fraud.History, len(r.blocks))
	ret := *r.pol.History.RetentionDays
	for i := range groups {
		groups[i] = fraud.NewHistory(ret)
	}
	for i := range accounts {
		accounts[i] = fraud.NewHistory(ret)
	}
	knownW := *r.pol.History.KnownDestinationWeight
	r.senders = make([]*fraud.Sender, len(r.w.users))
	monitor := fraud.Merge(fraud.Policy{Monitor: new(true)})
	for i := range r.w.users {
		u := &r.w.users[i]
		dev := fraud.NewHistory(ret)
		r.senders[i] = fraud.NewSender(dev, groups[u.group], accounts[u.acc])
		if u.newUser {
			continue
		}
		for d := -sc.HistoryDays; d < 0; d++ {
			day := r.at(int64(d) * 24 * nsPerHour)
			wd := (d%7 + 7) % 7
			busiest := 0.0
			for h := range 24 {
				n := poisson(rng, u.daily*dayFactor(wd)*hourWeight[h]/hourWeightSum)
				if n == 0 {
					continue
				}
				at := day.Add(time.Duration(h) * time.Hour)
				x := float64(n) * (0.95*knownW + 0.05)
				busiest = max(busiest, x)
				dev.Observe(at, x)
				groups[u.group].Observe(at, x)
				accounts[u.acc].Observe(at, x)
			}
			dev.AddPeaks(day, fraud.Peaks{PerMinute: 1, PerSecond: knownW, Distinct: 1, SameBody: 0.1, PerHour: busiest})
		}
		first := r.at(-int64(sc.HistoryDays) * 24 * nsPerHour)
		for _, c := range u.contacts {
			dev.LearnDestination("+"+strconv.FormatUint(c, 10), first.Add(time.Duration(rng.Int64N(int64(sc.HistoryDays)*24*nsPerHour+1))))
		}
		dev.LearnSource(homeNet(i), homeUA(i), r.at(-nsPerHour))
		if u.marketer {
			// Past weekly campaigns, message by message, learned in monitor
			// mode.
			s := r.senders[i]
			for wk := sc.HistoryDays / 7; wk >= 1; wk-- {
				t := int64(-wk*7*24+13)*nsPerHour + rng.Int64N(3*nsPerHour)
				campaign(rng, u, t, func(t int64, dest, body uint64) {
					s.Check(&monitor, fraud.Event{Destination: "+" + strconv.FormatUint(dest, 10), BodyHash: body,
						Network: homeNet(i), UserAgent: homeUA(i), Time: r.at(t)})
				})
				s.Flush(&monitor)
			}
			*s = *fraud.NewSender(dev, groups[u.group], accounts[u.acc])
		}
	}
}

type pendingOutcome struct {
	at     int64
	user   int32
	failed bool
}

type outcomeHeap []pendingOutcome

func (h outcomeHeap) Len() int { return len(h) }
func (h outcomeHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].user < h[j].user
}
func (h outcomeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *outcomeHeap) Push(x any)   { *h = append(*h, x.(pendingOutcome)) }
func (h *outcomeHeap) Pop() any     { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

// activeAttack is the attack of user u in progress at t, or -1.
func (r *fraudRun) activeAttack(u int32, t int64) int {
	for k, a := range r.w.attacks {
		if int32(a.user) == u && a.start <= t && !r.contained[k] {
			return k
		}
	}
	return -1
}

func (r *fraudRun) run(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(r.seed, 0x0C7C0E))
	attackOf := map[int32]bool{}
	for _, a := range r.w.attacks {
		attackOf[int32(a.user)] = true
	}
	for i, m := range r.w.msgs {
		if i%65536 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		for r.pending.Len() > 0 && r.pending[0].at <= m.at {
			o := heap.Pop(&r.pending).(pendingOutcome)
			v := r.senders[o.user].Outcome(&r.pol, r.at(o.at), o.failed)
			if v.Level == fraud.LevelCritical && !v.Monitor {
				r.incident(o.user, o.at, v, attackOf[o.user])
			}
		}
		refused := r.check(m, attackOf[m.user], rng)
		if m.attack >= 0 {
			k := int(m.attack)
			if r.contained[k] {
				r.prevented++
				continue
			}
			r.sent[k]++
			if refused {
				r.prevented++
				if !r.detected[k] && r.mode == FraudBaseline {
					r.detect(k, m.at, "fixed_threshold")
				}
			} else {
				r.leaked[k]++
			}
		} else if refused {
			r.legitBlocked++
		}
	}
	return nil
}

// check runs one message through the mode's detector and reports whether
// it was refused (or never sent: the user was locked out).
func (r *fraudRun) check(m simMsg, compromised bool, rng *rand.Rand) bool {
	u := m.user
	dest := "+" + strconv.FormatUint(m.dest, 10)
	acc := r.w.users[u].acc
	if m.attack >= 0 && r.contained[m.attack] {
		return true
	}
	if m.attack < 0 && m.at < r.downTo[u] {
		return true
	}
	if r.blocks[acc].Blocked(dest, r.at(m.at)) {
		return true
	}
	if r.mode == FraudBaseline {
		lvl := r.fixed.Check(&r.states[u], dest, r.at(m.at))
		if lvl == fraud.LevelCritical && !r.flagged[u] {
			r.flagged[u] = true
			if m.attack >= 0 || r.activeAttack(u, m.at) >= 0 {
				r.truePos[u] = true
			} else {
				r.falseInc++
				r.falseBy["fixed_threshold"]++
			}
		}
		return lvl == fraud.LevelCritical
	}
	network, ua := r.source(m)
	v := r.senders[u].Check(&r.pol, fraud.Event{Kind: fraud.KindMessage, Destination: dest, BodyHash: m.body,
		Network: network, UserAgent: ua, Time: r.at(m.at)})
	if v.Level == fraud.LevelCritical && !v.Monitor {
		r.incident(u, m.at, v, compromised)
		return true
	}
	if v.Refuse || v.Throttle {
		return true
	}
	heap.Push(&r.pending, pendingOutcome{at: m.at + int64((0.5+2.5*rng.Float64())*float64(nsPerSec)), user: u, failed: m.fails})
	return false
}

// incident carries out containment at t: the attacker (if an attack is
// under way) is locked out, the rightful user is down for RestoreSeconds,
// and the targeted destinations are blocked for the account.
func (r *fraudRun) incident(u int32, t int64, v fraud.Verdict, compromised bool) {
	k := -1
	if compromised {
		k = r.activeAttack(u, t)
	}
	r.flagged[u] = true
	if k >= 0 {
		r.truePos[u] = true
		r.detect(k, t, v.Indicator)
		r.contained[k] = true
	} else {
		r.falseInc++
		r.falseBy[v.Indicator]++
	}
	r.downTo[u] = t + int64(r.w.sc.RestoreSeconds*float64(nsPerSec))
	until := r.at(t).Add(v.BlockFor)
	for _, d := range v.Targets {
		r.blocks[r.w.users[u].acc].Add(d, until)
	}
}

func (r *fraudRun) detect(k int, t int64, indicator string) {
	if r.detected[k] {
		return
	}
	r.detected[k] = true
	r.caughtBy[k] = indicator
	r.delayM[k] = float64(r.sent[k])
	if r.mode == FraudOurs {
		r.delayM[k]++ // the message (or outcome) that detected it is being sent now
	}
	r.delayS[k] = float64(t-r.w.attacks[k].start) / float64(nsPerSec)
}

func (r *fraudRun) measures(legit int) FraudMeasures {
	m := FraudMeasures{PerAttack: map[string]*AttackMeasures{}}
	var allM, allS []float64
	for k, a := range r.w.attacks {
		am := m.PerAttack[a.kind]
		if am == nil {
			am = &AttackMeasures{Indicators: map[string]int{}}
			m.PerAttack[a.kind] = am
		}
		am.Attacks++
		am.Leaked += r.leaked[k]
		am.LeakedMax = max(am.LeakedMax, r.leaked[k])
		m.Leaked += r.leaked[k]
		if !r.detected[k] {
			continue
		}
		am.Detected++
		am.Indicators[r.caughtBy[k]]++
		am.delaysM = append(am.delaysM, r.delayM[k])
		am.delaysS = append(am.delaysS, r.delayS[k])
		allM, allS = append(allM, r.delayM[k]), append(allS, r.delayS[k])
		if r.delayM[k] <= 20 {
			am.Within20++
			m.Within20++
			if r.delayS[k] <= 10 {
				am.WithinGoal++
				m.WithinGoal++
			}
		}
	}
	detected := 0
	for _, am := range m.PerAttack {
		detected += am.Detected
		am.Recall = round4(float64(am.Detected) / float64(am.Attacks))
		am.DelayMessagesP50, am.DelayMessagesP99 = quantile(am.delaysM, 0.5), quantile(am.delaysM, 0.99)
		am.DelaySecondsP50, am.DelaySecondsP99 = round4(quantile(am.delaysS, 0.5)), round4(quantile(am.delaysS, 0.99))
	}
	tp, flagged := 0, 0
	for u := range r.flagged {
		if r.flagged[u] {
			flagged++
			if r.truePos[u] {
				tp++
			}
		}
	}
	m.FlaggedSenders, m.FalseIncidents, m.FalseBy = flagged, r.falseInc, r.falseBy
	if flagged > 0 {
		m.Precision = round4(float64(tp) / float64(flagged))
	}
	if len(r.w.attacks) > 0 {
		m.Recall = round4(float64(detected) / float64(len(r.w.attacks)))
	}
	m.LegitBlocked = r.legitBlocked
	if legit > 0 {
		m.LegitBlockedShare = round6(float64(r.legitBlocked) / float64(legit))
	}
	m.Prevented = r.prevented
	m.DelayMessagesP50, m.DelayMessagesP99 = quantile(allM, 0.5), quantile(allM, 0.99)
	m.DelaySecondsP50, m.DelaySecondsP99 = round4(quantile(allS, 0.5)), round4(quantile(allS, 0.99))
	return m
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// quantile is the nearest-rank q-quantile of xs (0 for none).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	return s[min(max(int(math.Ceil(q*float64(len(s))))-1, 0), len(s)-1)]
}

// Write writes fraud-report.json and fraud-report.md into dir.
func (rep *FraudReport) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("simulations: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, FraudFileJSON), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("simulations: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, FraudFileMarkdown), []byte(rep.Markdown()), 0o644)
}

// Markdown is the report as a table per measure, ours beside the baseline.
func (rep *FraudReport) Markdown() string {
	var sb strings.Builder
	o, b := rep.Modes[FraudOurs], rep.Modes[FraudBaseline]
	fmt.Fprintf(&sb, "# Fraud simulation: %s, seed %d\n\n", rep.Scenario, rep.Seed)
	fmt.Fprintf(&sb, "%d users (%d compromised), %.1f days after %d days of history; %d legitimate messages, %d attack messages offered. Replay: `make sim SCENARIO=%s SEED=%d`.\n\n",
		rep.Users, rep.Compromised, rep.Days, rep.HistoryDays, rep.LegitMessages, rep.AttackMessages, rep.Scenario, rep.Seed)
	fmt.Fprintf(&sb, "| measure | ours | baseline (OpenSIPS-style) |\n| --- | --- | --- |\n")
	row := func(name string, a, c any) { fmt.Fprintf(&sb, "| %s | %v | %v |\n", name, a, c) }
	row("precision (senders)", o.Precision, b.Precision)
	row("recall (attacks)", o.Recall, b.Recall)
	row("false incidents", o.FalseIncidents, b.FalseIncidents)
	row("legitimate messages blocked", fmt.Sprintf("%d (%.4f%%)", o.LegitBlocked, 100*o.LegitBlockedShare),
		fmt.Sprintf("%d (%.4f%%)", b.LegitBlocked, 100*b.LegitBlockedShare))
	row("delay p50 / p99, messages", fmt.Sprintf("%.0f / %.0f", o.DelayMessagesP50, o.DelayMessagesP99),
		fmt.Sprintf("%.0f / %.0f", b.DelayMessagesP50, b.DelayMessagesP99))
	row("delay p50 / p99, seconds", fmt.Sprintf("%.1f / %.1f", o.DelaySecondsP50, o.DelaySecondsP99),
		fmt.Sprintf("%.1f / %.1f", b.DelaySecondsP50, b.DelaySecondsP99))
	row("attack messages leaked", o.Leaked, b.Leaked)
	row("attacks within 20 messages and 10 s", o.WithinGoal, b.WithinGoal)
	fmt.Fprintf(&sb, "\n## Per attack (ours | baseline)\n\n| attack | n | recall | delay p50/p99 msgs | delay p50/p99 s | leaked (max) | within 20 msgs & 10 s | caught by |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, k := range AttackTypes() {
		oa, ba := o.PerAttack[k], b.PerAttack[k]
		if oa == nil || ba == nil {
			continue
		}
		var by []string
		for _, name := range slices.Sorted(maps.Keys(oa.Indicators)) {
			by = append(by, fmt.Sprintf("%s %d", name, oa.Indicators[name]))
		}
		fmt.Fprintf(&sb, "| %s | %d | %.3f \\| %.3f | %.0f/%.0f \\| %.0f/%.0f | %.1f/%.1f \\| %.1f/%.1f | %d (%d) \\| %d (%d) | %d \\| %d | %s |\n",
			k, oa.Attacks, oa.Recall, ba.Recall, oa.DelayMessagesP50, oa.DelayMessagesP99, ba.DelayMessagesP50, ba.DelayMessagesP99,
			oa.DelaySecondsP50, oa.DelaySecondsP99, ba.DelaySecondsP50, ba.DelaySecondsP99,
			oa.Leaked, oa.LeakedMax, ba.Leaked, ba.LeakedMax, oa.WithinGoal, ba.WithinGoal, strings.Join(by, ", "))
	}
	fmt.Fprintf(&sb, "\n## Goals (ours)\n\n- recall >= 0.99: %v\n- every attack contained within 20 messages and 10 s: %v\n- legitimate messages blocked <= 0.1%%: %v\n- ahead of the baseline on every attack type: %v\n",
		rep.Goals.RecallAtLeast099, rep.Goals.AllContainedIn20And10s, rep.Goals.LegitBlockedAtMost01Pct, rep.Goals.AheadOfBaselineEveryType)
	for _, s := range rep.Goals.Shortfalls {
		fmt.Fprintf(&sb, "- short: %s\n", s)
	}
	fmt.Fprintf(&sb, "\n## Notes\n\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(&sb, "- %s\n", n)
	}
	return sb.String()
}
