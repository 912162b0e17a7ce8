package events

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"time"
)

// Run delivers webhooks and prunes old events until ctx ends, then waits
// for the deliveries it started and returns nil. Without Run, Append and
// Subscribe work but nothing is delivered or pruned.
//
// Work comes from this node's appends (the account's webhook is delivered
// and, at most once per PruneEvery, its old events pruned) and from a
// sweep every SweepEvery of every account in the store: idle accounts are
// pruned, and a webhook whose lease has run out (its node died mid-
// delivery) is taken over. At most Webhook.MaxConcurrent accounts are
// worked on at once, each by one goroutine, so an account's deliveries
// stay in order.
func (s *Stream) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	finished := make(chan string)
	running := make(map[string]struct{}) // accounts being worked on
	pending := make(map[string]job)      // waiting for their worker to end, or for a free one
	pruned := make(map[string]time.Time)
	sweep := time.NewTicker(s.cfg.SweepEvery)
	defer sweep.Stop()
	sweeping := false
	sweepDone := make(chan struct{})

	start := func() {
		for account, j := range pending {
			if _, busy := running[account]; busy {
				continue // one worker per account keeps deliveries in order
			}
			if len(running) >= s.cfg.Webhook.MaxConcurrent {
				return
			}
			delete(pending, account)
			if j&jobPrune != 0 {
				now := s.cfg.Clock.Now()
				if t, ok := pruned[account]; ok && now.Sub(t) < s.cfg.PruneEvery {
					j &^= jobPrune
				} else {
					pruned[account] = now
				}
			}
			running[account] = struct{}{}
			wg.Go(func() {
				s.work1(ctx, account, j)
				select {
				case finished <- account:
				case <-ctx.Done():
				}
			})
		}
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			if sweeping {
				<-sweepDone
			}
			return nil
		case <-s.workSig:
			for a, j := range s.takeWork() {
				pending[a] |= j
			}
		case a := <-finished:
			delete(running, a)
		case <-sweep.C:
			if !sweeping {
				sweeping = true
				go func() {
					defer func() { sweepDone <- struct{}{} }()
					s.sweep(ctx)
				}()
			}
			cutoff := s.cfg.Clock.Now().Add(-s.cfg.PruneEvery)
			maps.DeleteFunc(pruned, func(_ string, t time.Time) bool { return t.Before(cutoff) })
		case <-sweepDone:
			sweeping = false
		}
		start()
	}
}

func (s *Stream) work1(ctx context.Context, account string, j job) {
	if j&jobPrune != 0 {
		if _, err := s.Prune(ctx, account); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning old events", "account", account, "err", err)
		}
	}
	if j&jobDeliver != 0 {
		s.deliver(ctx, account)
	}
}

// sweep asks for a prune of every account with a stream and a delivery
// check of every webhook whose lease is free or has run out, a page of
// keys at a time.
func (s *Stream) sweep(ctx context.Context) {
	walk := func(prefix string, each func(account string, value []byte)) {
		after := ""
		for ctx.Err() == nil {
			page, err := s.store.Scan(ctx, prefix, after, s.cfg.PageSize)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("events sweep", "prefix", prefix, "err", err)
				}
				return
			}
			if len(page) == 0 {
				return
			}
			for _, it := range page {
				if a := strings.TrimPrefix(it.Key, prefix); checkAccount(a) == nil {
					each(a, it.Value)
				}
			}
			after = page[len(page)-1].Key
		}
	}
	walk(headPrefix, func(a string, _ []byte) { s.want(a, jobPrune) })
	now := s.cfg.Clock.Now()
	walk(hookPrefix, func(a string, v []byte) {
		var rec hookRec
		if json.Unmarshal(v, &rec) != nil || rec.Owner == "" || !now.Before(rec.Until) {
			s.want(a, jobDeliver)
		}
	})
}
