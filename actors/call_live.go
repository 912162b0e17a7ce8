package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// Live calls: what the System keeps about the calls its activations carry,
// and the store's index of active calls by process, so that no call
// record stays active after its process is gone.
//
// calllive/<node id>/<call> = node name: one call that process carries.
// A call's entry is written before its active record and deleted after
// its ended record, so that every active record has an entry (an entry
// whose record is missing or ended is stale and is dropped by a sweep).
// The processes with calls are found by skipping from one process's
// entries to the next (CallProcesses): one scan per process, no list to
// keep.

const liveCallsPrefix = "calllive/"

func liveCallPrefix(nodeID string) string      { return liveCallsPrefix + nodeID + "/" }
func liveCallKey(nodeID, callID string) string { return liveCallPrefix(nodeID) + callID }

// pastLiveCalls sorts after every entry of process nodeID (call ids are
// ASCII; U+10FFFF is the highest code point, valid UTF-8 for any store).
func pastLiveCalls(nodeID string) string { return liveCallPrefix(nodeID) + "\U0010FFFF" }

// CallHangup ends the SIP side of calls that the system ended by itself:
// a session or maximum length that ran out (disposition expired) and the
// calls still up when the node shut down (interrupted). The node's SIP
// edge implements it by sending BYE to both legs.
type CallHangup interface {
	// HangUp is called once per such call, on the node that carried it,
	// after its record was written (rec is the ended record), from a
	// goroutine of its own; it should return by ctx's deadline.
	HangUp(ctx context.Context, rec *actorpb.CallRecord)
}

// hangupTimeout bounds one HangUp call.
const hangupTimeout = 10 * time.Second

// NodeID is this process's id (its actor system's; new per process), as
// call records name it in node_id and liveness records in their key.
func (s *System) NodeID() string { return s.as.ID }

// LiveCalls tells how many calls this node carries now (activations of
// kind call in state active that started here). Reads, late messages and
// ended calls do not count.
func (s *System) LiveCalls() int { return int(s.liveCalls.Load()) }

// setLiveCall marks act as carrying a live call or not, counting the
// change once.
func (s *System) setLiveCall(act *Activation, live bool) {
	if act.liveCall.Swap(live) != live {
		if live {
			s.liveCalls.Add(1)
		} else {
			s.liveCalls.Add(-1)
		}
	}
}

// indexLiveCall writes rec's entry in its process's index of active
// calls, through the committer: it is queued before the active record,
// so it is durable no later than the record.
func (s *System) indexLiveCall(ctx context.Context, rec *actorpb.CallRecord) error {
	_, err := s.commits.put(ctx, nil, persistence.Write{Key: liveCallKey(rec.NodeId, rec.Id), Value: []byte(s.cfg.Node), Expect: persistence.AnyVersion})
	return err
}

// unindexLiveCall drops rec's entry, queued after the ended record; a
// failure (when writing through) is logged: the entry is stale and a
// sweep drops it once the process is gone.
func (s *System) unindexLiveCall(ctx context.Context, rec *actorpb.CallRecord) {
	_, err := s.commits.put(ctx, nil, persistence.Write{Key: liveCallKey(rec.NodeId, rec.Id), Expect: persistence.AnyVersion, Delete: true})
	if err != nil {
		s.log.Warn("dropping an ended call from the active calls index failed", "call_id", rec.Id, "err", err)
	}
}

// pendingCall returns call id's record as last written on this node and
// not yet durable: pending false when there is none.
func (s *System) pendingCall(id string) (rec *actorpb.CallRecord, pending bool, err error) {
	wr, ok := s.commits.pending(callKey(id))
	if !ok || wr.Delete {
		return nil, ok, nil
	}
	rec = &actorpb.CallRecord{}
	if err := proto.Unmarshal(wr.Value, rec); err != nil {
		return nil, false, fmt.Errorf("actors: decoding pending call %s: %w", id, err)
	}
	return rec, true, nil
}

// hangUp hands an ended call to Config.Hangup off the call's turn.
func (s *System) hangUp(rec *actorpb.CallRecord) {
	h := s.cfg.Hangup
	if h == nil {
		return
	}
	s.hangups.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
		defer cancel()
		h.HangUp(ctx, rec)
	})
}

// ReadCall returns call id as it is now, and whether a live activation
// carries it: from its call actor when one is active (asked only if
// active), else from the writes pending on this node, else from the
// store. It never activates a call, so reading
// calls adds no call load. A missing call is (nil, false, nil).
func (s *System) ReadCall(ctx context.Context, id string) (*actorpb.CallRecord, bool, error) {
	rep, active, err := s.requestIfActive(ctx, KindCall, id, &actorpb.GetCall{})
	if err != nil {
		return nil, false, err
	}
	if cr, ok := rep.(*actorpb.CallReply); active && ok && cr.Error == nil && cr.Call != nil {
		return cr.Call, IsCallActive(cr.Call), nil
	}
	if rec, pending, err := s.pendingCall(id); err != nil || pending {
		return rec, false, err
	}
	cur, err := loadOne[*actorpb.CallRecord](ctx, s.cfg.Store, callKey(id))
	if err != nil || cur == nil {
		return nil, false, err
	}
	return cur.rec, false, nil // an active record whose actor is gone lost its process
}

// CallProcess is a process that started calls, as the store records it.
type CallProcess struct {
	ID, Name string
}

// CallProcesses lists the processes that have active calls in the store
// (this one included), with the node name each ran under: one scan per
// process.
func (s *System) CallProcesses(ctx context.Context) ([]CallProcess, error) {
	var out []CallProcess
	after := ""
	for {
		page, err := s.cfg.Store.Scan(ctx, liveCallsPrefix, after, 1)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(page[0].Key, liveCallsPrefix), "/")
		out = append(out, CallProcess{ID: id, Name: string(page[0].Value)})
		after = pastLiveCalls(id)
	}
}

// sweepPage is how many active calls of a gone process one scan reads.
const sweepPage = 100

// InterruptCalls ends every active call of process nodeID, which the
// caller found gone (its liveness record expired), with disposition
// interrupted and ended_by "node", through each call's actor (so that a
// BYE handled at the same moment and the sweep of another node are
// serialized with it: the first end wins, the others find it ended), and
// drops stale index entries. It returns how many calls it ended. Work is
// bounded by the process's calls.
func (s *System) InterruptCalls(ctx context.Context, nodeID string) (int, error) {
	if nodeID == s.NodeID() {
		return 0, fmt.Errorf("actors: process %s is this one; its calls are live", nodeID)
	}
	prefix, ended := liveCallPrefix(nodeID), 0
	for {
		// Ended or stale entries are deleted, so each page starts afresh.
		page, err := s.cfg.Store.Scan(ctx, prefix, "", sweepPage)
		if err != nil {
			return ended, err
		}
		if len(page) == 0 {
			break
		}
		for _, it := range page {
			n, err := s.interruptOne(ctx, nodeID, strings.TrimPrefix(it.Key, prefix))
			ended += n
			if err != nil {
				return ended, err
			}
		}
		// The calls' writes (their entries' deletes) go through the
		// committer: the next page is read once they are durable.
		if err := s.commits.sync(ctx); err != nil {
			return ended, err
		}
	}
	return ended, nil
}

// interruptOne ends one call of a gone process, or drops its entry when
// the call is missing or already ended.
func (s *System) interruptOne(ctx context.Context, nodeID, callID string) (int, error) {
	rep, err := s.Request(ctx, KindCall, callID, &actorpb.InterruptCall{NodeId: nodeID})
	if err != nil {
		return 0, fmt.Errorf("actors: interrupting call %s: %w", callID, err)
	}
	cr, ok := rep.(*actorpb.CallReply)
	switch {
	case !ok:
		return 0, fmt.Errorf("actors: call %s replied %T", callID, rep)
	case cr.Error == nil && IsCallActive(cr.Call):
		return 0, nil // adopted: its dialog goes on (call.adopt)
	case cr.Error == nil:
		s.log.Info("ended a call of a gone process", "call_id", callID, "process", nodeID, "disposition", DispositionInterrupted)
		return 1, nil // the actor dropped the entry
	case cr.Error.Code == actorpb.Code_CODE_NOT_FOUND,
		cr.Error.Code == actorpb.Code_CODE_CONFLICT && cr.Call.GetState() == string(CallEnded):
		err := s.cfg.Store.Delete(ctx, liveCallKey(nodeID, callID), persistence.AnyVersion)
		if err != nil && !errors.Is(err, persistence.ErrNotFound) {
			return 0, err
		}
		return 0, nil
	}
	return 0, fmt.Errorf("actors: interrupting call %s: %s", callID, cr.Error.Message)
}

// EndLiveCalls ends every call this node still carries, with disposition
// interrupted and ended_by "node", and hands each to Config.Hangup; from
// then on this node starts no call. A drain calls it once the calls had
// their time. It returns when they ended, their records are durable and
// their hang-ups returned, or when ctx ends.
func (s *System) EndLiveCalls(ctx context.Context) error {
	s.shuttingDown.Store(true)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	told := map[*Activation]bool{}
	for s.LiveCalls() > 0 {
		for _, act := range s.lookup.Activations(KindCall) {
			if act.LiveCall() && !told[act] {
				told[act] = true
				s.notify(KindCall, act.Identity, &actorpb.InterruptCall{NodeId: s.NodeID()})
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("actors: %d calls still live: %w", s.LiveCalls(), ctx.Err())
		case <-poll.C:
		}
	}
	if err := s.commits.sync(ctx); err != nil {
		return fmt.Errorf("actors: writing the ended calls' records: %w", err)
	}
	done := make(chan struct{})
	go func() { s.hangups.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("actors: hanging up the ended calls: %w", ctx.Err())
	}
	return nil
}

// fireDueCalls tells each live call whose deadline passed to check it.
func (s *System) fireDueCalls() {
	for _, id := range s.timers.due(s.cfg.Clock.Now()) {
		s.notify(KindCall, id, &actorpb.CallDeadline{})
	}
}
