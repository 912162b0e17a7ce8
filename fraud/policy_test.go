package fraud

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// TestMerge_DefaultsAccountGroupDevice: each layer overrides only what it
// sets, later layers win (issue 10, Build 4: "defaults, then account, group
// and device, each overriding the one before").
func TestMerge_DefaultsAccountGroupDevice(t *testing.T) {
	account := Policy{Indicators: Indicators{RatePerMinute: Indicator{Critical: f(30), Warning: f(20)}},
		Destinations: Destinations{Countries: map[string]string{"53": CountryBlock, "44": CountryMonitor}},
		SafeList:     []string{"+1555*"}}
	group := Policy{Indicators: Indicators{RatePerMinute: Indicator{Critical: f(40)}},
		Destinations: Destinations{Countries: map[string]string{"44": CountryAllow}}}
	device := Policy{Monitor: b(true), SafeList: []string{}}
	p := Merge(account, group, device)
	def := DefaultPolicy()
	checks := []struct {
		name      string
		got, want any
	}{
		{"critical from group", *p.Indicators.RatePerMinute.Critical, 40.0},
		{"warning from account", *p.Indicators.RatePerMinute.Warning, 20.0},
		{"enabled from defaults", *p.Indicators.RatePerMinute.Enabled, true},
		{"burst untouched", *p.Indicators.BurstPerSecond.Critical, *def.Indicators.BurstPerSecond.Critical},
		{"country from account", p.Destinations.Countries["53"], CountryBlock},
		{"country overridden by group", p.Destinations.Countries["44"], CountryAllow},
		{"monitor from device", *p.Monitor, true},
		{"safe list cleared by device", len(p.SafeList), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if account.Destinations.Countries["44"] != CountryMonitor {
		t.Error("Merge changed a layer's map")
	}
	if err := p.Validate(); err != nil {
		t.Errorf("merged policy invalid: %v", err)
	}
	for _, c := range []struct {
		path string
		want int
	}{{"indicators.rate_per_minute.critical", 1}, {"indicators.rate_per_minute.warning", 0},
		{"indicators.burst_per_second.critical", -1}, {"monitor", 2}} {
		if got := Origin(c.path, account, group, device); got != c.want {
			t.Errorf("Origin(%s) = %d, want %d", c.path, got, c.want)
		}
	}
}

// TestDefaultPolicy_SetsEveryFieldAndIsValid: the defaults leave nothing to
// a nil, and pass their own validation.
func TestDefaultPolicy_SetsEveryFieldAndIsValid(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Fatalf("JSON round trip differs:\n%s\n%s", b, b2)
	}
	for i, in := range p.Indicators.list() {
		if in.Enabled == nil || in.Warning == nil || in.Critical == nil {
			t.Errorf("%s: default leaves enabled, warning or critical unset", indicatorNames[i])
		}
	}
}

// TestValidate_NamesTheField: bad thresholds get an error naming the JSON
// field (issue 10: "Bad thresholds get a 400 naming the field").
func TestValidate_NamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		p     Policy
		field string
	}{
		{"warning above critical", Policy{Indicators: Indicators{RatePerMinute: Indicator{Warning: f(30), Critical: f(20)}}},
			"indicators.rate_per_minute.critical"},
		{"throttle above critical", Policy{Indicators: Indicators{SameBody: Indicator{Throttle: f(30), Critical: f(20)}}},
			"indicators.same_body.critical"},
		{"negative", Policy{Indicators: Indicators{BurstPerSecond: Indicator{Warning: f(-1)}}}, "indicators.burst_per_second.warning"},
		{"NaN", Policy{Indicators: Indicators{DistinctDestinations: Indicator{Critical: f(math.NaN())}}},
			"indicators.distinct_destinations.critical"},
		{"infinite", Policy{Indicators: Indicators{DistinctDestinations: Indicator{Critical: f(math.Inf(1))}}},
			"indicators.distinct_destinations.critical"},
		{"ratio above 1", Policy{Indicators: Indicators{FailureRatio: Indicator{Critical: f(1.5)}}}, "indicators.failure_ratio.critical"},
		{"fixed window", Policy{Indicators: Indicators{RatePerMinute: Indicator{WindowSeconds: f(120)}}},
			"indicators.rate_per_minute.window_seconds"},
		{"zero window", Policy{Indicators: Indicators{SameBody: Indicator{WindowSeconds: f(0)}}}, "indicators.same_body.window_seconds"},
		{"unknown country", Policy{Destinations: Destinations{Countries: map[string]string{"999": CountryBlock}}},
			"destinations.countries.999"},
		{"bad permission", Policy{Destinations: Destinations{Countries: map[string]string{"44": "deny"}}}, "destinations.countries.44"},
		{"malformed prefix", Policy{Destinations: Destinations{PremiumPrefixes: []string{"+1900*", "1-900"}}},
			"destinations.premium_prefixes[1]"},
		{"prefix too long", Policy{Destinations: Destinations{HighCostPrefixes: []string{"+1234567890123456*"}}},
			"destinations.high_cost_prefixes[0]"},
		{"safe list junk", Policy{SafeList: []string{"+44 20*"}}, "safe_list[0]"},
		{"bad day", Policy{Indicators: Indicators{RatePerMinute: Indicator{Schedules: []Schedule{{Days: []string{"monday"}, From: "08:00", To: "18:00"}}}}},
			"indicators.rate_per_minute.schedules[0].days[0]"},
		{"bad time", Policy{Indicators: Indicators{RatePerMinute: Indicator{Schedules: []Schedule{{From: "25:00", To: "18:00"}}}}},
			"indicators.rate_per_minute.schedules[0].from"},
		{"schedule critical under warning", Policy{Indicators: Indicators{RatePerMinute: Indicator{Warning: f(10),
			Schedules: []Schedule{{From: "22:00", To: "06:00", Critical: f(5)}}}}}, "indicators.rate_per_minute.schedules[0].critical"},
		{"retention", Policy{History: HistoryOptions{RetentionDays: n(0)}}, "history.retention_days"},
		{"floor zero", Policy{History: HistoryOptions{FloorPerHour: f(0)}}, "history.floor_per_hour"},
		{"known weight above 1", Policy{History: HistoryOptions{KnownDestinationWeight: f(2)}}, "history.known_destination_weight"},
		{"block expiry", Policy{Actions: Actions{BlockExpirySeconds: n(-5)}}, "actions.block_expiry_seconds"},
		{"offset", Policy{UTCOffsetMinutes: n(24 * 60)}, "utc_offset_minutes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Validate() = %v, want a FieldError", err)
			}
			if fe.Field != c.field {
				t.Fatalf("field %q (%v), want %q", fe.Field, err, c.field)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("message %q does not name %s", err, c.field)
			}
		})
	}
	if err := (Policy{}).Validate(); err != nil {
		t.Fatalf("empty layer: %v", err)
	}
}

// TestNormalizeDestination_Forms: the forms a number arrives in compare
// equal.
func TestNormalizeDestination_Forms(t *testing.T) {
	cases := map[string]string{
		"+44 7700 900123":                "+447700900123",
		"00447700900123":                 "+447700900123",
		"sip:+447700900123@x;user=phone": "+447700900123",
		"tel:+1-555-010-0100":            "+15550100100",
		"Alice":                          "alice",
		"sip:Alice@acme.example":         "alice",
	}
	for in, want := range cases {
		if got := NormalizeDestination(in); got != want {
			t.Errorf("NormalizeDestination(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"udp:192.0.2.7:5060": "192.0.2.0/24", "[2001:db8::1]:5060": "2001:db8::/48",
		"198.51.100.9": "198.51.100.0/24", "tls:[2001:db8:1:2::3]:5061": "2001:db8:1::/48"} {
		if got := NetworkOf(in); got != want {
			t.Errorf("NetworkOf(%q) = %q, want %q", in, got, want)
		}
	}
	if BodyHash([]byte("Your code is 1234!")) != BodyHash([]byte("your  CODE is 98765")) {
		t.Error("bodies that differ in digits, case and punctuation hash apart")
	}
	if BodyHash([]byte("hello")) == BodyHash([]byte("goodbye")) || BodyHash(nil) != 0 {
		t.Error("BodyHash does not tell texts apart")
	}
}
