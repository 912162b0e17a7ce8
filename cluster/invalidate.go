package cluster

import (
	"time"

	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
)

// invalidateAgainAfter is when InvalidateOthers says it again: protoactor
// can lose a first message to a member it has not dialled yet, and a
// repeated invalidation costs a cache one more load at most.
const invalidateAgainAfter = 250 * time.Millisecond

// InvalidateOthers tells every other member of the current topology that
// what it caches under keys changed (their LookupConfig.OnInvalidate gets
// the keys). It does not wait: the message is sent now and once more
// after invalidateAgainAfter, to the members of the topology then.
func (l *Lookup) InvalidateOthers(keys []string) {
	send := func() {
		l.mu.Lock()
		topo, closed := l.topo, l.closed
		l.mu.Unlock()
		if closed {
			return
		}
		msg := &clusterpb.Invalidate{Keys: keys}
		for _, id := range topo.ids {
			if id != l.selfID {
				l.as.Root.Send(topo.activator(id), msg)
			}
		}
	}
	send()
	l.clk.AfterFunc(invalidateAgainAfter, send)
}
