package cluster

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	placements      *prometheus.CounterVec
	handovers       prometheus.Counter
	evictions       prometheus.Counter
	dropped         prometheus.Counter
	topologyChanges prometheus.Counter
	refusedFull     prometheus.Counter
	members         *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_cluster_placement_decisions_total",
			Help: "Placement decisions made by this member's directory, by actor kind and strategy.",
		}, []string{"kind", "strategy"}),
		handovers: counter("switchboard_cluster_directory_handovers_total",
			"Directory entries this member adopted from claims after a topology change."),
		evictions: counter("switchboard_cluster_duplicate_evictions_total",
			"Duplicate activations found in claims and evicted."),
		dropped: counter("switchboard_cluster_directory_dropped_total",
			"Directory entries dropped because their host left the topology."),
		topologyChanges: counter("switchboard_cluster_topology_changes_total",
			"Topology views this member has seen."),
		refusedFull: counter("switchboard_cluster_calls_refused_full_total",
			"Call placements a node refused because it was at capacity (the placing directory's figures were stale)."),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_cluster_members",
			Help: "Members this node knows of, by status (alive, suspect, dead, left, draining).",
		}, []string{"status"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.placements, m.handovers, m.evictions, m.dropped, m.topologyChanges, m.refusedFull, m.members} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
