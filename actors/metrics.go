package actors

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	activations  *prometheus.CounterVec
	passivations *prometheus.CounterVec
	active       *prometheus.GaugeVec
	request      *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_actor_activations_total",
			Help: "Activations started, by actor kind.",
		}, []string{"kind"}),
		passivations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_actor_passivations_total",
			Help: "Activations stopped (idle passivation or shutdown), by actor kind.",
		}, []string{"kind"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_actor_active",
			Help: "Activations alive on this node, by actor kind.",
		}, []string{"kind"}),
		request: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_actor_request_seconds",
			Help:    "Request/reply latency to actors as seen by callers, by actor kind.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"kind"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.activations, m.passivations, m.active, m.request} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) activated(kind string) {
	m.activations.WithLabelValues(kind).Inc()
	m.active.WithLabelValues(kind).Inc()
}

func (m *metrics) passivated(kind string) {
	m.passivations.WithLabelValues(kind).Inc()
	m.active.WithLabelValues(kind).Dec()
}

func (m *metrics) observeRequest(kind string, d time.Duration) {
	m.request.WithLabelValues(kind).Observe(d.Seconds())
}
