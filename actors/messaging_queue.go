package actors

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// The store-and-forward queue (RFC 3428 MESSAGE for a device with no
// registered contact): one key per message, under its destination
// device, ordered by the time it was queued. The body lives only there.

// Paging bounds for TakeQueued.
const (
	defaultTakeQueued = 100
	maxTakeQueued     = 1000
)

func (m *messaging) enqueue(t *turn, q *actorpb.QueueMessage, now time.Time) proto.Message {
	switch {
	case q.MessageId == "":
		return &actorpb.QueueReply{Error: invalid("message_id", "message_id is required")}
	case !ValidID(q.Destination):
		return &actorpb.QueueReply{Error: invalid("destination", "destination must be a device id, not %q", q.Destination)}
	case q.ExpiresAt != nil && !now.Before(q.ExpiresAt.AsTime()):
		return &actorpb.QueueReply{Error: invalid("expires_at", "expires_at %s is not in the future", q.ExpiresAt.AsTime().Format(time.RFC3339))}
	}
	if _, ok := m.queued[q.MessageId]; ok {
		return &actorpb.QueueReply{} // a retransmission: queued once
	}
	if _, ok := m.killed[q.MessageId]; ok {
		return &actorpb.QueueReply{Error: conflict("message_id", "message %s was terminated by a fraud incident", q.MessageId)}
	}
	rec := proto.Clone(q).(*actorpb.QueueMessage)
	rec.QueuedAt = timestamppb.New(now)
	if rec.ExpiresAt == nil {
		rec.ExpiresAt = timestamppb.New(now.Add(defaultQueueTTL))
	}
	key := messageQueueKey(m.id, rec.Destination, now, rec.MessageId)
	if _, err := putRecord(t.ctx, m.store(), key, rec, persistence.AnyVersion); err != nil {
		return &actorpb.QueueReply{Error: storeFailed(t, err, "queued message "+rec.MessageId)}
	}
	m.queued[rec.MessageId] = &queuedMeta{key: key, id: rec.MessageId, sender: rec.Sender, destination: rec.Destination, expires: rec.ExpiresAt.AsTime()}
	m.sys.fraud.queue.WithLabelValues("queued").Inc()
	return &actorpb.QueueReply{}
}

// take returns a device's queued messages, oldest first, without removing
// them; expired ones met on the way are dropped.
func (m *messaging) take(t *turn, r *actorpb.TakeQueued, now time.Time) proto.Message {
	if !ValidID(r.Device) {
		return &actorpb.QueuedMessages{Error: invalid("device", "device must be a device id, not %q", r.Device)}
	}
	limit := pageSize(r.Limit, defaultTakeQueued, maxTakeQueued)
	out := &actorpb.QueuedMessages{}
	prefix, after := messageQueuePrefix(m.id)+r.Device+"/", ""
	for len(out.Messages) < limit {
		page, err := m.store().Scan(t.ctx, prefix, after, limit)
		if err != nil {
			return &actorpb.QueuedMessages{Error: unavailable("reading the queue of %s: %v", r.Device, err)}
		}
		if len(page) == 0 {
			break
		}
		for _, it := range page {
			after = it.Key
			q := &actorpb.QueueMessage{}
			if err := proto.Unmarshal(it.Value, q); err != nil {
				return &actorpb.QueuedMessages{Error: unavailable("decoding %s: %v", it.Key, err)}
			}
			if !now.Before(q.ExpiresAt.AsTime()) {
				if meta, ok := m.queued[q.MessageId]; ok {
					if err := m.dropQueued(t.ctx, meta, 408, "expired", now); err != nil {
						m.sys.log.Warn("dropping an expired queued message failed", "account", m.id, "message", q.MessageId, "err", err)
					}
				}
				continue
			}
			if len(out.Messages) < limit {
				out.Messages = append(out.Messages, q)
			}
		}
	}
	return out
}

// delivered removes queued messages that were delivered or failed for good.
func (m *messaging) delivered(t *turn, r *actorpb.DeliveredQueued, now time.Time) proto.Message {
	disp := "failed"
	if r.Status >= 200 && r.Status < 300 {
		disp = "delivered"
	}
	for _, id := range r.MessageIds {
		q, ok := m.queued[id]
		if !ok {
			continue // already removed
		}
		if err := m.dropQueued(t.ctx, q, r.Status, disp, now); err != nil {
			return &actorpb.QueueReply{Error: storeFailed(t, err, "queued message "+id)}
		}
	}
	return &actorpb.QueueReply{}
}

// dropQueued deletes a queued message and writes its record.
func (m *messaging) dropQueued(ctx context.Context, q *queuedMeta, status uint32, disposition string, now time.Time) error {
	if err := m.store().Delete(ctx, q.key, persistence.AnyVersion); err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return err
	}
	delete(m.queued, q.id)
	m.sys.fraud.queue.WithLabelValues(disposition).Inc()
	rec := &actorpb.MessageRecord{
		Id: q.id, Account: m.id, Sender: q.sender, Destination: q.destination, Status: status,
		Disposition: disposition, Node: m.sys.cfg.Node, EndedAt: timestamppb.New(now),
	}
	if _, err := putRecord(ctx, m.store(), messageRecordKey(m.id, q.id), rec, persistence.AnyVersion); err != nil {
		m.sys.log.Warn("writing a queued message's record failed", "account", m.id, "message", q.id, "err", err)
	}
	return nil
}
