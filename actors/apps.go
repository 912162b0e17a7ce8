package actors

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// App credentials (issue 11, section 2). An app (a CRM, a helpdesk, a
// softphone) of an account holds a bearer token with scopes, optionally
// acting for one user (device). The token is shown once; the store keeps
// its SHA-256 only (it has 256 random bits, so a plain hash is enough).
// Tokens read "sbapp_<account>.<id>.<secret>": the account and id name
// the record, so authenticating is one store read. Every request reads
// it, so a DELETE revokes the token on every node at once (no cache).
//
// Apps are not an actor's state: a registration is one compare-and-set
// write of its own key and a revocation one delete, with nothing to
// serialize against, so they go to the store directly.

// App scopes.
const (
	ScopeCallsRead    = "calls:read"
	ScopeContextWrite = "context:write"
	ScopeEventsRead   = "events:read"
)

// AppScopes lists the scopes an app may hold.
var AppScopes = []string{ScopeCallsRead, ScopeContextWrite, ScopeEventsRead}

func appPrefix(a string) string  { return "acct/" + a + "/app/" }
func appKey(a, id string) string { return appPrefix(a) + id }

const appTokenPrefix = "sbapp_"

// App is a registered app, without its token.
type App struct {
	ID        string    `json:"id"`
	Account   string    `json:"account"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	User      string    `json:"user,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Has tells whether the app holds scope.
func (a App) Has(scope string) bool { return slices.Contains(a.Scopes, scope) }

// Errors of the app credentials.
var (
	// ErrBadToken: the token is malformed, unknown or revoked.
	ErrBadToken = errors.New("actors: unknown or revoked app token")
	// ErrNoSuchApp: DeleteApp found no such app.
	ErrNoSuchApp = errors.New("actors: no such app")
)

// CheckApp validates a registration, returning the field at fault.
func CheckApp(name, user string, scopes []string) *actorpb.Error {
	if !ValidID(name) {
		return invalid("name", "name is the app's namespace on a call's context, e.g. \"crm\": 1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
	}
	if user != "" && !ValidID(user) {
		return invalid("user", "user is a device id of the account")
	}
	if len(scopes) == 0 {
		return invalid("scopes", "give at least one scope of %s", strings.Join(AppScopes, ", "))
	}
	for _, sc := range scopes {
		if !slices.Contains(AppScopes, sc) {
			return invalid("scopes", "unknown scope %q: the scopes are %s", sc, strings.Join(AppScopes, ", "))
		}
	}
	return nil
}

// CreateApp registers an app and returns it with its token, which is not
// kept and cannot be shown again. The caller has checked that the account
// (and the user) exist.
func (s *System) CreateApp(ctx context.Context, account, name, user string, scopes []string) (App, string, error) {
	if e := CheckApp(name, user, scopes); e != nil {
		return App{}, "", fmt.Errorf("%w: %s: %s", ErrInvalidApp, e.Field, e.Message)
	}
	var random [8 + 32]byte // the id, then the secret
	if _, err := io.ReadFull(s.cfg.Random, random[:]); err != nil {
		return App{}, "", err
	}
	id := hex.EncodeToString(random[:8])
	token := appTokenPrefix + account + "." + id + "." + base64.RawURLEncoding.EncodeToString(random[8:])
	sum := sha256.Sum256([]byte(token))
	sc := slices.Compact(slices.Sorted(slices.Values(scopes)))
	now := s.cfg.Clock.Now()
	rec := &actorpb.AppCredential{Id: id, Account: account, Name: name, Scopes: sc, User: user,
		TokenSha256: sum[:], CreatedAt: timestamppb.New(now)}
	if _, err := putRecord(ctx, s.cfg.Store, appKey(account, id), rec, persistence.MustNotExist); err != nil {
		return App{}, "", fmt.Errorf("storing app: %w", err)
	}
	return appOf(rec), token, nil
}

// ErrInvalidApp wraps a refused registration (field: message).
var ErrInvalidApp = errors.New("actors: invalid app")

func appOf(rec *actorpb.AppCredential) App {
	return App{ID: rec.Id, Account: rec.Account, Name: rec.Name, Scopes: rec.Scopes, User: rec.User, CreatedAt: rec.CreatedAt.AsTime()}
}

// DeleteApp revokes an app's token at once, on every node.
func (s *System) DeleteApp(ctx context.Context, account, id string) error {
	err := s.cfg.Store.Delete(ctx, appKey(account, id), persistence.AnyVersion)
	if errors.Is(err, persistence.ErrNotFound) {
		return ErrNoSuchApp
	}
	return err
}

// maxAppsListed bounds ListApps (an account registers a handful of apps
// per user at most).
const maxAppsListed = 1000

// ListApps returns up to 1000 of an account's apps, in id order, after
// the id after.
func (s *System) ListApps(ctx context.Context, account, after string) ([]App, error) {
	items, err := s.cfg.Store.Scan(ctx, appPrefix(account), scanFrom(appPrefix(account), after), maxAppsListed)
	if err != nil {
		return nil, err
	}
	out := make([]App, 0, len(items))
	for _, it := range items {
		var rec actorpb.AppCredential
		if err := proto.Unmarshal(it.Value, &rec); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", it.Key, err)
		}
		out = append(out, appOf(&rec))
	}
	return out, nil
}

// AuthenticateApp returns the app whose token this is: one store read, so
// a revocation holds on every node from the moment DeleteApp returns.
// Store errors other than not found are returned as they are (the caller
// answers 503, not 401).
func (s *System) AuthenticateApp(ctx context.Context, token string) (App, error) {
	rest, ok0 := strings.CutPrefix(token, appTokenPrefix)
	account, rest, ok1 := strings.Cut(rest, ".")
	id, _, ok2 := strings.Cut(rest, ".")
	_, hexErr := hex.DecodeString(id)
	if !ok0 || !ok1 || !ok2 || !ValidID(account) || len(id) != 16 || hexErr != nil {
		return App{}, ErrBadToken
	}
	it, err := s.cfg.Store.Get(ctx, appKey(account, id))
	if errors.Is(err, persistence.ErrNotFound) {
		return App{}, ErrBadToken
	}
	if err != nil {
		return App{}, err
	}
	var rec actorpb.AppCredential
	if err := proto.Unmarshal(it.Value, &rec); err != nil {
		return App{}, fmt.Errorf("decoding app %s: %w", id, err)
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], rec.TokenSha256) != 1 {
		return App{}, ErrBadToken
	}
	return appOf(&rec), nil
}
