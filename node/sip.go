package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/cluster"
	"github.com/switchboard-pbx/switchboard/cluster/gossip"
	"github.com/switchboard-pbx/switchboard/dnszone"
	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/sipauth"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

// startSIP binds the DNS responder and the SIP edge, on the node's actor
// system and account snapshots.
func (n *Node) startSIP() error {
	cfg := n.cfg
	var err error
	n.dns, err = dnszone.NewServer(dnszone.Config{
		Zone: cfg.Zone, Addr: cfg.DNSAddr, Targets: dnsTargets{n}, Logger: n.log, Registerer: n.registry,
	})
	if err != nil {
		return fmt.Errorf("node: starting the DNS responder on %s: %w", cfg.DNSAddr, err)
	}
	n.closers.push(n.dns.Close)
	resolver, err := dnszone.NewResolver(dnszone.ResolverConfig{Server: cmp.Or(cfg.Resolver, n.dns.Addr()), Logger: n.log})
	if err != nil {
		return err
	}
	secret, err := sipSecret(cfg, n.store)
	if err != nil {
		return err
	}
	auth, err := sipauth.New(sipauth.Config{Secret: secret})
	if err != nil {
		return err
	}
	n.sip, err = sipedge.New(sipedge.Config{
		Node: cfg.Name, Pool: cfg.Pool, Zone: cfg.Zone, Addr: cfg.SIPAddr,
		TLSAddr: cfg.SIPSAddr, CertFile: cfg.SIPSCert, KeyFile: cfg.SIPSKey,
		Actors: n.actors, Accounts: n.views, Members: sipMembers{n.membership}, Resolver: resolver, Auth: auth, RouteSecret: secret,
		LiveCalls: n.actors.LiveCalls, Logger: n.log, Registerer: n.registry,
		Flood:           sipedge.FloodConfig{Limit: cfg.SIPFloodLimit},
		Trust:           cfg.SIPTrust,
		Streams:         cfg.SIPStreams,
		Health:          sipedge.HealthConfig{Interval: cfg.SIPProbeInterval},
		FailoverTimeout: cfg.SIPFailoverTimeout, DigestAlgorithms: cfg.SIPDigest,
	})
	if err != nil {
		return err
	}
	n.closers.push(func() error { n.sip.Close(); return nil })
	return nil
}

// sipSecret keys the digest nonces and the signatures in the edge's
// Record-Route entries and hop headers: --sip-secret, else derived from
// the gossip key, else one made once and kept in the store (so the nodes
// of a cluster, which share their store, share it too). A stable secret
// keeps dialogs routable through a node after it restarts (nonces are
// bound to one boot anyway), and a shared one lets peers prove their hops.
func sipSecret(cfg Config, store persistence.Store) ([]byte, error) {
	if cfg.SIPSecret != "" || cfg.GossipKey != "" {
		k := []byte(cfg.SIPSecret)
		if cfg.SIPSecret == "" {
			k, _ = base64.StdEncoding.DecodeString(cfg.GossipKey)
		}
		s := sha256.Sum256(append([]byte("switchboard sip nonce\x00"), k...))
		return s[:], nil
	}
	// Neither: the cluster's secret is kept in the store the nodes share,
	// made by the first node that needs it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		it, err := store.Get(ctx, sipSecretKey)
		if err == nil && len(it.Value) == 32 {
			return it.Value, nil
		}
		if err != nil && !errors.Is(err, persistence.ErrNotFound) {
			return nil, fmt.Errorf("node: reading the cluster's SIP secret: %w", err)
		}
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		expect := persistence.MustNotExist
		if err == nil {
			expect = it.Version // a damaged one is replaced
		}
		if _, err := store.Put(ctx, sipSecretKey, b, expect); err == nil {
			return b, nil
		} else if !errors.Is(err, persistence.ErrConflict) {
			return nil, fmt.Errorf("node: storing the cluster's SIP secret: %w", err)
		}
	}
	return nil, errors.New("node: the cluster's SIP secret kept changing under this node")
}

// sipSecretKey holds the SIP secret of a cluster run without --sip-secret
// or --gossip-key.
const sipSecretKey = "cluster/sip-secret"

// sipMembers tells the edge the alive nodes' SIP addresses.
type sipMembers struct{ m *cluster.Membership }

func (m sipMembers) alive() []gossip.Member {
	return slices.DeleteFunc(m.m.Members(), func(g gossip.Member) bool { return g.Status != gossip.StatusAlive || g.Meta.SIP == "" })
}

func (m sipMembers) SIPAddr(node string) (string, bool) {
	for _, g := range m.alive() {
		if g.Meta.Name == node {
			return g.Meta.SIP, true
		}
	}
	return "", false
}

func (m sipMembers) IsPeer(addr string) bool {
	return slices.ContainsFunc(m.alive(), func(g gossip.Member) bool { return g.Meta.SIP == addr && !g.Local })
}

// dnsTargets answers the DNS responder: an account DNS name resolves to
// the alive, not draining nodes of the account's pools (of the node's own
// pool while the account has no group); a forwarding name <f>.<a>.<zone>
// to the healthy targets of feature server f, only when account a routes
// to f (a tenant never learns another's feature servers).
type dnsTargets struct{ n *Node }

func (d dnsTargets) Targets(ctx context.Context, name string) ([]dnszone.Target, bool, error) {
	rest, ok := strings.CutSuffix(name, "."+d.n.cfg.Zone)
	if !ok {
		return nil, false, nil
	}
	labels := strings.Split(rest, ".")
	account := labels[len(labels)-1]
	if len(labels) > 2 || !actors.ValidAccountID(account) || len(labels) == 2 && !actors.ValidAccountID(labels[0]) {
		// Not a name an account or a feature can have: answered without
		// waking an actor.
		return nil, false, nil
	}
	view, err := d.n.views.Account(ctx, account)
	if errors.Is(err, accountview.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if len(labels) == 1 {
		return d.nodes(view.Pools), true, nil
	}
	feature := labels[0]
	if !slices.ContainsFunc(view.Routes, func(r *actorpb.Route) bool { return r.Feature == feature }) {
		return nil, false, nil
	}
	rep, err := d.n.actors.Request(ctx, actors.KindFeatureServer, feature, &actorpb.GetFeatureServer{})
	if err != nil {
		return nil, false, err
	}
	fs, ok := rep.(*actorpb.FeatureServerReply)
	switch {
	case !ok:
		return nil, false, fmt.Errorf("node: feature server %s answered %T", feature, rep)
	case fs.Error != nil && fs.Error.Code == actorpb.Code_CODE_NOT_FOUND:
		return nil, false, nil
	case fs.Error != nil:
		// SERVFAIL, which resolvers do not cache, rather than NXDOMAIN.
		return nil, false, fmt.Errorf("node: feature server %s: %s", feature, fs.Error.Message)
	}
	// Healthy targets only, unless none is: then all of them (the proxy
	// tries them in turn rather than refusing on stale health).
	var up, all []dnszone.Target
	for _, t := range fs.Server.Targets {
		ap, err := netip.ParseAddrPort(t.Address)
		if err != nil {
			continue
		}
		dt := dnszone.Target{IP: ap.Addr(), Port: ap.Port(), Transport: t.Transport, Priority: uint16(t.Priority), Weight: uint16(t.Weight)}
		all = append(all, dt)
		if d.n.sip.TargetUp(t.Address, t.Transport) {
			up = append(up, dt)
		}
	}
	if len(up) == 0 {
		return all, true, nil
	}
	return up, true, nil
}

// nodes are the SIP targets (UDP and TCP) of the alive, not draining
// nodes of pools.
func (d dnsTargets) nodes(pools []string) []dnszone.Target {
	if len(pools) == 0 {
		pools = []string{d.n.cfg.Pool}
	}
	var out []dnszone.Target
	for _, g := range (sipMembers{d.n.membership}).alive() {
		if g.Load.Draining || !slices.Contains(pools, g.Meta.Pool) {
			continue
		}
		ap, err := netip.ParseAddrPort(g.Meta.SIP)
		if err != nil {
			continue
		}
		for _, tp := range []string{dnszone.TransportUDP, dnszone.TransportTCP} {
			out = append(out, dnszone.Target{IP: ap.Addr(), Port: ap.Port(), Transport: tp, Priority: 10, Weight: 10})
		}
	}
	return out
}

// sipView shows the edge on the debug endpoints.
type sipView struct{ e *sipedge.Edge }

func (v sipView) Bans() any    { return v.e.Bans() }
func (v sipView) Targets() any { return v.e.Targets() }

func (v sipView) EdgeActors(limit int) (any, int) {
	all := v.e.Flows(0)
	return all[:min(limit, len(all))], len(all)
}

// edgeLink is the SIP edge as the actors see it, built after them: it
// sends the restore path's check-sync NOTIFYs (actors.Notifier) and BYE
// to both legs of the calls the actors ended by themselves (expired;
// interrupted by the shutdown; actors.CallHangup). Only a request reaches
// an actor, after New, so the edge exists by then.
type edgeLink struct{ n *Node }

func (e edgeLink) CheckSync(ctx context.Context, account string, bindings []*actorpb.Binding) int {
	return e.n.sip.CheckSync(ctx, account, bindings)
}

func (e edgeLink) HangUp(ctx context.Context, rec *actorpb.CallRecord) { e.n.sip.HangUp(ctx, rec) }
