package lease

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	renewals     *prometheus.CounterVec
	valid        prometheus.Gauge
	acquisitions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_lease_renewals_total", Help: "Liveness lease renewals, by result (ok, error).",
		}, []string{"result"}),
		valid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_lease_valid", Help: "1 while this node's liveness lease is valid.",
		}),
		acquisitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_lease_acquisitions_total", Help: "Ownership attempts by activations, by result (taken, refused, error).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.renewals, m.valid, m.acquisitions} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
