package actors

import "github.com/prometheus/client_golang/prometheus"

// fraudMetrics are the messaging supervisor's metrics (listed in doc.go).
type fraudMetrics struct {
	checks    *prometheus.CounterVec
	warnings  *prometheus.CounterVec
	incidents *prometheus.CounterVec
	actions   *prometheus.CounterVec
	queue     *prometheus.CounterVec
}

func newFraudMetrics(reg prometheus.Registerer) (*fraudMetrics, error) {
	m := &fraudMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_fraud_checks_total",
			Help: "Fraud checks answered by the messaging supervisors, by request kind and verdict.",
		}, []string{"kind", "verdict"}),
		warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_fraud_warnings_total",
			Help: "Requests at warning level, by indicator.",
		}, []string{"indicator"}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_fraud_incidents_total",
			Help: "Fraud incidents opened (critical level), by indicator.",
		}, []string{"indicator"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_fraud_actions_total",
			Help: "Containment actions taken at critical, by action and result (ok, failed).",
		}, []string{"action", "result"}),
		queue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_messaging_queue_total",
			Help: "Store-and-forward queue events: queued, delivered, failed, expired, terminated.",
		}, []string{"event"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.checks, m.warnings, m.incidents, m.actions, m.queue} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
