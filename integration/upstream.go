package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// upstreamLoop keeps the proxy's one event stream from the server open:
// it reconnects after Backoff (BackoffMin doubling to BackoffMax, with
// jitter from Config.Rand), resuming after the last sequence it has seen
// (Last-Event-ID), so no event is lost across an outage shorter than the
// server's retention. A connection that delivered its stream resets the
// backoff.
func (p *Proxy) upstreamLoop(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		connected, err := p.streamOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			attempt = 0
		}
		d := Backoff(attempt, p.cfg.BackoffMin, p.cfg.BackoffMax, p.cfg.Rand)
		attempt++
		p.log.Debug("event stream ended; reconnecting", "err", err, "in", d, "attempt", attempt)
		if p.cfg.Sleep(ctx, d) != nil {
			return
		}
	}
}

// errStalled ends a stream that went silent for StallTimeout.
var errStalled = errors.New("integration: the server's event stream went silent")

// streamOnce opens the event stream and relays it into the hub until it
// ends. connected reports whether the server answered with a stream.
func (p *Proxy) streamOnce(ctx context.Context) (connected bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.upstreamURL("/v1/events", nil), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	if last, _ := p.hub.status(); last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
	}
	// The stall timer also covers a server that accepts the connection
	// but never answers.
	stall := p.cfg.Clock.AfterFunc(p.cfg.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == nil || context.Cause(ctx) == errStalled {
			p.setOnline(false)
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rep := &upstreamReply{status: resp.StatusCode}
		p.setOnline(!unreachable(rep, nil))
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		p.log.Warn("the server refused the event stream", "status", resp.StatusCode, "body", string(b))
		return false, errors.New("integration: event stream answered " + resp.Status)
	}
	p.setOnline(true)
	rd := newSSEReader(resp.Body)
	for {
		f, err := rd.next(func() { stall.Reset(p.cfg.StallTimeout) })
		if err != nil {
			if c := context.Cause(ctx); c == errStalled {
				err = c
			}
			return true, err
		}
		seq, ok := f.seq()
		switch {
		case ok:
			p.hub.addUpstream(f, seq)
		case f.Event == "error":
			// The server's stream failed; it asks for a reconnect.
			return true, errors.New("integration: the server's event stream failed: " + f.Data)
		}
		// Frames without an id carry no event to keep.
	}
}

// replayLoop replays offline writes whenever the server is seen to
// answer again (setOnline kicks it).
func (p *Proxy) replayLoop(ctx context.Context) {
	// Writes from an earlier run wait for the first sign of the server.
	p.kickReplay()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		p.drain(ctx)
	}
}

// drain replays the queued writes in order until the queue is empty or
// the server stops answering. Each is sent as it was made (body,
// Content-Type, If-Match); the server's answer, a 412 included, is its
// outcome: recorded for GET /proxy/queue and told to local subscribers
// as "event: proxy.write". Nothing is retried without its If-Match.
func (p *Proxy) drain(ctx context.Context) {
	for ctx.Err() == nil {
		qw, ok := p.queue.head()
		if !ok {
			return
		}
		// forward sends only the headers that have a value.
		h := http.Header{"Content-Type": {qw.ContentType}, "If-Match": {qw.IfMatch}}
		rep, err := p.forward(ctx, http.MethodPatch, contextPath(qw.Call), nil, qw.Body, h)
		if ctx.Err() != nil {
			return
		}
		if unreachable(rep, err) {
			p.setOnline(false)
			return
		}
		res := writeResult{ID: qw.ID, Call: qw.Call, Status: rep.status, ETag: rep.header.Get("ETag"),
			Queued: qw.Queued, Done: p.cfg.Clock.Now()}
		if rep.status >= 300 {
			var eb errorBody
			if json.Unmarshal(rep.body, &eb) == nil && eb.Error != "" {
				res.Error = eb.Error
			} else {
				res.Error = http.StatusText(rep.status)
			}
		}
		if err := p.queue.done(qw.ID, res); err != nil {
			p.log.Warn("saving the offline queue after a replay", "err", err)
		}
		p.log.Info("replayed an offline write", "call_id", qw.Call, "queued", qw.ID, "status", rep.status)
		data, _ := json.Marshal(res)
		p.hub.addLocal(frame{Event: "proxy.write", Data: string(data)})
	}
}
