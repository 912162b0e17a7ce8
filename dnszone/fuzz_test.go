package dnszone

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds decoded queries, as untrusted as they come off the
// wire, to the responder: whatever the query, the answer must pack, fit
// 512 bytes once cut as the Server cuts it, match the query's id, never
// offer recursion, and hold only records owned by the name asked. The
// committed corpus is in testdata/fuzz/FuzzAnswer.
func FuzzAnswer(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"acme." + testZone, dns.TypeA},
		{"_sip._udp.sales.acme." + testZone, dns.TypeSRV},
		{"_ip4-10-1-0-1.sales.acme." + testZone, dns.TypeA},
		{"_ip6-20010db8000000000000000000000001.acme." + testZone, dns.TypeAAAA},
		{testZone, dns.TypeSOA},
		{"nobody." + testZone, dns.TypeA},
		{"example.com", dns.TypeANY},
	} {
		m := new(dns.Msg).SetQuestion(dns.Fqdn(q.name), q.qtype)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	z := &responder{zone: testZone, src: MapTargets(testTargets()), ttl: 5, log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(b); err != nil {
			return // miekg/dns answers FORMERR or nothing; the handler never sees it
		}
		resp := z.answer(context.Background(), req)
		if resp.Id != req.Id || !resp.Response || resp.RecursionAvailable {
			t.Fatalf("answer header id=%d qr=%v ra=%v for query id %d", resp.Id, resp.Response, resp.RecursionAvailable, req.Id)
		}
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, resp)
		}
		if len(req.Question) > 0 {
			for _, rr := range resp.Answer {
				if !strings.EqualFold(rr.Header().Name, dns.Fqdn(req.Question[0].Name)) {
					t.Fatalf("answer record %v is not owned by the query name %q", rr, req.Question[0].Name)
				}
			}
		}
		resp.Truncate(dns.MinMsgSize)
		out, err := resp.Pack()
		if err != nil {
			t.Fatalf("cut answer does not pack: %v", err)
		}
		if len(out) > dns.MinMsgSize && len(resp.Answer)+len(resp.Ns)+len(resp.Extra) > 0 {
			t.Fatalf("cut answer is %d bytes", len(out))
		}
	})
}
