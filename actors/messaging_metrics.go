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
		checks:    counterVec("switchboard_fraud_checks_total", "Fraud checks answered by the messaging supervisors, by request kind and verdict.", "kind", "verdict"),
		warnings:  counterVec("switchboard_fraud_warnings_total", "Requests at warning level, by indicator.", "indicator"),
		incidents: counterVec("switchboard_fraud_incidents_total", "Fraud incidents opened (critical level), by indicator.", "indicator"),
		actions:   counterVec("switchboard_fraud_actions_total", "Containment actions taken at critical, by action and result (ok, failed).", "action", "result"),
		queue:     counterVec("switchboard_messaging_queue_total", "Store-and-forward queue events: queued, delivered, failed, expired, terminated.", "event"),
	}
	return m, register(reg, m.checks, m.warnings, m.incidents, m.actions, m.queue)
}
