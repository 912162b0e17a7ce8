package gossip

import (
	"bytes"
	"net"
	"strconv"
	"sync"

	"github.com/hashicorp/memberlist"
)

// delegate is memberlist's Delegate and EventDelegate for one Gossip.
// Threading, as memberlist v0.7.0 calls it:
//   - NodeMeta: from Create and UpdateNode, no memberlist lock held.
//   - NotifyMsg: from memberlist's packet handler goroutine; must not block.
//   - GetBroadcasts: from its gossip goroutine and whenever it sends a
//     packet (broadcasts ride along); must not block or call memberlist.
//   - LocalState, MergeRemoteState: from push-pull (its stream goroutines
//     and Join), no memberlist lock held.
//   - NotifyJoin, NotifyLeave, NotifyUpdate: with memberlist's node lock
//     held; the *Node is copied here and never kept, and memberlist is never
//     called back.
type delegate struct{ g *Gossip }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
)

func (d delegate) NodeMeta(limit int) []byte {
	d.g.mu.Lock()
	b := d.g.metaBytes
	d.g.mu.Unlock()
	if len(b) > limit { // cannot happen: Meta.Encode enforces MaxMetaSize
		return nil
	}
	return b
}

func (d delegate) NotifyMsg(b []byte) { d.g.receive(b, true) }

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.g.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(join bool) []byte {
	d.g.mu.Lock()
	rs := d.g.tbl.reports()
	d.g.mu.Unlock()
	return encodeLoadTable(rs)
}

func (d delegate) MergeRemoteState(b []byte, join bool) { d.g.receive(b, false) }

func (d delegate) NotifyJoin(n *memberlist.Node)   { d.g.observe(copyNode(n, StatusAlive)) }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.g.observe(copyNode(n, StatusAlive)) }

// NotifyLeave reports a node that failed or left: memberlist v0.7.0 does
// not say which (its nodeState shadows Node.State, which stays StateAlive
// in every callback), so the table tells them apart by the leaving flag of
// the node's last load report.
func (d delegate) NotifyLeave(n *memberlist.Node) { d.g.observe(copyNode(n, StatusDead)) }

// copyNode takes what the table needs from n. Call it only inside an event
// callback (see nodeEvent).
func copyNode(n *memberlist.Node, s Status) nodeEvent {
	return nodeEvent{
		ID:    n.Name,
		Addr:  net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		Meta:  bytes.Clone(n.Meta),
		State: s,
	}
}

// loadBroadcast is one sender's latest load report in the transmit queue.
// Queueing a newer report of the same sender replaces the older one.
type loadBroadcast struct {
	id     string // sender
	msg    []byte
	notify chan struct{} // closed when memberlist is done with it; may be nil
	once   sync.Once
}

var _ memberlist.NamedBroadcast = (*loadBroadcast)(nil)

func (b *loadBroadcast) Name() string    { return "load/" + b.id }
func (b *loadBroadcast) Message() []byte { return b.msg }

// Finished is called once the message was sent its retransmit limit or was
// replaced by a newer one.
func (b *loadBroadcast) Finished() {
	if b.notify != nil {
		b.once.Do(func() { close(b.notify) })
	}
}

func (b *loadBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*loadBroadcast)
	return ok && ob.id == b.id
}
