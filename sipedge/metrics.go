package sipedge

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests     *prometheus.CounterVec
	responses    *prometheus.CounterVec
	transactions prometheus.Gauge
	activeCalls  prometheus.GaugeFunc
	calls        *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	failovers    prometheus.Counter
	probes       *prometheus.CounterVec
	fraudChecks  *prometheus.CounterVec
	queued       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, liveCalls func() int) (*metrics, error) {
	m := &metrics{
		requests: counterVec("switchboard_sip_requests_total", "SIP requests received, by method.", "method"),
		responses: counterVec("switchboard_sip_responses_total",
			"SIP final and provisional responses sent upstream, by request method and status code.",
			"method", "code"),
		transactions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_sip_transactions", Help: "Proxied SIP transactions in progress.",
		}),
		activeCalls: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_sip_active_calls", Help: "Calls in progress that this node carries (placed here by tier 2, not yet ended).",
		}, func() float64 {
			if liveCalls == nil {
				return 0
			}
			return float64(liveCalls())
		}),
		calls:        counterVec("switchboard_sip_calls_total", "Calls that ended here, by disposition (rate() of it is calls per second).", "disposition"),
		authFailures: counterVec("switchboard_sip_auth_failures_total", "Digest authentication failures, by reason.", "reason"),
		dropped: counterVec("switchboard_sip_dropped_total",
			"Packets dropped before parsing, by reason (banned: a source over the flood limit; trusted_rate: declared trusted sources over their shared rate; unparsable, oversized) and connections cut.",
			"reason"),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_sip_failovers_total", Help: "Requests moved on to the next feature-server target after 503, 408 or silence.",
		}),
		probes: counterVec("switchboard_sip_probes_total", "OPTIONS health probes of feature-server targets, by result.", "result"),
		fraudChecks: counterVec("switchboard_sip_fraud_checks_total",
			"Requests checked by their account's messaging supervisor, by kind (message, call) and verdict (deliver, throttle, refuse, unavailable).",
			"kind", "verdict"),
		queued: counterVec("switchboard_sip_queued_messages_total",
			"Stored MESSAGEs handed to devices that registered, by result (delivered, failed).",
			"result"),
	}
	m.zero()
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.responses, m.transactions, m.activeCalls, m.calls, m.authFailures, m.dropped, m.failovers, m.probes, m.fraudChecks, m.queued} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// zero creates at 0 the series each labelled metric starts with, so that
// /metrics lists them before the first request (a rate() or an alert on a
// series that does not exist yet sees nothing). Others appear when first
// counted.
func (m *metrics) zero() {
	for _, method := range []string{"REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE"} {
		m.requests.WithLabelValues(method)
		for _, code := range []string{"200", "401", "403", "404", "407", "503"} {
			m.responses.WithLabelValues(method, code)
		}
	}
	for vec, values := range map[*prometheus.CounterVec][]string{
		m.calls: {"completed", "canceled", "busy", "no_answer", "failed", "expired", "interrupted"},
		m.authFailures: {"malformed", "stale", "replay", "realm", "unknown_user", "bad_response", "algorithm",
			"tenancy", "identity", "uri", "dialog", "hop", "other"},
		m.dropped: {"banned", "trusted_rate", "oversized", "unparsable"},
		m.probes:  {"ok", "failed"},
		m.queued:  {"delivered", "failed"},
	} {
		for _, v := range values {
			vec.WithLabelValues(v)
		}
	}
	for _, kind := range []string{"message", "call"} {
		for _, verdict := range []string{"deliver", "throttle", "refuse", "unavailable"} {
			m.fraudChecks.WithLabelValues(kind, verdict)
		}
	}
}

// counterVec is a counter with labels, by name and help text.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func (m *metrics) response(method string, code int) {
	m.responses.WithLabelValues(method, strconv.Itoa(code)).Inc()
}
