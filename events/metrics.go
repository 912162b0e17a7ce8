package events

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	appended      prometheus.Counter
	conflicts     prometheus.Counter
	appendSeconds prometheus.Histogram
	subscribers   prometheus.Gauge
	read          prometheus.Counter
	polls         prometheus.Counter
	resets        prometheus.Counter
	pruned        prometheus.Counter
	deliveries    *prometheus.CounterVec
	deliverySecs  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	}
	m := &metrics{
		appended: counter("switchboard_events_appended_total",
			"Events appended to account streams by this node."),
		conflicts: counter("switchboard_events_append_conflicts_total",
			"Appends retried because another node appended to the same account first."),
		appendSeconds: histogram("switchboard_events_append_seconds",
			"Latency of Append, store writes included.", prometheus.ExponentialBuckets(0.0001, 4, 10)),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_events_subscribers",
			Help: "Open subscriptions (SSE streams) on this node.",
		}),
		read: counter("switchboard_events_read_total",
			"Events read by subscriptions, before filtering."),
		polls: counter("switchboard_events_head_polls_total",
			"Reads of an account's head by waiting subscribers (to see other nodes' appends)."),
		resets: counter("switchboard_events_resets_total",
			"Subscriptions told that their resume point is past the retention window or the stream's end."),
		pruned: counter("switchboard_events_pruned_total",
			"Events deleted for being older than the retention window."),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_events_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: ok, retry (will be tried again), refused (a 4xx: skipped), expired (pruned before delivery: skipped).",
		}, []string{"result"}),
		deliverySecs: histogram("switchboard_events_webhook_seconds",
			"Latency of webhook delivery attempts.", prometheus.ExponentialBuckets(0.001, 4, 9)),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.appended, m.conflicts, m.appendSeconds, m.subscribers, m.read, m.polls, m.resets, m.pruned, m.deliveries, m.deliverySecs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
