package fraud

import (
	"math"
	"time"
)

// History is what a device (or a device group, or an account) has done:
// hourly message counts and daily peaks over the retention, the sources
// (network, user agent) its credentials were used from, and the
// destinations it has written to. It is bounded: retention_days*24 hourly
// counts, retention_days daily peaks, MaxSources sources and a fixed
// two-generation Bloom filter of destinations (about 1 KiB). Destinations
// and sources are kept as hashes, never as text.
//
// A History is not safe for concurrent use; its owner (the account's
// messaging supervisor) serializes access. Persist it with MarshalBinary
// (at least whenever a Verdict says Folded, and before the Sender is
// dropped: see Sender.Flush) and load it with UnmarshalBinary.
type History struct {
	hours    []float32 // weighted messages per hour, a ring indexed by unix hour
	peaks    []Peaks32 // highest values per day, a ring indexed by unix day
	lastHour int64     // the newest hour in hours; 0: empty
	lastDay  int64     // the newest day in peaks
	first    int64     // the first hour ever observed; 0: none

	sources []source

	bloomEpoch int64 // the day the current generation began
	bloom      [2][bloomWords]uint64
}

// Peaks are the highest values a device's counting indicators reached.
type Peaks struct {
	PerMinute, PerSecond, Distinct, SameBody float64
	// PerHour is the most weighted messages in one hour.
	PerHour float64
}

// Peaks32 is Peaks as stored.
type Peaks32 struct {
	PerMinute, PerSecond, Distinct, SameBody, PerHour float32
}

func (p Peaks32) max(q Peaks32) Peaks32 {
	return Peaks32{max(p.PerMinute, q.PerMinute), max(p.PerSecond, q.PerSecond),
		max(p.Distinct, q.Distinct), max(p.SameBody, q.SameBody), max(p.PerHour, q.PerHour)}
}

func (p Peaks32) wide() Peaks {
	return Peaks{float64(p.PerMinute), float64(p.PerSecond), float64(p.Distinct), float64(p.SameBody), float64(p.PerHour)}
}

func (p Peaks) narrow() Peaks32 {
	return Peaks32{float32(p.PerMinute), float32(p.PerSecond), float32(p.Distinct), float32(p.SameBody), float32(p.PerHour)}
}

type source struct {
	network, agent uint32
	hour           int64 // last seen
}

const (
	// MaxSources is how many sources a History remembers; the least
	// recently used is forgotten first.
	MaxSources = 16
	bloomWords = 64 // 4,096 bits a generation
	bloomK     = 4
)

// NewHistory returns an empty history that keeps retentionDays days
// (1 to MaxRetentionDays; out of range values are clamped).
func NewHistory(retentionDays int) *History {
	h := &History{}
	h.SetRetention(retentionDays)
	return h
}

// Retention is the days of hourly aggregates kept.
func (h *History) Retention() int { return len(h.peaks) }

// SetRetention changes the retention, keeping the most recent aggregates
// that fit.
func (h *History) SetRetention(days int) {
	days = min(max(days, 1), MaxRetentionDays)
	if days == len(h.peaks) {
		return
	}
	h.hours = resizeRing(h.hours, days*24, h.lastHour)
	h.peaks = resizeRing(h.peaks, days, h.lastDay)
}

// resizeRing returns a ring of n slots, indexed by unix hour or day, that
// holds the newest slots of ring, whose newest is last.
func resizeRing[T any](ring []T, n int, last int64) []T {
	out := make([]T, n)
	for i := range min(len(ring), n) {
		x := last - int64(i)
		out[mod(x, n)] = ring[mod(x, len(ring))]
	}
	return out
}

func mod(x int64, n int) int {
	m := x % int64(n)
	if m < 0 {
		m += int64(n)
	}
	return int(m)
}

func unixHour(t time.Time) int64 { return floorDiv(t.Unix(), 3600) }
func unixDay(t time.Time) int64  { return floorDiv(t.Unix(), 86400) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// advanceRing moves a ring indexed by unix hour or day from *last to to,
// emptying the slots it passes over.
func advanceRing[T any](ring []T, last *int64, to int64) {
	if *last == 0 {
		*last = to
		return
	}
	if to <= *last {
		return
	}
	if to-*last >= int64(len(ring)) {
		clear(ring)
	} else {
		var zero T
		for x := *last + 1; x <= to; x++ {
			ring[mod(x, len(ring))] = zero
		}
	}
	*last = to
}

// Observe adds weight messages to the hour of t. An hour older than the
// retention is ignored.
func (h *History) Observe(t time.Time, weight float64) {
	hr := unixHour(t)
	advanceRing(h.hours, &h.lastHour, hr)
	if hr <= h.lastHour-int64(len(h.hours)) {
		return
	}
	if h.first == 0 || hr < h.first {
		h.first = hr
	}
	h.hours[mod(hr, len(h.hours))] += float32(weight)
}

// Current is the weighted count of t's hour so far.
func (h *History) Current(t time.Time) float64 {
	hr := unixHour(t)
	if h.lastHour == 0 || hr != h.lastHour {
		return 0
	}
	return float64(h.hours[mod(hr, len(h.hours))])
}

// AddPeaks records the peaks reached on t's day.
func (h *History) AddPeaks(t time.Time, p Peaks) {
	d := unixDay(t)
	advanceRing(h.peaks, &h.lastDay, d)
	if d <= h.lastDay-int64(len(h.peaks)) {
		return
	}
	i := mod(d, len(h.peaks))
	h.peaks[i] = h.peaks[i].max(p.narrow())
}

// Peak is the highest of each peak over the retained days up to t.
func (h *History) Peak(t time.Time) Peaks {
	var m Peaks32
	today := unixDay(t)
	for d := max(today-int64(len(h.peaks))+1, h.lastDay-int64(len(h.peaks))+1); d <= min(today, h.lastDay); d++ {
		m = m.max(h.peaks[mod(d, len(h.peaks))])
	}
	return m.wide()
}

// Expected is the count the history expects for t's hour: the mean plus
// sigmas standard deviations of the same hour of the week, and the hours
// either side of it, in each retained week before t. ok is false when no
// earlier week is retained (the caller then uses its floor).
func (h *History) Expected(t time.Time, sigmas float64) (expected float64, ok bool) {
	hr := unixHour(t)
	oldest := max(h.lastHour-int64(len(h.hours))+1, h.first)
	if h.first == 0 {
		return 0, false
	}
	var n, sum, sq float64
	for w := int64(1); ; w++ {
		c := hr - 168*w
		if c-1 < oldest {
			break
		}
		for _, x := range [3]int64{c - 1, c, c + 1} {
			if x > h.lastHour {
				continue
			}
			v := float64(h.hours[mod(x, len(h.hours))])
			n++
			sum += v
			sq += v * v
		}
	}
	if n == 0 {
		return 0, false
	}
	mean := sum / n
	variance := max(sq/n-mean*mean, 0)
	return mean + sigmas*math.Sqrt(variance), true
}

// LearnSource remembers that the credentials were used from network (see
// NetworkOf) with user agent ua at t.
func (h *History) LearnSource(network, ua string, t time.Time) {
	h.learnSource(hash32(network), hash32(ua), unixHour(t))
}

func (h *History) learnSource(n, a uint32, hr int64) {
	oldest := 0
	for i, s := range h.sources {
		if s.network == n && s.agent == a {
			h.sources[i].hour = max(s.hour, hr)
			return
		}
		if s.hour < h.sources[oldest].hour {
			oldest = i
		}
	}
	if len(h.sources) < MaxSources {
		h.sources = append(h.sources, source{n, a, hr})
		return
	}
	h.sources[oldest] = source{n, a, hr}
}

// knowsSource tells whether the network and the user agent have been seen
// (in any pair), and whether any source is known at all.
func (h *History) knowsSource(n, a uint32) (network, agent, any bool) {
	for _, s := range h.sources {
		network = network || s.network == n
		agent = agent || s.agent == a
	}
	return network, agent, len(h.sources) > 0
}

// KnownSources is how many sources the history remembers (0 for a device
// whose credentials have no history yet).
func (h *History) KnownSources() int { return len(h.sources) }

// KnowsSource tells whether the network and the user agent have each been
// seen in this history.
func (h *History) KnowsSource(network, ua string) (knownNetwork, knownAgent bool) {
	n, a, _ := h.knowsSource(hash32(network), hash32(ua))
	return n, a
}

// LearnDestination remembers that dest was written to at t.
func (h *History) LearnDestination(dest string, t time.Time) {
	h.learnDest(parseDest(dest).hash, unixDay(t))
}

func (h *History) learnDest(hash uint32, day int64) {
	h.rotate(day)
	for k := range bloomK {
		b := probe(hash, k)
		h.bloom[0][b/64] |= 1 << (b % 64)
	}
}

// rotate starts a new Bloom generation every half retention, so a
// destination is remembered for between half and all of the retention.
func (h *History) rotate(day int64) {
	half := int64(max(len(h.peaks)/2, 1))
	if h.bloomEpoch == 0 {
		h.bloomEpoch = day
		return
	}
	if day-h.bloomEpoch < half {
		return
	}
	if day-h.bloomEpoch >= 2*half {
		h.bloom[1] = [bloomWords]uint64{}
	} else {
		h.bloom[1] = h.bloom[0]
	}
	h.bloom[0] = [bloomWords]uint64{}
	h.bloomEpoch = day
}

func probe(hash uint32, k int) uint32 {
	// Kirsch-Mitzenmacher: g_k = h1 + k*h2.
	h1, h2 := hash&0xffff, (hash>>16)|1
	return (h1 + uint32(k)*h2) % (bloomWords * 64)
}

// KnowsDestination tells whether dest is (probably: a Bloom filter) in the
// history.
func (h *History) KnowsDestination(dest string) bool { return h.knowsDest(parseDest(dest).hash) }

func (h *History) knowsDest(hash uint32) bool {
generations:
	for g := range h.bloom {
		for k := range bloomK {
			if b := probe(hash, k); h.bloom[g][b/64]&(1<<(b%64)) == 0 {
				continue generations
			}
		}
		return true
	}
	return false
}
