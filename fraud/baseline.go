package fraud

import (
	"strings"
	"time"
)

// FixedThreshold is the comparison baseline: OpenSIPS fraud_detection's
// model moved to messages. Each rule (a destination prefix) keeps, per
// sender, fixed counters with a warning and a critical threshold: requests
// per minute (sliding), sequential requests (consecutive ones to the same
// destination) and total requests since the start of the day. There is no
// history, no behaviour beyond the counters, and no action of its own: a
// script refuses a request while a counter is at critical. The runtime
// does not use it; the simulation and the benchmarks run it beside Sender.
type FixedThreshold struct {
	Rules []FixedRule
}

// FixedRule is one prefix rule; the longest matching prefix applies ("*"
// matches everything).
type FixedRule struct {
	Prefix                      string
	CPMWarning, CPMCritical     float64
	SeqWarning, SeqCritical     float64
	TotalWarning, TotalCritical float64
}

// DefaultFixedThreshold is the baseline as an operator would set it from
// the same knowledge as DefaultPolicy: the same per-minute critical for
// everything, and stricter rules for the same premium and high-cost
// prefixes.
func DefaultFixedThreshold() FixedThreshold {
	def := DefaultPolicy()
	rules := []FixedRule{{Prefix: "*", CPMWarning: 10, CPMCritical: 18, SeqWarning: 10, SeqCritical: 20,
		TotalWarning: 150, TotalCritical: 300}}
	for _, p := range def.Destinations.PremiumPrefixes {
		rules = append(rules, FixedRule{Prefix: p, CPMWarning: 1, CPMCritical: 2, SeqWarning: 2, SeqCritical: 3,
			TotalWarning: 2, TotalCritical: 5})
	}
	for _, p := range def.Destinations.HighCostPrefixes {
		rules = append(rules, FixedRule{Prefix: p, CPMWarning: 2, CPMCritical: 4, SeqWarning: 3, SeqCritical: 5,
			TotalWarning: 5, TotalCritical: 10})
	}
	return FixedThreshold{Rules: rules}
}

// FixedState is one sender's counters under a FixedThreshold.
type FixedState struct {
	rules []fixedCounters
}

type fixedCounters struct {
	minute   window
	lastDest uint32
	seq      float64
	total    float64
	day      int64
}

// Check counts one request from the sender to dest at t and returns the
// highest level a counter of the matching rule reached.
func (f *FixedThreshold) Check(st *FixedState, dest string, t time.Time) Level {
	d := parseDest(dest)
	best, bestLen := -1, -1
	for i, r := range f.Rules {
		p := strings.TrimSuffix(r.Prefix, "*")
		if (r.Prefix == "*" || matchPrefix(d.text, r.Prefix)) && len(p) > bestLen {
			best, bestLen = i, len(p)
		}
	}
	if best < 0 {
		return LevelOK
	}
	if len(st.rules) != len(f.Rules) {
		st.rules = make([]fixedCounters, len(f.Rules))
	}
	r, c := f.Rules[best], &st.rules[best]
	cpm := c.minute.add(t.UnixNano(), widthOf(60), 1)
	if c.lastDest == d.hash {
		c.seq++
	} else {
		c.lastDest, c.seq = d.hash, 1
	}
	if day := unixDay(t); day != c.day {
		c.day, c.total = day, 0
	}
	c.total++
	lvl := LevelOK
	for _, x := range [3][3]float64{{cpm, r.CPMWarning, r.CPMCritical}, {c.seq, r.SeqWarning, r.SeqCritical},
		{c.total, r.TotalWarning, r.TotalCritical}} {
		switch {
		case x[2] > 0 && x[0] >= x[2]:
			lvl = LevelCritical
		case x[1] > 0 && x[0] >= x[1]:
			lvl = max(lvl, LevelWarning)
		}
	}
	return lvl
}
