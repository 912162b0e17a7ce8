package fraud

import (
	"fmt"
	"testing"
	"time"
)

// t0 is a Monday 09:00 UTC.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func f(x float64) *float64 { return &x }
func b(x bool) *bool       { return &x }
func n(x int) *int         { return &x }

// only returns the merged default policy with every indicator but name
// disabled, and name's indicator set to in (enabled).
func only(t *testing.T, name string, in Indicator) Policy {
	t.Helper()
	var layer Policy
	found := false
	for i, x := range layer.Indicators.list() {
		if indicatorNames[i] == name {
			*x = in
			x.Enabled = b(true)
			if x.Warning == nil {
				x.Warning = f(0.5) // below any critical a case sets
			}
			found = true
		} else {
			x.Enabled = b(false)
		}
	}
	if !found {
		t.Fatalf("no indicator %q", name)
	}
	p := Merge(layer)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// num is the i-th of a run of unrelated numbers.
func num(i int) string { return fmt.Sprintf("+4477009%05d", (i*7919)%100000) }

func ev(dest string, at time.Time) Event {
	return Event{Kind: KindMessage, Destination: dest, Network: "192.0.2.0/24", UserAgent: "phone/1", Time: at,
		BodyHash: uint64(at.UnixNano()) | 1}
}

// firstAt sends the events in order and returns the 1-based index of the
// first verdict at level, or 0.
func firstAt(p *Policy, s *Sender, evs []Event, level Level) (int, Verdict) {
	for i, e := range evs {
		if v := s.Check(p, e); v.Level >= level {
			return i + 1, v
		}
	}
	return 0, Verdict{}
}
