package dnszone

import (
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func srvRR(target string, prio, weight uint16) *dns.SRV {
	return &dns.SRV{Hdr: dns.RR_Header{Name: "_sip._udp.x.", Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Priority: prio, Weight: weight, Port: 5060, Target: target}
}

// scripted returns an intN that hands out picks in turn and records the n
// it was asked for.
func scripted(t *testing.T, picks ...int) (intN func(int) int, asked *[]int) {
	asked = new([]int)
	return func(n int) int {
		*asked = append(*asked, n)
		if len(picks) == 0 {
			t.Fatalf("intN(%d) called more often than scripted", n)
		}
		p := picks[0]
		picks = picks[1:]
		if p < 0 || p >= n {
			t.Fatalf("scripted pick %d outside [0, %d)", p, n)
		}
		return p
	}, asked
}

func targetsOf(rrs []*dns.SRV) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.Target
	}
	return out
}

// RFC 2782, "Usage rules": lowest priority first; within a priority, zero
// weights placed first, a uniform number in [0, sum] picks the first RR
// whose running sum reaches it, and the rest are ordered the same way.
func TestOrderSRV_RFC2782_UsageRules(t *testing.T) {
	records := []*dns.SRV{
		srvRR("b.", 1, 10),
		srvRR("c.", 1, 30),
		srvRR("a.", 1, 0),
		srvRR("d.", 0, 5),
		srvRR("e.", 2, 7),
	}
	for _, tc := range []struct {
		desc  string
		picks []int
		want  []string
		asked []int
	}{
		// Priority 1, in the order [a(0) b(10) c(30)], running sums 0 10 40.
		{"15 picks c, then 0 picks a", []int{15, 0}, []string{"d.", "c.", "a.", "b.", "e."}, []int{41, 11}},
		{"0 picks a (running sum 0 >= 0), then 11 picks c", []int{0, 11}, []string{"d.", "a.", "c.", "b.", "e."}, []int{41, 41}},
		{"10 picks b, then 30 picks c", []int{10, 30}, []string{"d.", "b.", "c.", "a.", "e."}, []int{41, 31}},
		{"40 picks c, then 1 picks b", []int{40, 1}, []string{"d.", "c.", "b.", "a.", "e."}, []int{41, 11}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			intN, asked := scripted(t, tc.picks...)
			got := orderSRV(records, intN)
			if !slices.Equal(targetsOf(got), tc.want) {
				t.Errorf("order = %v, want %v", targetsOf(got), tc.want)
			}
			if !slices.Equal(*asked, tc.asked) {
				t.Errorf("intN asked for %v, want %v (sum of the weights left, plus one)", *asked, tc.asked)
			}
		})
	}
	if targetsOf(records)[0] != "b." {
		t.Error("orderSRV reordered its input")
	}
}
