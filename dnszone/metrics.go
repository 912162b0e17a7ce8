package dnszone

import (
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Server's instruments (listed in doc.go).
type metrics struct {
	queries *prometheus.CounterVec // switchboard_dns_queries_total{qtype,rcode}
	latency prometheus.Histogram   // switchboard_dns_query_seconds
}

// newMetrics makes the instruments and registers them on reg (nil: not
// registered). A second Server on the same registry shares them.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_dns_queries_total",
		Help: "DNS queries answered by the zone's server, by query type and response code.",
	}, []string{"qtype", "rcode"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "switchboard_dns_query_seconds",
		Help: "Time from receiving a DNS query to writing its answer, TargetSource lookup included.",
		// 50µs (a table read) to the 1s default QueryTimeout and beyond.
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	q, err := register(reg, queries)
	if err != nil {
		return nil, err
	}
	l, err := register(reg, latency)
	if err != nil {
		return nil, err
	}
	// The series a dashboard watches exist at 0 from the start: answers
	// and names not found, for the types the zone serves.
	for _, qtype := range []uint16{dns.TypeA, dns.TypeSRV} {
		for _, rcode := range []int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeServerFailure} {
			q.WithLabelValues(qtypeLabel(qtype), rcodeLabel(rcode))
		}
	}
	return &metrics{queries: q, latency: l}, nil
}

// register registers c on reg, or returns the collector of the same
// description already there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("dnszone: register metrics: %w", err)
}

// observe counts one answered query.
func (m *metrics) observe(qtype uint16, rcode int, took time.Duration) {
	m.queries.WithLabelValues(qtypeLabel(qtype), rcodeLabel(rcode)).Inc()
	m.latency.Observe(took.Seconds())
}

// qtypeLabel bounds the qtype label to the types the zone answers and
// "other", so that a scan of all 65536 types cannot blow up the series.
func qtypeLabel(qtype uint16) string {
	switch qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeSOA, dns.TypeNS, dns.TypeANY:
		return dns.TypeToString[qtype]
	}
	return "other"
}

// rcodeLabel is the response code's mnemonic (NOERROR, NXDOMAIN, ...).
func rcodeLabel(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "other"
}
