package sipedge

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// probe sends OPTIONS to every feature-server target in use, every
// Health.Interval, feeding the answers to the health state machine (a 2xx
// to 4xx answer means alive, as for Kamailio's dispatcher with
// ds_ping_reply_codes="class=2;class=3;class=4").
func (e *Edge) probe(ctx context.Context) {
	e.every(ctx, e.cfg.Health.Interval, func() {
		var wg sync.WaitGroup
		for _, th := range e.health.Due(e.now()) {
			wg.Go(func() {
				ok, why := e.ping(ctx, th.Address, th.Transport)
				result := "ok"
				if !ok {
					result = "failed"
				}
				e.metrics.probes.WithLabelValues(result).Inc()
				e.noteTarget(target{dest: th.Address, transport: th.Transport, feature: true}, ok, why)
			})
		}
		wg.Wait()
	})
}

// ping sends one OPTIONS to addr.
func (e *Edge) ping(ctx context.Context, addr, transport string) (bool, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return false, "bad address"
	}
	host, p := addr[:i], portOr(addr[i+1:], 0)
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: host, Port: p})
	req.SetTransport(strings.ToUpper(transport))
	req.SetDestination(addr)
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "probe", Host: e.advHost, Port: e.advPort},
		Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(10)}}})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: host, Port: p}})
	req.PrependHeader(e.via(req))
	e.fromListener(req)
	pctx, cancel := context.WithTimeout(ctx, e.cfg.Health.Timeout)
	defer cancel()
	res, err := e.cli.Do(pctx, req)
	if err != nil {
		return false, err.Error()
	}
	if res.StatusCode >= 200 && res.StatusCode < 500 {
		return true, ""
	}
	return false, "status " + strconv.Itoa(res.StatusCode)
}
