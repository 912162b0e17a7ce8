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

// fraudMetrics are the messaging supervisor's metrics (listed in doc.go).
type fraudMetrics struct {
	checks    *prometheus.CounterVec
	warnings  *prometheus.CounterVec
	incidents *prometheus.CounterVec
	actions   *prometheus.CounterVec
	queue     *prometheus.CounterVec
}

// newMetrics makes the package's metrics (listed in doc.go): the actors'
// and the messaging supervisors'.
func newMetrics(reg prometheus.Registerer) (*metrics, *fraudMetrics, error) {
	m := &metrics{
		activations:  counterVec("switchboard_actor_activations_total", "Activations started, by actor kind.", "kind"),
		passivations: counterVec("switchboard_actor_passivations_total", "Activations stopped (idle passivation or shutdown), by actor kind.", "kind"),
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
	f := &fraudMetrics{
		checks:    counterVec("switchboard_fraud_checks_total", "Fraud checks answered by the messaging supervisors, by request kind and verdict.", "kind", "verdict"),
		warnings:  counterVec("switchboard_fraud_warnings_total", "Requests at warning level, by indicator.", "indicator"),
		incidents: counterVec("switchboard_fraud_incidents_total", "Fraud incidents opened (critical level), by indicator.", "indicator"),
		actions:   counterVec("switchboard_fraud_actions_total", "Containment actions taken at critical, by action and result (ok, failed).", "action", "result"),
		queue:     counterVec("switchboard_messaging_queue_total", "Store-and-forward queue events: queued, delivered, failed, expired, terminated.", "event"),
	}
	return m, f, register(reg, m.activations, m.passivations, m.active, m.request,
		f.checks, f.warnings, f.incidents, f.actions, f.queue)
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// register registers cs with reg, when there is one.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
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
