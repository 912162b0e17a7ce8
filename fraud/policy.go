package fraud

import "reflect"

// Policy is a fraud policy at one level (the defaults, an account, a device
// group or a device), as stored and as served by the HTTP API at
// /v1/accounts/{a}/fraud-policy, .../groups/{g}/fraud-policy and
// .../devices/{d}/fraud-policy. Every field is optional: a nil pointer, nil
// slice or nil map sets nothing and leaves the value of the level before.
// Merge combines the levels; Sender.Check takes the merged policy.
//
// Slices (the safe list, prefix lists, schedules) replace the earlier
// level's whole list when set (an empty list clears it); the country map
// merges key by key.
type Policy struct {
	// Monitor is shadow mode: verdicts are computed and recorded, and no
	// action (refusal, throttle, containment) is taken.
	Monitor *bool `json:"monitor,omitempty"`
	// UTCOffsetMinutes is the offset from UTC of the clock that the
	// indicators' schedules are written in (e.g. 60 for CET).
	UTCOffsetMinutes *int `json:"utc_offset_minutes,omitempty"`
	// SafeList holds numbers and prefixes (an entry ending in '*') that are
	// never scored: a message to them is always allowed and not counted.
	SafeList []string `json:"safe_list,omitempty"`

	Destinations Destinations   `json:"destinations"`
	Indicators   Indicators     `json:"indicators"`
	History      HistoryOptions `json:"history"`
	Actions      Actions        `json:"actions"`
}

// Destinations says how risky a destination is, for the destination_risk
// indicator.
type Destinations struct {
	// PremiumPrefixes are premium-rate numbers or prefixes (ending '*').
	PremiumPrefixes []string `json:"premium_prefixes,omitempty"`
	// HighCostPrefixes are high-cost (not premium) numbers or prefixes.
	HighCostPrefixes []string `json:"high_cost_prefixes,omitempty"`
	// Countries maps an E.164 country code ("44") to a permission:
	// "allow", "monitor" (counted as risky) or "block" (refused).
	Countries map[string]string `json:"countries,omitempty"`
	// DefaultCountry is the permission of a country not in Countries.
	DefaultCountry *string `json:"default_country,omitempty"`
	// PremiumWeight, HighCostWeight and MonitorWeight are what one message
	// to such a destination adds to destination_risk; a message to a
	// blocked country adds 1.
	PremiumWeight  *float64 `json:"premium_weight,omitempty"`
	HighCostWeight *float64 `json:"high_cost_weight,omitempty"`
	MonitorWeight  *float64 `json:"monitor_weight,omitempty"`
}

// Country permissions.
const (
	CountryAllow   = "allow"
	CountryMonitor = "monitor"
	CountryBlock   = "block"
)

// Indicators holds one Indicator per fraud indicator. The JSON names are
// the indicator names that verdicts, incidents and metrics carry.
type Indicators struct {
	// RatePerMinute: weighted messages in the last 60 s.
	RatePerMinute Indicator `json:"rate_per_minute"`
	// BurstPerSecond: weighted messages in the last second.
	BurstPerSecond Indicator `json:"burst_per_second"`
	// DistinctDestinations: distinct destinations in the window (each
	// weighted by whether the device's history knows it).
	DistinctDestinations Indicator `json:"distinct_destinations"`
	// DestinationRisk: premium, high-cost, monitored and blocked-country
	// destinations in the window, each adding its weight.
	DestinationRisk Indicator `json:"destination_risk"`
	// SequentialDestinations: the longest chain of numbers in the window
	// that each lie within SequentialGap of one before (enumeration).
	SequentialDestinations Indicator `json:"sequential_destinations"`
	// SameBody: distinct destinations in the window that got the same
	// normalized body.
	SameBody Indicator `json:"same_body"`
	// HistoryDeviation: weighted messages in the last hour over what the
	// device's history expects: the most of the floor, the mean plus
	// Sigmas deviations of this hour of the week, and its busiest hour
	// retained; the group's and account's current hour likewise (floor
	// and hour of the week), which can raise a warning only.
	HistoryDeviation Indicator `json:"history_deviation"`
	// NewSource: messages in the window from a source (network, user
	// agent) the device's history has not seen, to destinations it has not
	// seen; a new network and a new user agent count 1, one of them alone
	// NewSourcePartialWeight.
	NewSource Indicator `json:"new_source"`
	// FailureRatio: failed deliveries (gateway 4xx/5xx) over deliveries in
	// the window, once MinCount outcomes are in it.
	FailureRatio Indicator `json:"failure_ratio"`
}

// Indicator configures one indicator. A level is reached when the value is
// at or above its threshold; a nil threshold is never reached.
type Indicator struct {
	Enabled *bool `json:"enabled,omitempty"`
	// Warning raises an event and a metric, nothing else.
	Warning *float64 `json:"warning,omitempty"`
	// Throttle, between Warning and Critical, refuses with 503 and
	// Retry-After.
	Throttle *float64 `json:"throttle,omitempty"`
	// Critical opens an incident and takes the policy's actions.
	Critical *float64 `json:"critical,omitempty"`
	// WindowSeconds is the sliding window of the indicators that have one
	// (not rate_per_minute, burst_per_second, history_deviation).
	WindowSeconds *float64 `json:"window_seconds,omitempty"`
	// KnownWeight overrides History.KnownDestinationWeight for this
	// indicator: what a message to a destination in the device's history
	// counts for.
	KnownWeight *float64 `json:"known_weight,omitempty"`
	// MinCount is how many events the window must hold before the
	// indicator is evaluated (failure_ratio: outcomes).
	MinCount *float64 `json:"min_count,omitempty"`
	// Schedules give other thresholds, or switch the indicator on or off,
	// during day and time windows (as OpenSIPS fraud_detection's rules).
	// The first that matches the event's time applies.
	Schedules []Schedule `json:"schedules,omitempty"`
}

// Schedule is a day and time window with its own thresholds. Nil fields
// keep the indicator's own.
type Schedule struct {
	// Days are "mon" ... "sun"; empty means every day.
	Days []string `json:"days,omitempty"`
	// From and To are "HH:MM" in the policy's UTC offset; the window is
	// [From, To), and wraps past midnight when To is before From.
	From     string   `json:"from"`
	To       string   `json:"to"`
	Enabled  *bool    `json:"enabled,omitempty"`
	Warning  *float64 `json:"warning,omitempty"`
	Throttle *float64 `json:"throttle,omitempty"`
	Critical *float64 `json:"critical,omitempty"`
}

// HistoryOptions configures the per-device, group and account history.
type HistoryOptions struct {
	// RetentionDays is how long hourly aggregates are kept.
	RetentionDays *int `json:"retention_days,omitempty"`
	// FloorPerHour is the least a device's expected hourly count can be,
	// so that a new or quiet user is not flagged for a busy hour;
	// GroupFloorPerHour and AccountFloorPerHour likewise.
	FloorPerHour        *float64 `json:"floor_per_hour,omitempty"`
	GroupFloorPerHour   *float64 `json:"group_floor_per_hour,omitempty"`
	AccountFloorPerHour *float64 `json:"account_floor_per_hour,omitempty"`
	// Sigmas: the expected hourly count is the mean plus Sigmas standard
	// deviations of the same hour of the week (and the hours beside it) in
	// the retained weeks.
	Sigmas *float64 `json:"sigmas,omitempty"`
	// Headroom raises the thresholds of rate_per_minute,
	// burst_per_second, distinct_destinations and same_body to Headroom
	// times the highest value the device reached in its retained history,
	// so a sender that runs a weekly campaign is judged against itself.
	Headroom *float64 `json:"headroom,omitempty"`
	// KnownDestinationWeight is what a message to a destination in the
	// device's history counts for in the counting indicators (a new
	// destination counts 1).
	KnownDestinationWeight *float64 `json:"known_destination_weight,omitempty"`
	// NewSourcePartialWeight is what a message from a new network with a
	// known user agent (or the reverse) counts for in new_source.
	NewSourcePartialWeight *float64 `json:"new_source_partial_weight,omitempty"`
	// SequentialGap is the largest difference between two numbers that
	// still continues a sequential chain.
	SequentialGap *int `json:"sequential_gap,omitempty"`
}

// Actions are what happens at critical (and not in monitor mode).
type Actions struct {
	// TerminateInFlight drops the sender's queued and in-flight messages.
	TerminateInFlight *bool `json:"terminate_in_flight,omitempty"`
	// ResetCredentials gives the device a new random secret and removes
	// its bindings.
	ResetCredentials *bool `json:"reset_credentials,omitempty"`
	// BlockDestinations blocks, for the account, the destinations the
	// sender targeted in the last IncidentWindowSeconds, for
	// BlockExpirySeconds.
	BlockDestinations     *bool `json:"block_destinations,omitempty"`
	BlockExpirySeconds    *int  `json:"block_expiry_seconds,omitempty"`
	IncidentWindowSeconds *int  `json:"incident_window_seconds,omitempty"`
	// Restore gives the rightful user service back: a check-sync NOTIFY to
	// the device's known-good bindings, which fetch the new secret.
	Restore *bool `json:"restore,omitempty"`
}

// Merge returns the effective policy: DefaultPolicy, then each layer in
// order (account, group, device), each overriding what it sets.
func Merge(layers ...Policy) Policy {
	out := DefaultPolicy()
	for _, l := range layers {
		merge(reflect.ValueOf(&out).Elem(), reflect.ValueOf(l))
	}
	return out
}

// merge sets in dst, a struct, each field that src sets, by the rule that
// Policy states: a pointer's value and a slice are copied, a map's entries
// are added to dst's, and nested structs merge field by field.
func merge(dst, src reflect.Value) {
	for i := range src.NumField() {
		d, s := dst.Field(i), src.Field(i)
		switch s.Kind() {
		case reflect.Struct:
			merge(d, s)
		case reflect.Pointer:
			if !s.IsNil() {
				d.Set(reflect.New(s.Type().Elem()))
				d.Elem().Set(s.Elem())
			}
		case reflect.Slice:
			if !s.IsNil() {
				d.Set(reflect.AppendSlice(reflect.MakeSlice(s.Type(), 0, s.Len()), s))
			}
		case reflect.Map:
			if !s.IsNil() {
				m := reflect.MakeMap(s.Type())
				for _, from := range []reflect.Value{d, s} {
					for it := from.MapRange(); it.Next(); {
						m.SetMapIndex(it.Key(), it.Value())
					}
				}
				d.Set(m)
			}
		default: // a plain field could not say "unset": it would never merge
			panic("fraud: policy field " + src.Type().Field(i).Name + " is not a pointer, slice, map or struct")
		}
	}
}

// Indicator names, as in JSON, verdicts and incidents.
const (
	RatePerMinute          = "rate_per_minute"
	BurstPerSecond         = "burst_per_second"
	DistinctDestinations   = "distinct_destinations"
	DestinationRisk        = "destination_risk"
	SequentialDestinations = "sequential_destinations"
	SameBody               = "same_body"
	HistoryDeviation       = "history_deviation"
	NewSource              = "new_source"
	FailureRatio           = "failure_ratio"
	// SafeListed and BlockedDestination name verdicts that no threshold
	// made: a safe-listed destination, a blocked country.
	SafeListed         = "safe_list"
	BlockedDestination = "blocked_destination"
)

// indicatorNames lists the indicators in the order Indicators.list gives
// them; a verdict reports the first of the highest level.
var indicatorNames = [...]string{RatePerMinute, BurstPerSecond, DistinctDestinations, DestinationRisk,
	SequentialDestinations, SameBody, HistoryDeviation, NewSource, FailureRatio}

const (
	iRate = iota
	iBurst
	iDistinct
	iRisk
	iSeq
	iSameBody
	iDeviation
	iNewSource
	iFailure
	nIndicators
)

func (x *Indicators) list() [nIndicators]*Indicator {
	return [nIndicators]*Indicator{&x.RatePerMinute, &x.BurstPerSecond, &x.DistinctDestinations,
		&x.DestinationRisk, &x.SequentialDestinations, &x.SameBody, &x.HistoryDeviation, &x.NewSource,
		&x.FailureRatio}
}

// SafeListed tells whether dest (any form NormalizeDestination accepts) is
// on the policy's safe list: never scored, refused or blocked. Check
// applies it itself; the supervisor asks it before consulting Blocks.
func (p *Policy) SafeListed(dest string) bool {
	return matchAny(NormalizeDestination(dest), p.SafeList)
}
