package dnszone

import (
	"cmp"
	"slices"

	"github.com/miekg/dns"
)

// orderSRV returns records in the order to try them (RFC 2782, "Usage
// rules"): by ascending priority, and within one priority by the weighted
// random selection the RFC gives. intN(n) returns a uniform random int in
// [0, n). records is not changed.
func orderSRV(records []*dns.SRV, intN func(n int) int) []*dns.SRV {
	sorted := slices.Clone(records)
	slices.SortStableFunc(sorted, func(a, b *dns.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	out := make([]*dns.SRV, 0, len(sorted))
	for len(sorted) > 0 {
		n := 1
		for n < len(sorted) && sorted[n].Priority == sorted[0].Priority {
			n++
		}
		out = appendWeighted(out, sorted[:n], intN)
		sorted = sorted[n:]
	}
	return out
}

// appendWeighted appends one priority's records to out in RFC 2782's
// order: "arrange all SRV RRs (that have not been ordered yet) in any
// order, except that all those with weight 0 are placed at the beginning
// of the list. Compute the sum of the weights of those RRs, and with each
// RR associate the running sum in the selected order. Then choose a
// uniform random number between 0 and the sum computed (inclusive), and
// select the RR whose running sum value is the first in the selected order
// which is greater than or equal to the random number selected." Repeat
// with the rest.
func appendWeighted(out, group []*dns.SRV, intN func(n int) int) []*dns.SRV {
	rest := slices.Clone(group)
	slices.SortStableFunc(rest, func(a, b *dns.SRV) int { return cmp.Compare(min(a.Weight, 1), min(b.Weight, 1)) })
	for len(rest) > 1 {
		sum := 0
		for _, r := range rest {
			sum += int(r.Weight)
		}
		pick := intN(sum + 1) // uniform in [0, sum]
		i, running := 0, int(rest[0].Weight)
		for running < pick {
			i++
			running += int(rest[i].Weight)
		}
		out = append(out, rest[i])
		rest = slices.Delete(rest, i, i+1)
	}
	return append(out, rest...)
}
