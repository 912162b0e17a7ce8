package fraud

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// TestIndicators_FireAtThresholdNotBefore: each indicator, alone, reaches
// critical at exactly its configured threshold (issue 10, Build 3: "each
// can be turned on or off, and has a warning and a critical threshold").
func TestIndicators_FireAtThresholdNotBefore(t *testing.T) {
	seq := func(k int, step time.Duration, dest func(int) string) []Event {
		var out []Event
		for i := range k {
			out = append(out, ev(dest(i), t0.Add(time.Duration(i)*step)))
		}
		return out
	}
	sameBody := func(evs []Event) []Event {
		for i := range evs {
			evs[i].BodyHash = BodyHash([]byte("WIN a prize, call 0900 123"))
		}
		return evs
	}
	fromNewSource := func(evs []Event) []Event {
		for i := range evs {
			evs[i].Network, evs[i].UserAgent = "198.51.100.0/24", "friendly-scanner"
		}
		return evs
	}
	knownSource := func() *Sender {
		s := NewSender(nil, nil, nil)
		s.Device.LearnSource("192.0.2.0/24", "phone/1", t0.Add(-48*time.Hour))
		return s
	}
	cases := []struct {
		name      string
		indicator string
		in        Indicator
		sender    func() *Sender
		events    []Event
		want      int // 0: never
	}{
		{"rate at 5", RatePerMinute, Indicator{Critical: f(5)}, nil, seq(20, time.Second, num), 5},
		{"rate spread over minutes never", RatePerMinute, Indicator{Critical: f(5)}, nil, seq(20, 20*time.Second, num), 0},
		{"burst at 3", BurstPerSecond, Indicator{Critical: f(3)}, nil, seq(10, 100*time.Millisecond, num), 3},
		{"burst spread never", BurstPerSecond, Indicator{Critical: f(3)}, nil, seq(10, 1100*time.Millisecond, num), 0},
		{"distinct at 4", DistinctDestinations, Indicator{Critical: f(4), WindowSeconds: f(3600)}, nil, seq(10, time.Minute, num), 4},
		{"one destination never distinct", DistinctDestinations, Indicator{Critical: f(4)}, nil,
			seq(10, time.Minute, func(int) string { return "+447700900001" }), 0},
		{"premium at 2", DestinationRisk, Indicator{Critical: f(2)}, nil,
			seq(5, time.Minute, func(i int) string { return fmt.Sprintf("+1900555%04d", i*37) }), 2},
		{"high cost at 4", DestinationRisk, Indicator{Critical: f(2)}, nil,
			seq(8, time.Minute, func(i int) string { return fmt.Sprintf("+88123%06d", i*37) }), 4},
		{"ordinary numbers no risk", DestinationRisk, Indicator{Critical: f(2)}, nil, seq(10, time.Minute, num), 0},
		{"sequential at 5", SequentialDestinations, Indicator{Critical: f(5)}, nil,
			seq(10, 2*time.Second, func(i int) string { return fmt.Sprintf("+1555010%04d", 100+i) }), 5},
		{"sequential with gaps at 5", SequentialDestinations, Indicator{Critical: f(5)}, nil,
			seq(10, 2*time.Second, func(i int) string { return fmt.Sprintf("+1555010%04d", 100+i*7) }), 5},
		{"unrelated numbers never sequential", SequentialDestinations, Indicator{Critical: f(5)}, nil, seq(10, 2*time.Second, num), 0},
		{"same body at 4", SameBody, Indicator{Critical: f(4)}, nil, sameBody(seq(10, time.Second, num)), 4},
		{"different bodies never", SameBody, Indicator{Critical: f(4)}, nil, seq(10, time.Second, num), 0},
		{"same body to one destination never", SameBody, Indicator{Critical: f(4)}, nil,
			sameBody(seq(10, time.Second, func(int) string { return "+447700900001" })), 0},
		{"new source at 3", NewSource, Indicator{Critical: f(3)}, knownSource, fromNewSource(seq(10, time.Second, num)), 3},
		{"known source never", NewSource, Indicator{Critical: f(3)}, knownSource, seq(10, time.Second, num), 0},
		{"no history yet never", NewSource, Indicator{Critical: f(3)}, nil, fromNewSource(seq(10, time.Second, num)), 0},
		{"deviation at the floor", HistoryDeviation, Indicator{Critical: f(1)}, nil, seq(40, time.Minute, num), 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := only(t, c.indicator, c.in)
			s := NewSender(nil, nil, nil)
			if c.sender != nil {
				s = c.sender()
			}
			got, v := firstAt(&p, s, c.events, LevelCritical)
			if got != c.want {
				t.Fatalf("critical at message %d, want %d (verdict %+v)", got, c.want, v)
			}
			if got > 0 && (v.Indicator != c.indicator || !v.Refuse || v.Value < v.Threshold) {
				t.Fatalf("verdict %+v: want %s, refused, value >= threshold", v, c.indicator)
			}
		})
	}
}

// TestFailureRatio_AfterMinCount: the delivery-failure ratio is judged
// only once min_count outcomes are in the window, then at its threshold.
func TestFailureRatio_AfterMinCount(t *testing.T) {
	p := only(t, FailureRatio, Indicator{Warning: f(0.3), Critical: f(0.5), MinCount: f(4)})
	s := NewSender(nil, nil, nil)
	fails := []bool{true, true, true, false, true}
	want := []Level{LevelOK, LevelOK, LevelOK, LevelCritical, LevelOK}
	for i, fl := range fails {
		v := s.Outcome(&p, t0.Add(time.Duration(i)*time.Second), fl)
		if v.Level != want[i] {
			t.Fatalf("outcome %d: level %v, want %v (%+v)", i+1, v.Level, want[i], v)
		}
	}
}

// TestLevels_WarningThrottleCritical: the three levels in turn, and what
// each asks of the edge.
func TestLevels_WarningThrottleCritical(t *testing.T) {
	p := only(t, RatePerMinute, Indicator{Warning: f(2), Throttle: f(3), Critical: f(4)})
	s := NewSender(nil, nil, nil)
	want := []struct {
		l        Level
		decision string
	}{{LevelOK, "deliver"}, {LevelWarning, "deliver"}, {LevelThrottle, "throttle"}, {LevelCritical, "refuse"}}
	for i, w := range want {
		v := s.Check(&p, ev(num(i), t0.Add(time.Duration(i)*time.Second)))
		if v.Level != w.l || v.Decision() != w.decision {
			t.Fatalf("message %d: %v/%s, want %v/%s", i+1, v.Level, v.Decision(), w.l, w.decision)
		}
		if w.l == LevelCritical {
			wantActions := []string{ActionTerminateInFlight, ActionResetCredentials, ActionBlockDestinations, ActionRestore}
			if !slices.Equal(v.Actions, wantActions) || len(v.Targets) != 4 || v.BlockFor != time.Hour {
				t.Fatalf("critical verdict %+v: want all actions, 4 targets, 1h blocks", v)
			}
		}
	}
	// Containment emptied the windows: the restored user starts afresh.
	if v := s.Check(&p, ev(num(9), t0.Add(5*time.Second))); v.Level != LevelOK {
		t.Fatalf("after containment: %+v", v)
	}
}

// TestMonitorMode_RecordsAndActsOnNone: the abstract's "minimal impact on
// authorized messaging users" starts with trying a policy in shadow.
func TestMonitorMode_RecordsAndActsOnNone(t *testing.T) {
	p := only(t, RatePerMinute, Indicator{Critical: f(2)})
	p.Monitor = b(true)
	p.Destinations.Countries = map[string]string{"53": CountryBlock}
	s := NewSender(nil, nil, nil)
	s.Check(&p, ev(num(1), t0))
	v := s.Check(&p, ev("+5355512345", t0.Add(time.Second)))
	if v.Level != LevelCritical || !v.Monitor || v.Refuse || v.Throttle || len(v.Actions) > 0 || v.Decision() != "deliver" {
		t.Fatalf("monitor verdict %+v: want critical recorded, nothing done", v)
	}
}

// TestSafeList_NeverScored: safe numbers and prefixes are neither refused
// nor counted.
func TestSafeList_NeverScored(t *testing.T) {
	p := only(t, RatePerMinute, Indicator{Critical: f(3)})
	p.SafeList = []string{"+15550100*", "+447700900001"}
	s := NewSender(nil, nil, nil)
	for i := range 10 {
		d := fmt.Sprintf("+15550100%03d", i)
		if i%2 == 1 {
			d = "+44 7700 900001"
		}
		if v := s.Check(&p, ev(d, t0.Add(time.Duration(i)*time.Millisecond))); v.Level != LevelOK || v.Indicator != SafeListed {
			t.Fatalf("safe %s: %+v", d, v)
		}
	}
	if got, _ := firstAt(&p, s, []Event{ev(num(1), t0.Add(time.Second)), ev(num(2), t0.Add(time.Second)), ev(num(3), t0.Add(time.Second))}, LevelCritical); got != 3 {
		t.Fatalf("safe messages were counted: critical at %d, want 3", got)
	}
}

// TestBlockedCountry_RefusedWithoutIncident: a country permission of
// "block" refuses the message; it is not a reason to contain the sender
// until destination_risk says so.
func TestBlockedCountry_RefusedWithoutIncident(t *testing.T) {
	p := only(t, DestinationRisk, Indicator{Critical: f(3)})
	p.Destinations.Countries = map[string]string{"53": CountryBlock}
	s := NewSender(nil, nil, nil)
	for i, want := range []bool{false, false, true} {
		v := s.Check(&p, ev(fmt.Sprintf("+53555%05d", i), t0.Add(time.Duration(i)*time.Second)))
		if !v.Refuse || (v.Level == LevelCritical) != want {
			t.Fatalf("message %d to a blocked country: %+v, want refused at %v", i+1, v, want)
		}
	}
}

// TestSchedules_DayAndTimeWindows: a schedule's thresholds apply inside its
// window only, in the policy's UTC offset (as OpenSIPS' rules).
func TestSchedules_DayAndTimeWindows(t *testing.T) {
	in := Indicator{Critical: f(10), Schedules: []Schedule{{Days: []string{"sat", "sun"}, From: "00:00", To: "24:00", Critical: f(2)},
		{From: "22:00", To: "06:00", Critical: f(3)}}}
	p := only(t, RatePerMinute, in)
	p.UTCOffsetMinutes = n(60)
	cases := []struct {
		name string
		at   time.Time
		want int
	}{
		{"weekday office hours", t0, 10},
		{"weekend", time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), 2},
		{"night, local 23:30", time.Date(2026, 3, 3, 22, 30, 0, 0, time.UTC), 3},
		{"night past midnight, local 05:00", time.Date(2026, 3, 4, 4, 0, 0, 0, time.UTC), 3},
		{"morning, local 06:30", time.Date(2026, 3, 4, 5, 30, 0, 0, time.UTC), 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var evs []Event
			for i := range 12 {
				evs = append(evs, ev(num(i), c.at.Add(time.Duration(i)*time.Second)))
			}
			if got, _ := firstAt(&p, NewSender(nil, nil, nil), evs, LevelCritical); got != c.want {
				t.Fatalf("critical at %d, want %d", got, c.want)
			}
		})
	}
}

// TestHistory_DeviationBaselineAndFloor: a device is judged against the
// same hour of its earlier weeks, never below the floor, so a new user is
// not flagged for a busy first hour (issue 10: "with a floor so that new
// users are not flagged").
func TestHistory_DeviationBaselineAndFloor(t *testing.T) {
	p := only(t, HistoryDeviation, Indicator{Critical: f(2)})
	p.History.FloorPerHour = f(10)
	p.History.Sigmas = f(0)
	busy := NewHistory(28)
	for w := 1; w <= 3; w++ {
		for _, dh := range []int{-1, 0, 1} {
			busy.Observe(t0.Add(time.Duration(-168*w+dh)*time.Hour), 30)
		}
	}
	if e, ok := busy.Expected(t0, 0); !ok || math.Abs(e-30) > 1e-9 {
		t.Fatalf("expected %v %v, want 30", e, ok)
	}
	cases := []struct {
		name string
		h    *History
		want int
	}{
		{"new user: the floor", nil, 20},
		{"busy hour of the week: its own baseline", busy, 60},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var evs []Event
			for i := range 80 {
				evs = append(evs, ev(num(i), t0.Add(time.Duration(i)*30*time.Second)))
			}
			if got, _ := firstAt(&p, NewSender(c.h, nil, nil), evs, LevelCritical); got != c.want {
				t.Fatalf("critical at %d, want %d", got, c.want)
			}
		})
	}
}

// TestHistory_HeadroomForCampaigns: a sender whose history holds a weekly
// campaign may repeat it; the same burst from a sender without one is
// critical.
func TestHistory_HeadroomForCampaigns(t *testing.T) {
	p := only(t, SameBody, Indicator{Critical: f(10)})
	var evs []Event
	for i := range 100 {
		e := ev(num(i), t0.Add(time.Duration(i)*500*time.Millisecond))
		e.BodyHash = BodyHash([]byte("Spring sale: 20% off"))
		evs = append(evs, e)
	}
	if got, _ := firstAt(&p, NewSender(nil, nil, nil), evs, LevelCritical); got != 10 {
		t.Fatalf("no history: critical at %d, want 10", got)
	}
	marketer := NewHistory(28)
	marketer.AddPeaks(t0.Add(-7*24*time.Hour), Peaks{SameBody: 120})
	if got, _ := firstAt(&p, NewSender(marketer, nil, nil), evs, LevelCritical); got != 0 {
		t.Fatalf("campaign history: critical at %d, want none", got)
	}
}

// TestSender_LearnsAfterACleanHour: sources and destinations used in an
// hour without an incident are learned when the hour folds; an hour with
// an incident is not.
func TestSender_LearnsAfterACleanHour(t *testing.T) {
	p := Merge()
	s := NewSender(nil, nil, nil)
	s.Check(&p, ev("+447700900123", t0))
	v := s.Check(&p, ev("+447700900999", t0.Add(time.Hour)))
	if !v.Folded || !s.Device.KnowsDestination("+447700900123") {
		t.Fatal("the first hour was not learned")
	}
	if kn, ka := s.Device.KnowsSource("192.0.2.0/24", "phone/1"); !kn || !ka {
		t.Fatal("the source was not learned")
	}
	// An incident in the second hour keeps it out.
	for i := range 30 {
		s.Check(&p, ev(num(i), t0.Add(time.Hour+time.Duration(i)*10*time.Millisecond)))
	}
	s.Check(&p, ev("+447700900555", t0.Add(2*time.Hour)))
	if s.Device.KnowsDestination(num(3)) {
		t.Fatal("an hour with an incident was learned")
	}
}
