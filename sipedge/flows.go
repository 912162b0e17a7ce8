package sipedge

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Flow is one device flow this edge holds (RFC 5626): a TCP or TLS
// connection the device opened, or the UDP source address it registers
// from. It is the edge actor of that flow: the node that holds it is the
// only one that can reach the device (a connection cannot be dialled back,
// NAT drops what another address sends), so the device's bindings name
// this node (edge_node), and a request for the device from whichever node
// handles the call is handed to this edge (a hop with the flow to deliver
// on) and goes out here.
type Flow struct {
	// Key is "transport:ip:port", as the bindings' source.
	Key       string `json:"flow"`
	Transport string `json:"transport"`
	Remote    string `json:"remote"`
	Account   string `json:"account"`
	Device    string `json:"device"`
	// Since is when the flow first registered; LastActivity when a request
	// last came on it; Expires when its registration runs out.
	Since        time.Time `json:"since"`
	LastActivity time.Time `json:"last_activity"`
	Expires      time.Time `json:"expires"`
}

// flowGrace is how long a UDP flow outlives its registration (a refresh
// that is late by a little) before the edge forgets it.
const flowGrace = 30 * time.Second

// flows is the edge's table of the device flows it holds.
type flows struct {
	mu sync.Mutex
	m  map[string]*Flow
}

func newFlows() *flows { return &flows{m: map[string]*Flow{}} }

func flowKey(transport, remote string) string { return strings.ToLower(transport) + ":" + remote }

// registered records that a device registered over the flow key until
// expires (unregistered when expires is not after now).
func (f *flows) registered(key, account, device string, now, expires time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !expires.After(now) {
		delete(f.m, key)
		return
	}
	fl, ok := f.m[key]
	if !ok || fl.Account != account || fl.Device != device {
		tp, remote, _ := strings.Cut(key, ":")
		fl = &Flow{Key: key, Transport: tp, Remote: remote, Account: account, Device: device, Since: now}
		f.m[key] = fl
	}
	fl.LastActivity, fl.Expires = now, expires
}

// touch notes a request that came on the flow key.
func (f *flows) touch(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.m[key]; ok {
		fl.LastActivity = now
	}
}

// closed forgets the stream flows whose connection from remote ended:
// the device is unreachable until it connects and registers again.
func (f *flows) closed(remote string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tp := range []string{"tcp", "tls"} {
		delete(f.m, flowKey(tp, remote))
	}
}

// holds says whether the flow key is one this edge can deliver on: a
// registered flow, its connection still open for a stream.
func (f *flows) holds(key string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.m[key]
	return ok && now.Before(fl.Expires.Add(flowGrace))
}

// sweep forgets flows long past their registration (the edge runs it
// with its keep-alives).
func (f *flows) sweep(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	maps.DeleteFunc(f.m, func(_ string, fl *Flow) bool { return now.After(fl.Expires.Add(flowGrace)) })
}

// list returns the flows, oldest first, at most limit (0: all).
func (f *flows) list(now time.Time, limit int) []Flow {
	f.mu.Lock()
	out := make([]Flow, 0, len(f.m))
	for _, fl := range f.m {
		if now.Before(fl.Expires.Add(flowGrace)) {
			out = append(out, *fl)
		}
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b Flow) int { return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.Key, b.Key)) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
