package accountview

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
)

// ErrNotFound is the answer for an account or a device that does not
// exist.
var ErrNotFound = errors.New("accountview: not found")

// Requester reaches the account actors (*actors.System).
type Requester interface {
	Request(ctx context.Context, kind, identity string, msg proto.Message) (proto.Message, error)
}

// Config configures a Cache.
type Config struct {
	// Actors loads what is missing. Required.
	Actors Requester
	// MaxAge is how long an entry is used without a notice that it
	// changed. Default 30 s.
	MaxAge time.Duration
	// MaxAccounts and MaxDevices bound the entries kept (least recently
	// used go first). Defaults 100,000 and 1,000,000.
	MaxAccounts, MaxDevices int
	// Clock tells the time. Default the wall clock.
	Clock clock.Clock
}

// DefaultConfig is a Config with its defaults; Actors is still to set.
func DefaultConfig() Config {
	return Config{MaxAge: 30 * time.Second, MaxAccounts: 100_000, MaxDevices: 1_000_000, Clock: clock.Real{}}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case c.Actors == nil:
		return errors.New("accountview: Actors is required")
	case c.MaxAge <= 0:
		return errors.New("accountview: MaxAge must be positive")
	case c.MaxAccounts <= 0 || c.MaxDevices <= 0:
		return errors.New("accountview: MaxAccounts and MaxDevices must be positive")
	case c.Clock == nil:
		return errors.New("accountview: Clock is required")
	}
	return nil
}

// Account is the account level of one account's snapshot. It is never
// changed after it is built.
type Account struct {
	ID     string
	Record *actorpb.Account
	Routes []*actorpb.Route
	Trunks []Trunk
	// Pools are the pools of the account's groups, sorted.
	Pools []string

	groupPools map[string]string
}

// Trunk is a trunk with its sources parsed.
type Trunk struct {
	*actorpb.Trunk
	Prefixes []netip.Prefix
}

// PoolOf is the pool of group's calls ("" when the group has none).
func (a *Account) PoolOf(group string) string { return a.groupPools[group] }

// TrunkFor returns the trunk whose sources contain ip, or nil.
func (a *Account) TrunkFor(ip netip.Addr) *actorpb.Trunk {
	ip = ip.Unmap()
	for _, t := range a.Trunks {
		for _, p := range t.Prefixes {
			if p.Contains(ip) {
				return t.Trunk
			}
		}
	}
	return nil
}

// Cache holds a node's account snapshots. Its methods are safe for
// concurrent use.
type Cache struct {
	cfg      Config
	accounts *lru.Cache[string, entry[*Account]]
	devices  *lru.Cache[string, entry[*actorpb.Device]]
	flight   singleflight.Group
	// seq counts invalidations: a load keeps what it read only when none
	// happened while it was under way.
	seq atomic.Uint64
	// epochs holds, per account (*atomic.Uint64), how many times all of
	// it was invalidated: a device entry from an older epoch is stale.
	epochs sync.Map

	hits, misses, loads, invalidations atomic.Uint64
}

// Stats counts the cache's work.
type Stats struct {
	Hits, Misses, Loads, Invalidations uint64
}

type entry[T any] struct {
	val   T
	err   error // ErrNotFound, or nil
	at    time.Time
	epoch uint64
}

// New returns a Cache.
func New(cfg Config) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	accounts, err := lru.New[string, entry[*Account]](cfg.MaxAccounts)
	if err != nil {
		return nil, err
	}
	devices, err := lru.New[string, entry[*actorpb.Device]](cfg.MaxDevices)
	if err != nil {
		return nil, err
	}
	return &Cache{cfg: cfg, accounts: accounts, devices: devices}, nil
}

// Stats returns the counts so far.
func (c *Cache) Stats() Stats {
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Loads: c.loads.Load(), Invalidations: c.invalidations.Load()}
}

// epoch is account's count of invalidations of all of it.
func (c *Cache) epoch(account string) uint64 {
	if v, ok := c.epochs.Load(account); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// Account returns account's snapshot, or ErrNotFound.
func (c *Cache) Account(ctx context.Context, account string) (*Account, error) {
	return get(ctx, c, c.accounts, account, AccountKey(account), func(ctx context.Context) (*Account, error) {
		return c.loadAccount(ctx, account)
	})
}

// Device returns device of account with its HA1s, or ErrNotFound. The
// record is shared: callers must not change it.
func (c *Cache) Device(ctx context.Context, account, device string) (*actorpb.Device, error) {
	return get(ctx, c, c.devices, account, DeviceKey(account, device), func(ctx context.Context) (*actorpb.Device, error) {
		return c.loadDevice(ctx, account, device)
	})
}

func get[T any](ctx context.Context, c *Cache, m *lru.Cache[string, entry[T]], account, key string, load func(context.Context) (T, error)) (T, error) {
	now := c.cfg.Clock.Now()
	if e, ok := m.Get(key); ok && now.Sub(e.at) < c.cfg.MaxAge && e.epoch == c.epoch(account) {
		c.hits.Add(1)
		return e.val, e.err
	}
	c.misses.Add(1)
	v, err, _ := c.flight.Do(key, func() (any, error) {
		seq, epoch := c.seq.Load(), c.epoch(account)
		c.loads.Add(1)
		val, err := load(ctx)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if c.seq.Load() == seq {
			m.Add(key, entry[T]{val: val, err: err, at: c.cfg.Clock.Now(), epoch: epoch})
		}
		return entry[T]{val: val, err: err}, nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	e := v.(entry[T])
	return e.val, e.err
}

func (c *Cache) loadAccount(ctx context.Context, account string) (*Account, error) {
	view, err := c.request(ctx, account, &actorpb.GetSecretEdgeView{})
	if err != nil {
		return nil, err
	}
	a := &Account{ID: account, Record: view.Account, Routes: view.GetRoutes().GetRoutes(), Pools: view.Pools, groupPools: view.GroupPools}
	for _, t := range view.Trunks {
		tr := Trunk{Trunk: t}
		for _, s := range t.Sources {
			if p, err := netip.ParsePrefix(s); err == nil {
				tr.Prefixes = append(tr.Prefixes, p.Masked())
			}
		}
		a.Trunks = append(a.Trunks, tr)
	}
	return a, nil
}

func (c *Cache) loadDevice(ctx context.Context, account, device string) (*actorpb.Device, error) {
	view, err := c.request(ctx, account, &actorpb.GetSecretEdgeView{Device: device, DeviceOnly: true})
	if err != nil {
		return nil, err
	}
	if !view.Found || view.Device == nil {
		return nil, ErrNotFound
	}
	return view.Device, nil
}

func (c *Cache) request(ctx context.Context, account string, m *actorpb.GetSecretEdgeView) (*actorpb.SecretEdgeView, error) {
	rep, err := c.cfg.Actors.Request(ctx, actors.KindAccount, account, m)
	if err != nil {
		return nil, err
	}
	view, ok := rep.(*actorpb.SecretEdgeView)
	if !ok {
		return nil, fmt.Errorf("accountview: account %s answered %T", account, rep)
	}
	if view.Error != nil {
		if view.Error.Code == actorpb.Code_CODE_NOT_FOUND {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("accountview: account %s: %s", account, view.Error.Message)
	}
	return view, nil
}

// AccountKey is the invalidation key of an account's level; DeviceKey of
// one device; AllKey of everything the node holds of the account.
func AccountKey(account string) string        { return "a/" + account }
func DeviceKey(account, device string) string { return "d/" + account + "/" + device }
func AllKey(account string) string            { return "*/" + account }

// Invalidate drops the entries that keys name (AccountKey, DeviceKey,
// AllKey); unknown keys are ignored.
func (c *Cache) Invalidate(keys ...string) {
	c.seq.Add(1)
	c.invalidations.Add(1)
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "a/"):
			c.accounts.Remove(k)
		case strings.HasPrefix(k, "d/"):
			c.devices.Remove(k)
		case strings.HasPrefix(k, "*/"):
			// The account's devices go stale by epoch, not one by one.
			account := k[2:]
			v, _ := c.epochs.LoadOrStore(account, new(atomic.Uint64))
			v.(*atomic.Uint64).Add(1)
			c.accounts.Remove(AccountKey(account))
		}
	}
}
