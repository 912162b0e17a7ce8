package placement

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// testIDs returns n member IDs shaped like protoactor-go actor system ids
// (22 characters of shortuuid's base57 alphabet), drawn from seed.
func testIDs(seed uint64, n int) []string {
	const alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	ids := make([]string, n)
	for i := range ids {
		b := make([]byte, 22)
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		ids[i] = string(b)
	}
	return ids
}

// testMembers returns n empty members named node-1..node-n.
func testMembers(seed uint64, n int) []Member {
	ms := make([]Member, n)
	for i, id := range testIDs(seed, n) {
		ms[i] = Member{ID: id, Name: "node-" + strconv.Itoa(i+1), Load: Load{Activations: map[string]int{}}}
	}
	return ms
}

// testKey is the i-th test key of kind, shaped like a device group identity.
func testKey(kind string, i int) string {
	return Key(kind, identity(i))
}

func identity(i int) string { return "acct-" + strconv.Itoa(i/16) + "/grp-" + strconv.Itoa(i%16) }

// maxOverMean is the largest count over the mean count of n bins holding
// total items (bins missing from counts hold 0).
func maxOverMean(counts map[string]int, n, total int) float64 {
	most := 0
	for _, c := range counts {
		most = max(most, c)
	}
	return float64(most) / (float64(total) / float64(n))
}

// chiSquare is Pearson's statistic of counts against a uniform spread of
// total items over n bins.
func chiSquare(counts map[string]int, n, total int) float64 {
	mean := float64(total) / float64(n)
	x := float64(n-len(counts)) * mean // empty bins
	for _, c := range counts {
		x += (float64(c) - mean) * (float64(c) - mean) / mean
	}
	return x
}

// chiSquareCritical approximates the chi-square quantile with df degrees of
// freedom at standard-normal quantile z (Wilson and Hilferty, 1931); z = 3.719
// is the 1e-4 upper tail.
func chiSquareCritical(df int, z float64) float64 {
	k := float64(df)
	return k * math.Pow(1-2/(9*k)+z*math.Sqrt(2/(9*k)), 3)
}

// apply records d as a new activation of kind on its member, as the
// directory owner's optimistic increment would.
func apply(ms []Member, kind string, d Decision) {
	for i := range ms {
		if ms[i].ID == d.Member {
			ms[i].Load.Activations[kind]++
			return
		}
	}
	panic("decision for unknown member " + d.Member)
}

// activations returns each member's activations of kind, by ID.
func activations(ms []Member, kind string) map[string]int {
	out := make(map[string]int, len(ms))
	for _, m := range ms {
		out[m.ID] = m.Load.Activations[kind]
	}
	return out
}

func ids(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}
