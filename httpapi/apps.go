package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/callcontext"
)

// App credentials (issue 11, section 2), admin token:
//
//	POST   /v1/accounts/{a}/apps       {"name": "crm", "scopes": ["calls:read", ...], "user": "alice"}
//	                                   201 {"id", "account", "name", "scopes", "user", "created_at", "token"}
//	GET    /v1/accounts/{a}/apps       {"apps": [...]} (never a token); ?after=<id> pages
//	DELETE /v1/accounts/{a}/apps/{id}  204; the token is refused on every node from then on
//
// The token is shown once; the store keeps its SHA-256. Each request made
// with it reads its record in the store (no cache), which is how a
// revocation holds on every node at once. Admin tokens are not app tokens
// and app tokens are not admin tokens: each route takes one kind.

// Apps is what the API needs for app credentials and the integration
// API; *actors.System implements it.
type Apps interface {
	CreateApp(ctx context.Context, account, name, user string, scopes []string) (actors.App, string, error)
	DeleteApp(ctx context.Context, account, id string) error
	ListApps(ctx context.Context, account, after string) ([]actors.App, error)
	AuthenticateApp(ctx context.Context, token string) (actors.App, error)
	ListUserCalls(ctx context.Context, account, user string, since time.Time, after string, limit int) ([]actors.UserCall, error)
	ContextStats() callcontext.Stats
}

type appIn struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	User   string   `json:"user"`
}

type appOut struct {
	actors.App
	Token string `json:"token,omitempty"`
}

// apps returns the configured Apps or writes a 404.
func (s *server) apps(w http.ResponseWriter) Apps {
	if s.cfg.Apps == nil {
		writeError(w, http.StatusNotFound, "", "this node serves no app integration")
	}
	return s.cfg.Apps
}

func (s *server) createApp(w http.ResponseWriter, r *http.Request) {
	var in appIn
	ids, ok := s.pathBody(w, r, &in, "a")
	if !ok || badInput(w, fromActor(actors.CheckApp(in.Name, in.User, in.Scopes))) {
		return
	}
	apps := s.apps(w)
	if apps == nil || !s.accountExists(w, r, ids[0]) {
		return
	}
	if in.User != "" {
		dev, ok := askAs[*actorpb.DeviceReply](s, w, r, actors.KindAccount, ids[0], &actorpb.GetDevice{Device: in.User})
		if !ok {
			return
		}
		if dev.Error.GetCode() == actorpb.Code_CODE_NOT_FOUND {
			writeError(w, http.StatusBadRequest, "user", "user must be a device of account "+ids[0]+"; "+in.User+" is not")
			return
		}
		if replyError(w, dev.Error) {
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	app, token, err := apps.CreateApp(ctx, ids[0], in.Name, in.User, in.Scopes)
	if err != nil {
		s.storeUnavailable(w, "registering the app", err)
		return
	}
	writeJSON(w, http.StatusCreated, appOut{App: app, Token: token})
}

func (s *server) listApps(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	if !ok {
		return
	}
	after := r.URL.Query().Get("after")
	if after != "" && !validAppID(after) {
		badInput(w, badField("after", "after must be an app id from a previous page"))
		return
	}
	apps := s.apps(w)
	if apps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	list, err := apps.ListApps(ctx, ids[0], after)
	if err != nil {
		s.storeUnavailable(w, "listing apps", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": list})
}

func (s *server) deleteApp(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	if !ok {
		return
	}
	id := r.PathValue("id")
	if !validAppID(id) {
		badInput(w, badField("id", "an app id is 16 hexadecimal digits, as POST returned"))
		return
	}
	apps := s.apps(w)
	if apps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	switch err := apps.DeleteApp(ctx, ids[0], id); {
	case errors.Is(err, actors.ErrNoSuchApp):
		writeError(w, http.StatusNotFound, "id", "account "+ids[0]+" has no app "+id)
	case err != nil:
		s.storeUnavailable(w, "revoking the app", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func validAppID(id string) bool {
	return len(id) == 16 && strings.Trim(id, "0123456789abcdef") == ""
}

func (s *server) storeUnavailable(w http.ResponseWriter, what string, err error) {
	s.log.Warn(what+" failed", "err", err)
	unavailable(w, what+" failed; retry: "+err.Error())
}

// appAuthorized serves h to requests bearing an app token that holds
// scope: 401 without a valid app token (an admin token is not one), 403
// without the scope, 503 when the store cannot tell.
func (s *server) appAuthorized(scope string, h func(http.ResponseWriter, *http.Request, actors.App)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apps := s.apps(w)
		if apps == nil {
			return
		}
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard-apps"`)
			writeError(w, http.StatusUnauthorized, "Authorization", "an app token is required: send Authorization: Bearer <token from POST /v1/accounts/{a}/apps>")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		app, err := apps.AuthenticateApp(ctx, token)
		cancel()
		switch {
		case errors.Is(err, actors.ErrBadToken):
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard-apps", error="invalid_token"`)
			msg := "unknown or revoked app token"
			if s.cfg.AdminToken != "" && token == s.cfg.AdminToken {
				msg = "this route takes an app token, not the admin token: register an app with POST /v1/accounts/{a}/apps"
			}
			writeError(w, http.StatusUnauthorized, "Authorization", msg)
			return
		case err != nil:
			s.storeUnavailable(w, "checking the app token", err)
			return
		}
		if !app.Has(scope) {
			writeError(w, http.StatusForbidden, "scope", "this app token lacks the scope "+scope+"; register an app that holds it")
			return
		}
		h(w, r, app)
	})
}
