package node

import (
	"context"

	"github.com/switchboard-pbx/switchboard/events"
)

// callEventSink is the node's events.Stream as the actors see it: an
// actors.EventSink that also names the call an event is about
// (actors.CallEventSink), so that ?call= selects a call's events.
type callEventSink struct{ *events.Stream }

// AppendCallEvent implements actors.CallEventSink.
func (s callEventSink) AppendCallEvent(ctx context.Context, account, typ, call, user string, data []byte) error {
	_, err := s.Append(ctx, account, events.Event{Type: typ, Call: call, User: user, Data: data})
	return err
}
