package simulations

// The fraud scenario (issue 10): seeded messaging traffic of legitimate
// users and compromised devices, scored by package fraud (the runtime's
// detector, default policy) and by an OpenSIPS fraud_detection-style
// fixed-threshold baseline (fraud.FixedThreshold) on the same messages.
// See FraudScenario for the model and FraudReport for the measures.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
)

// FraudScenario is a fraud simulation (scenarios/fraud.json, kind
// "fraud"). Zero fields take the defaults WithDefaults documents.
type FraudScenario struct {
	Kind        string `json:"kind"` // "fraud"
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`

	Users            int     `json:"users"`              // 0: 10,000
	UsersPerGroup    int     `json:"users_per_group"`    // 0: 20
	GroupsPerAccount int     `json:"groups_per_account"` // 0: 10
	Days             float64 `json:"days"`               // simulated days of traffic, from a Monday 00:00 UTC; 0: 2
	HistoryDays      int     `json:"history_days"`       // history before them; 0: 21
	CompromisedShare float64 `json:"compromised_share"`  // 0: 0.01
	MarketingShare   float64 `json:"marketing_share"`    // senders with a weekly campaign; 0: 0.005
	BroadcastShare   float64 `json:"broadcast_share"`    // users who send one group broadcast; 0: 0.02
	NewUserShare     float64 `json:"new_user_share"`     // users without history; 0: 0.02
	TravelShare      float64 `json:"travel_share"`       // users on another network each day; 0: 0.03
	DailyMessages    float64 `json:"daily_messages"`     // median messages a user sends on a weekday; 0: 12
	RestoreSeconds   float64 `json:"restore_seconds"`    // reset to the rightful user's re-registration; 0: 20
}

// FraudKind is the kind field of a fraud scenario file.
const FraudKind = "fraud"

// IsFraudScenario tells whether the scenario file at path is a fraud
// scenario (its "kind" is "fraud"), so `switchboard sim --scenario` can
// route it.
func IsFraudScenario(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var k struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(b, &k) == nil && k.Kind == FraudKind
}

// LoadFraudScenario reads a fraud scenario; unknown fields are an error.
func LoadFraudScenario(path string) (FraudScenario, error) {
	var s FraudScenario
	if err := loadScenario(path, &s); err != nil {
		return FraudScenario{}, err
	}
	return s, nil
}

// WithDefaults returns s with every zero field set to its default.
func (s FraudScenario) WithDefaults() FraudScenario {
	s.Users = cmp.Or(s.Users, 10_000)
	s.UsersPerGroup = cmp.Or(s.UsersPerGroup, 20)
	s.GroupsPerAccount = cmp.Or(s.GroupsPerAccount, 10)
	s.Days = cmp.Or(s.Days, 2)
	s.HistoryDays = cmp.Or(s.HistoryDays, 21)
	s.CompromisedShare = cmp.Or(s.CompromisedShare, 0.01)
	s.MarketingShare = cmp.Or(s.MarketingShare, 0.005)
	s.BroadcastShare = cmp.Or(s.BroadcastShare, 0.02)
	s.NewUserShare = cmp.Or(s.NewUserShare, 0.02)
	s.TravelShare = cmp.Or(s.TravelShare, 0.03)
	s.DailyMessages = cmp.Or(s.DailyMessages, 12)
	s.RestoreSeconds = cmp.Or(s.RestoreSeconds, 20)
	return s
}

// Validate reports what is wrong with s (defaults applied).
func (s FraudScenario) Validate() error {
	s = s.WithDefaults()
	var errs []error
	if s.Kind != FraudKind {
		errs = append(errs, fmt.Errorf("kind %q: a fraud scenario has \"kind\": %q", s.Kind, FraudKind))
	}
	if s.Users < 10 || s.UsersPerGroup < 1 || s.GroupsPerAccount < 1 {
		errs = append(errs, errors.New("users must be >= 10, users_per_group and groups_per_account >= 1"))
	}
	if s.Days <= 0.25 || s.Days > 28 || s.HistoryDays < 0 || s.HistoryDays > 28 {
		errs = append(errs, errors.New("days must be in (0.25, 28] and history_days in [0, 28]"))
	}
	for _, x := range []float64{s.CompromisedShare, s.MarketingShare, s.BroadcastShare, s.NewUserShare, s.TravelShare} {
		if x < 0 || x > 0.5 {
			errs = append(errs, errors.New("shares must be in [0, 0.5]"))
			break
		}
	}
	if s.DailyMessages <= 0 || s.RestoreSeconds < 0 {
		errs = append(errs, errors.New("daily_messages must be > 0, restore_seconds >= 0"))
	}
	return errors.Join(errs...)
}

// Attack types, as the report names them.
const (
	AttackFlood       = "flood"
	AttackDrip        = "slow_drip"
	AttackEnumeration = "enumeration"
	AttackPremium     = "premium_pumping"
	AttackSpam        = "content_spam"
	AttackNewSource   = "new_source"
)

// AttackTypes lists the attack types in report order.
func AttackTypes() []string {
	return []string{AttackFlood, AttackDrip, AttackEnumeration, AttackPremium, AttackSpam, AttackNewSource}
}

// simMsg is one message of the workload.
type simMsg struct {
	at     int64 // ns since the simulation's start
	user   int32
	attack int32 // index in attacks, -1 for a legitimate message
	dest   uint64
	body   uint64
	source uint8 // 0 home, 1 travel network, 2 new user agent, 3 attacker, 4 attacker with the victim's agent
	fails  bool  // the gateway will answer 4xx/5xx
}

type simUser struct {
	contacts   []uint64
	customers  []uint64 // marketing senders
	daily      float64
	group, acc int
	newUser    bool
	marketer   bool
}

type simAttack struct {
	user  int
	kind  string
	start int64 // ns
	msgs  int   // messages generated
}

// fraudWorkload is everything both detectors see, generated once.
type fraudWorkload struct {
	sc      FraudScenario
	users   []simUser
	attacks []simAttack
	msgs    []simMsg
}

const (
	nsPerSec  = int64(1e9)
	nsPerHour = 3600 * nsPerSec
)

// hourWeight is the diurnal shape of legitimate traffic (hour of day,
// UTC): quiet at night, busiest in office hours, a second peak in the
// evening.
var hourWeight = [24]float64{0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.25, 0.6, 0.9, 1, 1, 1,
	0.9, 1, 1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.55, 0.35, 0.15}

var hourWeightSum = func() (sum float64) {
	for _, x := range hourWeight {
		sum += x
	}
	return sum
}()

func dayFactor(weekday int) float64 { // 0 Monday
	if weekday >= 5 {
		return 0.55
	}
	return 1
}

func randNumber(rng *rand.Rand) uint64 {
	switch rng.IntN(10) {
	case 0, 1:
		return 1_555_000_0000 + uint64(rng.IntN(9_999_999)) // +1 555 ...
	case 2:
		return 49_151_0000_0000 + uint64(rng.IntN(99_999_999)) // +49 151 ...
	default:
		return 44_7700_000000 + uint64(rng.IntN(999_999)) // +44 7700 ...
	}
}

// premiumNumber is a number under one of the default premium prefixes.
func premiumNumber(rng *rand.Rand) uint64 {
	prefixes := []uint64{1900, 1976, 449, 49900, 39899}
	p := prefixes[rng.IntN(len(prefixes))]
	digits := 11 - len(strconv.FormatUint(p, 10))
	return p*uint64(math.Pow10(digits)) + uint64(rng.Int64N(int64(math.Pow10(digits))))
}

func poisson(rng *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// genFraudWorkload draws users, their history's inputs, the simulated
// days' messages and the attacks, all from seed.
func genFraudWorkload(sc FraudScenario, seed uint64) *fraudWorkload {
	rng := rand.New(rand.NewPCG(seed, 0xF4A0D))
	w := &fraudWorkload{sc: sc}
	w.users = make([]simUser, sc.Users)
	for i := range w.users {
		u := &w.users[i]
		u.group = i / sc.UsersPerGroup
		u.acc = u.group / sc.GroupsPerAccount
		u.daily = min(sc.DailyMessages*math.Exp(0.9*rng.NormFloat64()), 400)
		n := 5 + rng.IntN(36)
		for range n {
			u.contacts = append(u.contacts, randNumber(rng))
		}
		u.newUser = rng.Float64() < sc.NewUserShare
		if rng.Float64() < sc.MarketingShare {
			u.marketer = true
			for range 1000 {
				u.customers = append(u.customers, randNumber(rng))
			}
		}
	}
	end := int64(sc.Days * 24 * float64(nsPerHour))
	for i := range w.users {
		w.legit(rng, int32(i), end)
	}
	// 1% compromised, the attack types in turn.
	perm := rng.Perm(len(w.users))
	nAttacks := int(math.Round(sc.CompromisedShare * float64(len(w.users))))
	types := AttackTypes()
	for k := range nAttacks {
		a := simAttack{user: perm[k], kind: types[k%len(types)]}
		a.start = 2*nsPerHour + rng.Int64N(max(end-8*nsPerHour, nsPerHour))
		w.attacks = append(w.attacks, a)
		w.attack(rng, int32(len(w.attacks)-1))
	}
	slices.SortStableFunc(w.msgs, func(a, b simMsg) int { return cmp.Compare(a.at, b.at) })
	return w
}

// legit adds user i's legitimate messages in [0, end): conversations of
// a few messages with one contact, now and then a new contact or a
// premium vote, a day on another network, a campaign or a broadcast.
func (w *fraudWorkload) legit(rng *rand.Rand, i int32, end int64) {
	u := &w.users[i]
	sc := w.sc
	days := int(math.Ceil(sc.Days))
	for d := range days {
		source := uint8(0)
		if rng.Float64() < sc.TravelShare {
			source = 1
		} else if rng.Float64() < 0.005 {
			source = 2
		}
		for h := range 24 {
			base := int64(d*24+h) * nsPerHour
			if base >= end {
				return
			}
			sessions := poisson(rng, u.daily*dayFactor(d%7)*hourWeight[h]/hourWeightSum/3)
			for range sessions {
				t := base + rng.Int64N(nsPerHour)
				dest := u.contacts[zipfIndex(rng, len(u.contacts))]
				size := 1 + min(int(rng.ExpFloat64()*2), 9)
				switch r := rng.Float64(); {
				case r < 0.0008:
					dest, size = premiumNumber(rng), 1
				case r < 0.05:
					dest = randNumber(rng)
					u.contacts = append(u.contacts, dest)
				}
				for range size {
					w.msgs = append(w.msgs, simMsg{at: t, user: i, attack: -1, dest: dest, body: rng.Uint64() | 1,
						source: source, fails: rng.Float64() < 0.02})
					t += int64((5 + rng.Float64()*55) * float64(nsPerSec))
				}
			}
		}
	}
	if u.marketer {
		// One campaign on a weekday afternoon.
		t := int64(rng.IntN(min(days, 5))*24+13)*nsPerHour + rng.Int64N(3*nsPerHour)
		campaign(rng, u, t, func(t int64, dest, body uint64) {
			if t < end {
				w.msgs = append(w.msgs, simMsg{at: t, user: i, attack: -1, dest: dest, body: body, fails: rng.Float64() < 0.05})
			}
		})
	}
	if rng.Float64() < sc.BroadcastShare {
		// A broadcast to the group's contacts, sent by an app at 5/s.
		t := 8*nsPerHour + rng.Int64N(max(end-10*nsPerHour, nsPerHour))
		body := rng.Uint64() | 1
		n := min(len(u.contacts), 10+rng.IntN(41))
		for k := range n {
			w.msgs = append(w.msgs, simMsg{at: t, user: i, attack: -1, dest: u.contacts[k], body: body, fails: rng.Float64() < 0.02})
			t += nsPerSec / 5
		}
	}
}

// campaign sends u's marketing campaign from t through send: 200-800
// messages at 2-8/s, one text, to the customer list and some new
// customers.
func campaign(rng *rand.Rand, u *simUser, t int64, send func(t int64, dest, body uint64)) {
	size, rate, body := 200+rng.IntN(601), 2+rng.Float64()*6, rng.Uint64()|1
	for range size {
		dest := u.customers[rng.IntN(len(u.customers))]
		if rng.Float64() < 0.3 {
			dest = randNumber(rng)
		}
		send(t, dest, body)
		t += int64(float64(nsPerSec) / rate)
	}
}

// zipfIndex picks a contact, the first ones most often.
func zipfIndex(rng *rand.Rand, n int) int {
	return min(int(float64(n)*math.Pow(rng.Float64(), 2.5)), n-1)
}

// attack adds attack k's messages: what a compromised device sends until
// it is stopped (the simulation drops those after containment).
func (w *fraudWorkload) attack(rng *rand.Rand, k int32) {
	a := &w.attacks[k]
	t := a.start
	var count int
	var gap func() float64
	body := func() uint64 { return rng.Uint64() | 1 }
	dest := func(int) uint64 { return randNumber(rng) }
	source := uint8(0) // the compromised device itself (malware, a leaked app token)
	failRate := 0.2
	// around draws gaps of mean seconds, give or take half.
	around := func(mean float64) func() float64 { return func() float64 { return mean * (0.5 + rng.Float64()) } }
	switch a.kind {
	case AttackFlood:
		rate := 3 + rng.Float64()*17
		count, gap = 2000, func() float64 { return rng.ExpFloat64() / rate }
		failRate = 0.3
	case AttackDrip:
		count, gap = 300, around(20+rng.Float64()*70)
	case AttackEnumeration:
		gap = around(0.3 + rng.Float64()*2.7)
		base := randNumber(rng) / 1000 * 1000
		step := uint64(1 + rng.IntN(3))
		count = 1000
		dest = func(i int) uint64 { return base + uint64(i)*step }
		failRate = 0.6
	case AttackPremium:
		count, gap = 500, around(1+rng.Float64()*4)
		dest = func(int) uint64 { return premiumNumber(rng) }
		failRate = 0.1
	case AttackSpam:
		count, gap = 2000, around(0.2+rng.Float64()*0.8)
		b := rng.Uint64() | 1
		body = func() uint64 { return b }
		failRate = 0.25
	case AttackNewSource:
		count, gap = 500, around(1+rng.Float64()*4)
		source = 3
		if rng.Float64() < 0.3 {
			source = 4 // copies the victim's User-Agent
		}
	}
	end := int64(w.sc.Days * 24 * float64(nsPerHour))
	for i := range count {
		if t >= end {
			break
		}
		w.msgs = append(w.msgs, simMsg{at: t, user: int32(a.user), attack: k, dest: dest(i), body: body(),
			source: source, fails: rng.Float64() < failRate})
		a.msgs++
		t += int64(gap() * float64(nsPerSec))
	}
}
