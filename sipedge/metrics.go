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
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_requests_total", Help: "SIP requests received, by method.",
		}, []string{"method"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_responses_total", Help: "SIP final and provisional responses sent upstream, by request method and status code.",
		}, []string{"method", "code"}),
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
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_calls_total", Help: "Calls that ended here, by disposition (rate() of it is calls per second).",
		}, []string{"disposition"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_auth_failures_total", Help: "Digest authentication failures, by reason.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_dropped_total", Help: "Packets dropped before parsing, by reason (banned: a source over the flood limit; trusted_rate: declared trusted sources over their shared rate; unparsable, oversized) and connections cut.",
		}, []string{"reason"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_sip_failovers_total", Help: "Requests moved on to the next feature-server target after 503, 408 or silence.",
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_probes_total", Help: "OPTIONS health probes of feature-server targets, by result.",
		}, []string{"result"}),
		fraudChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_fraud_checks_total", Help: "Requests checked by their account's messaging supervisor, by kind (message, call) and verdict (deliver, throttle, refuse, unavailable).",
		}, []string{"kind", "verdict"}),
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_queued_messages_total", Help: "Stored MESSAGEs handed to devices that registered, by result (delivered, failed).",
		}, []string{"result"}),
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

// zeroSeries are label values each labelled series starts with at 0, so
// that /metrics lists them before the first request (a rate() or an alert
// on a series that does not exist yet sees nothing). Others appear when
// first counted.
var zeroSeries = struct {
	methods, codes, dispositions, authReasons, dropReasons, probeResults, fraudKinds, verdicts, queueResults []string
}{
	methods:      []string{"REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE"},
	codes:        []string{"200", "401", "403", "404", "407", "503"},
	dispositions: []string{"completed", "canceled", "busy", "no_answer", "failed", "expired", "interrupted"},
	authReasons: []string{"malformed", "stale", "replay", "realm", "unknown_user", "bad_response", "algorithm",
		"tenancy", "identity", "uri", "dialog", "hop", "other"},
	dropReasons:  []string{"banned", "trusted_rate", "oversized", "unparsable"},
	probeResults: []string{"ok", "failed"},
	fraudKinds:   []string{"message", "call"},
	verdicts:     []string{"deliver", "throttle", "refuse", "unavailable"},
	queueResults: []string{"delivered", "failed"},
}

// zero creates the series of zeroSeries at 0.
func (m *metrics) zero() {
	z := zeroSeries
	for _, method := range z.methods {
		m.requests.WithLabelValues(method)
		for _, code := range z.codes {
			m.responses.WithLabelValues(method, code)
		}
	}
	for _, vs := range []struct {
		vec    *prometheus.CounterVec
		values []string
	}{
		{m.calls, z.dispositions}, {m.authFailures, z.authReasons}, {m.dropped, z.dropReasons},
		{m.probes, z.probeResults}, {m.queued, z.queueResults},
	} {
		for _, v := range vs.values {
			vs.vec.WithLabelValues(v)
		}
	}
	for _, kind := range z.fraudKinds {
		for _, verdict := range z.verdicts {
			m.fraudChecks.WithLabelValues(kind, verdict)
		}
	}
}

func (m *metrics) response(method string, code int) {
	m.responses.WithLabelValues(method, strconv.Itoa(code)).Inc()
}
