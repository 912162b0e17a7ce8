package actors

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// featureServer is the behavior of the featureserver kind: one feature
// (voicemail, conference, IVR, SMS gateway) and the SIP servers that give
// it, which the accounts' routes name.
type featureServer struct {
	sys *System
	id  string
	cur *versioned[*actorpb.FeatureServer] // nil: not provisioned
}

func (f *featureServer) load(ctx context.Context) error {
	var err error
	f.cur, err = loadOne[*actorpb.FeatureServer](ctx, f.sys.cfg.Store, featureKey(f.id))
	return err
}

func (f *featureServer) receive(t *turn, msg proto.Message) proto.Message {
	if m, ok := msg.(*actorpb.PutFeatureServer); ok {
		return f.put(t, m)
	}
	if f.cur == nil {
		return errorReply(msg, notFound("feature", "feature server %q not found", f.id))
	}
	switch m := msg.(type) {
	case *actorpb.GetFeatureServer:
		return &actorpb.FeatureServerReply{Server: f.cur.rec, Version: f.cur.version}
	case *actorpb.DeleteFeatureServer:
		return f.delete(t, m)
	}
	return errorReply(msg, invalid("", "featureserver actor does not handle %T", msg))
}

func (f *featureServer) put(t *turn, m *actorpb.PutFeatureServer) proto.Message {
	if e := LabelIDError("feature", "feature", f.id); e != nil {
		return &actorpb.FeatureServerReply{Error: e}
	}
	targets, e := NormalizeFeatureTargets(m.GetServer().GetTargets())
	if e != nil {
		return &actorpb.FeatureServerReply{Error: e}
	}
	if e := ifMatch(m.IfMatch, f.cur.ver(), "feature server "+f.id); e != nil {
		return &actorpb.FeatureServerReply{Error: e}
	}
	now := timestamppb.New(f.sys.cfg.Clock.Now())
	rec := &actorpb.FeatureServer{Id: f.id, Targets: targets, CreatedAt: now, UpdatedAt: now}
	if f.cur != nil {
		rec.CreatedAt = f.cur.rec.CreatedAt
	}
	v, err := putRecord(t.ctx, f.sys.cfg.Store, featureKey(f.id), rec, f.cur.ver())
	if err != nil {
		return &actorpb.FeatureServerReply{Error: storeFailed(t, err, "feature server "+f.id)}
	}
	created := f.cur == nil
	f.cur = &versioned[*actorpb.FeatureServer]{rec: rec, version: v}
	return &actorpb.FeatureServerReply{Server: rec, Version: v, Created: created}
}

// delete removes the feature server. Routes that still name it stay: the
// edge answers requests they match as it does for any unreachable feature.
func (f *featureServer) delete(t *turn, m *actorpb.DeleteFeatureServer) proto.Message {
	if e := ifMatch(m.IfMatch, f.cur.version, "feature server "+f.id); e != nil {
		return &actorpb.FeatureServerReply{Error: e}
	}
	if err := f.sys.cfg.Store.Delete(t.ctx, featureKey(f.id), f.cur.version); err != nil {
		return &actorpb.FeatureServerReply{Error: storeFailed(t, err, "feature server "+f.id)}
	}
	old := f.cur
	f.cur = nil
	t.stop = true // nothing left to hold
	return &actorpb.FeatureServerReply{Server: old.rec, Version: old.version}
}

func (f *featureServer) debug(context.Context) proto.Message {
	if f.cur == nil {
		return &actorpb.FeatureServer{Id: f.id}
	}
	return f.cur.rec
}
