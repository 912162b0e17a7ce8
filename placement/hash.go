package placement

import (
	"cmp"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Key is the rendezvous key of an actor: kind + "/" + identity. Keying by
// kind as well as identity spreads each kind over the members independently.
func Key(kind, identity string) string { return kind + "/" + identity }

// Hash is the well-mixed 64-bit rendezvous weight of (key, memberID): the
// two strings are hashed apart with xxHash64 (seed 0) and the pair is mixed
// with CityHash's Hash128to64. Hashing them apart lets a lookup over n
// members hash the key once (as github.com/dgryski/go-rendezvous does); the
// mix, unlike a plain XOR, is not symmetric and spreads every input bit.
//
// It is 64 bits and well mixed on purpose: a 32-bit FNV-1a weight over
// key+member (what protoactor-go's disthash uses) leaves one node 8-21%
// above the mean. Every node must compute the same weights, so changing
// Hash is a breaking change for a running cluster.
func Hash(key, memberID string) uint64 {
	return weight(xxhash.Sum64String(key), memberID)
}

// weight is Hash(key, memberID) given hk = xxHash64(key).
func weight(hk uint64, memberID string) uint64 {
	return hash128to64(hk, xxhash.Sum64String(memberID))
}

// hash128to64 is CityHash's Hash128to64 (Pike and Alakuijala, 2011), a
// Murmur-inspired mix of two 64-bit values into one.
func hash128to64(lo, hi uint64) uint64 {
	const kMul = 0x9ddfea08eb382d69
	a := (lo ^ hi) * kMul
	a ^= a >> 47
	b := (hi ^ a) * kMul
	b ^= b >> 47
	return b * kMul
}

// byRank orders (wa, a) before (wb, b) by rendezvous rank: the higher
// weight first and, on the (astronomically rare) equal weight, the smaller
// id, so the order is total and does not depend on input order.
func byRank(wa uint64, a string, wb uint64, b string) int {
	return cmp.Or(cmp.Compare(wb, wa), cmp.Compare(a, b))
}

// Owner returns the rendezvous (highest random weight) owner of key among
// memberIDs, or "" if there are none. An identity's directory entry lives
// on Owner(Key(kind, identity), ids). When a member joins, only the keys it
// now owns change owner (about 1/(n+1) of them); when one leaves, only its
// own keys move.
func Owner(key string, memberIDs []string) string {
	if len(memberIDs) == 0 {
		return ""
	}
	hk := xxhash.Sum64String(key)
	best, bestW := memberIDs[0], weight(hk, memberIDs[0])
	for _, id := range memberIDs[1:] {
		if w := weight(hk, id); byRank(w, id, bestW, best) < 0 {
			best, bestW = id, w
		}
	}
	return best
}

// Rank returns memberIDs ordered by rendezvous weight for key, highest
// first, in a new slice; Rank(key, ids)[0] == Owner(key, ids). Removing a
// member leaves the relative order of the others unchanged. IDs should be
// unique; duplicates are kept side by side.
func Rank(key string, memberIDs []string) []string {
	hk := xxhash.Sum64String(key)
	return slices.SortedFunc(slices.Values(memberIDs), func(a, b string) int {
		return byRank(weight(hk, a), a, weight(hk, b), b)
	})
}
