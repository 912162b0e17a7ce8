package simulations

// MinSampleUtilization is the mean utilization (active calls over call
// capacity per node) below which a pool's sample of max/mean active calls
// does not count: near an empty pool one call more or less swings the
// ratio, and balance is not what is at stake there.
const MinSampleUtilization = 0.10

// MaxMeanCalls is the measure "max/mean active calls in a pool" of one
// sample, as `switchboard sim` and `switchboard sim --live` both report
// it: the most active calls on a node of the pool over the mean per node,
// given each node's active calls (alive, not draining nodes) and the
// pool's call capacity per node. ok is false, and the sample does not
// count, when the pool has no node or its mean is below one call or below
// MinSampleUtilization of capacityPerNode.
func MaxMeanCalls(calls []int, capacityPerNode int) (ratio float64, ok bool) {
	if len(calls) == 0 {
		return 0, false
	}
	sum, most := 0, 0
	for _, c := range calls {
		sum += c
		most = max(most, c)
	}
	mean := float64(sum) / float64(len(calls))
	if mean < 1 || mean < MinSampleUtilization*float64(capacityPerNode) {
		return 0, false
	}
	return float64(most) / mean, true
}
