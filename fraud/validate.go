package fraud

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one problem in a policy: the JSON path of the field at
// fault (e.g. "indicators.rate_per_minute.critical") and what is wrong.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError is every problem Validate found, in field order. It
// unwraps to its FieldErrors, so errors.As(err, &fieldErr) finds the
// first.
type ValidationError []*FieldError

func (v ValidationError) Error() string {
	parts := make([]string, len(v))
	for i, e := range v {
		parts[i] = e.Error()
	}
	return "fraud: invalid policy: " + strings.Join(parts, "; ")
}

// Unwrap returns the field errors.
func (v ValidationError) Unwrap() []error {
	out := make([]error, len(v))
	for i, e := range v {
		out[i] = e
	}
	return out
}

// ErrInvalidPolicy is matched (errors.Is) by every ValidationError.
var ErrInvalidPolicy = errors.New("fraud: invalid policy")

// Is makes errors.Is(err, ErrInvalidPolicy) true.
func (v ValidationError) Is(target error) bool { return target == ErrInvalidPolicy }

// Validate checks the fields p sets; it returns nil or a ValidationError
// naming each field at fault. A layer is checked on its own (its warning
// not above its critical, and so on); the HTTP API should also validate
// the merged policy, so that a layer's critical under an inherited warning
// is refused.
func (p Policy) Validate() error {
	var v validator
	v.between("utc_offset_minutes", p.UTCOffsetMinutes, -14*60, 14*60, "must be within -840 and 840 (UTC-14:00 to UTC+14:00)")
	v.entries("safe_list", p.SafeList, true)
	d := p.Destinations
	v.entries("destinations.premium_prefixes", d.PremiumPrefixes, false)
	v.entries("destinations.high_cost_prefixes", d.HighCostPrefixes, false)
	for _, cc := range slices.Sorted(maps.Keys(d.Countries)) {
		f := "destinations.countries." + cc
		if !countryCodes[cc] {
			v.add(f, "not an assigned E.164 country code (write its digits, e.g. \"44\")")
		}
		v.permission(f, d.Countries[cc])
	}
	if d.DefaultCountry != nil {
		v.permission("destinations.default_country", *d.DefaultCountry)
	}
	v.weight("destinations.premium_weight", d.PremiumWeight, math.Inf(1))
	v.weight("destinations.high_cost_weight", d.HighCostWeight, math.Inf(1))
	v.weight("destinations.monitor_weight", d.MonitorWeight, math.Inf(1))

	ind := p.Indicators.list()
	for i, in := range ind {
		v.indicator(i, *in)
	}

	h := p.History
	v.between("history.retention_days", h.RetentionDays, 1, MaxRetentionDays, fmt.Sprintf("must be 1 to %d", MaxRetentionDays))
	v.positive("history.floor_per_hour", h.FloorPerHour)
	v.positive("history.group_floor_per_hour", h.GroupFloorPerHour)
	v.positive("history.account_floor_per_hour", h.AccountFloorPerHour)
	v.weight("history.sigmas", h.Sigmas, 100)
	v.weight("history.headroom", h.Headroom, 1000)
	v.weight("history.known_destination_weight", h.KnownDestinationWeight, 1)
	v.weight("history.new_source_partial_weight", h.NewSourcePartialWeight, 1)
	v.between("history.sequential_gap", h.SequentialGap, 1, 1000, "must be 1 to 1000")

	a := p.Actions
	v.between("actions.block_expiry_seconds", a.BlockExpirySeconds, 0, 30*86400,
		"must be 0 to 2592000 (30 days); 0 blocks until the incident is resolved")
	v.between("actions.incident_window_seconds", a.IncidentWindowSeconds, 1, 86400, "must be 1 to 86400")
	if len(v) == 0 {
		return nil
	}
	return ValidationError(v)
}

// MaxRetentionDays bounds history.retention_days (and so a History's size).
const MaxRetentionDays = 92

type validator ValidationError

func (v *validator) add(field, reason string) {
	*v = append(*v, &FieldError{Field: field, Reason: reason})
}

// between adds reason for x when it is set and not within lo and hi.
func (v *validator) between(field string, x *int, lo, hi int, reason string) {
	if x != nil && (*x < lo || *x > hi) {
		v.add(field, reason)
	}
}

func (v *validator) number(field string, x *float64) bool {
	if x == nil {
		return false
	}
	if math.IsNaN(*x) || math.IsInf(*x, 0) {
		v.add(field, "must be a finite number")
		return false
	}
	if *x < 0 {
		v.add(field, "must not be negative")
		return false
	}
	return true
}

func (v *validator) weight(field string, x *float64, max float64) {
	if v.number(field, x) && *x > max {
		v.add(field, fmt.Sprintf("must not be above %g", max))
	}
}

func (v *validator) positive(field string, x *float64) {
	if v.number(field, x) && *x == 0 {
		v.add(field, "must be above 0")
	}
}

func (v *validator) permission(field, s string) {
	if !slices.Contains([]string{CountryAllow, CountryMonitor, CountryBlock}, s) {
		v.add(field, fmt.Sprintf("%q is not a permission: allow, monitor or block", s))
	}
}

// entries checks the entries of the safe list or a prefix list, field:
// '+' and 1 to 15 digits, optionally ending in '*' (a prefix); the safe
// list (user) also takes a SIP user (a device id).
func (v *validator) entries(field string, list []string, user bool) {
	for i, e := range list {
		body := strings.TrimSuffix(e, "*")
		if strings.HasPrefix(body, "+") {
			digits := body[1:]
			if len(digits) >= 1 && len(digits) <= 15 && strings.Trim(digits, "0123456789") == "" {
				continue
			}
		} else if user && e != "" && !strings.HasSuffix(e, "*") && NormalizeDestination(e) == e &&
			!parseDest(e).isNum {
			continue
		}
		msg := fmt.Sprintf("%q: write a number as + and 1 to 15 digits, a prefix ending in *", e)
		if user {
			msg += ", or a lower-case SIP user"
		}
		v.add(fmt.Sprintf("%s[%d]", field, i), msg)
	}
}

// windowed tells whether indicator i takes window_seconds.
func windowed(i int) bool { return i != iRate && i != iBurst && i != iDeviation }

func (v *validator) indicator(i int, in Indicator) {
	f := "indicators." + indicatorNames[i]
	max := math.Inf(1)
	if i == iFailure {
		max = 1
	}
	v.thresholds(f, max, in.Warning, in.Throttle, in.Critical)
	v.levels(f, in.Warning, in.Throttle, in.Critical)
	if in.WindowSeconds != nil {
		if !windowed(i) {
			v.add(f+".window_seconds", "this indicator's window is fixed; remove the field")
		} else if v.number(f+".window_seconds", in.WindowSeconds) && (*in.WindowSeconds < 1 || *in.WindowSeconds > 86400) {
			v.add(f+".window_seconds", "must be 1 to 86400")
		}
	}
	v.weight(f+".known_weight", in.KnownWeight, 1)
	v.weight(f+".min_count", in.MinCount, 1e6)
	for k, s := range in.Schedules {
		sf := fmt.Sprintf("%s.schedules[%d]", f, k)
		for j, d := range s.Days {
			if _, ok := weekdays[d]; !ok {
				v.add(fmt.Sprintf("%s.days[%d]", sf, j), fmt.Sprintf("%q is not a day: mon, tue, wed, thu, fri, sat or sun", d))
			}
		}
		from, okFrom := clockMinutes(s.From)
		to, okTo := clockMinutes(s.To)
		if !okFrom {
			v.add(sf+".from", fmt.Sprintf("%q is not a time of day HH:MM (00:00 to 24:00)", s.From))
		}
		if !okTo {
			v.add(sf+".to", fmt.Sprintf("%q is not a time of day HH:MM (00:00 to 24:00)", s.To))
		}
		if okFrom && okTo && from == to {
			v.add(sf+".to", "equals from: the window would be empty")
		}
		v.thresholds(sf, max, s.Warning, s.Throttle, s.Critical)
		v.levels(sf, cmp.Or(s.Warning, in.Warning), cmp.Or(s.Throttle, in.Throttle), cmp.Or(s.Critical, in.Critical))
	}
}

// thresholds checks that the thresholds set are within 0 and max.
func (v *validator) thresholds(f string, max float64, w, t, c *float64) {
	v.weight(f+".warning", w, max)
	v.weight(f+".throttle", t, max)
	v.weight(f+".critical", c, max)
}

// levels checks warning <= throttle <= critical among those set.
func (v *validator) levels(f string, w, t, c *float64) {
	ok := func(x *float64) bool { return x != nil && !math.IsNaN(*x) }
	switch {
	case ok(w) && ok(c) && *w > *c:
		v.add(f+".critical", fmt.Sprintf("%g is below warning %g", *c, *w))
	case ok(w) && ok(t) && *w > *t:
		v.add(f+".throttle", fmt.Sprintf("%g is below warning %g", *t, *w))
	case ok(t) && ok(c) && *t > *c:
		v.add(f+".critical", fmt.Sprintf("%g is below throttle %g", *c, *t))
	}
}

var weekdays = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// clockMinutes parses "HH:MM" (00:00 to 24:00) into minutes of the day.
func clockMinutes(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}
