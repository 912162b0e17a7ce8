package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
)

// newViews makes the node's account snapshots (package accountview),
// loaded through the node's actor system, with their counts in metrics.
func (n *Node) newViews() (*accountview.Cache, error) {
	cfg := accountview.DefaultConfig()
	cfg.Actors = n.actors
	c, err := accountview.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, m := range []struct {
		name, help string
		read       func(accountview.Stats) uint64
	}{
		{"switchboard_account_view_hits_total", "Requests answered from the node's account snapshots.", func(s accountview.Stats) uint64 { return s.Hits }},
		{"switchboard_account_view_loads_total", "Account snapshots (account level or one device) loaded from the account actors.", func(s accountview.Stats) uint64 { return s.Loads }},
		{"switchboard_account_view_invalidations_total", "Notices that an account changed, from this node's account actors or other members'.", func(s accountview.Stats) uint64 { return s.Invalidations }},
	} {
		read := m.read
		n.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help},
			func() float64 { return float64(read(c.Stats())) }))
	}
	return c, nil
}

// edgeChanged passes an account actor's change to this node's snapshots
// and to every other member's.
func (n *Node) edgeChanged(ch actors.EdgeChange) {
	keys := viewKeys(ch)
	n.invalidateLocal(keys)
	n.membership.Lookup().InvalidateOthers(keys)
}

func (n *Node) invalidateLocal(keys []string) {
	if n.views != nil {
		n.views.Invalidate(keys...)
	}
}

// viewKeys names what ch changed in accountview's keys.
func viewKeys(ch actors.EdgeChange) []string {
	if ch.All {
		return []string{accountview.AllKey(ch.Account)}
	}
	var keys []string
	if ch.Level {
		keys = append(keys, accountview.AccountKey(ch.Account))
	}
	for _, d := range ch.Devices {
		keys = append(keys, accountview.DeviceKey(ch.Account, d))
	}
	return keys
}
