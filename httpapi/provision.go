package httpapi

import (
	"crypto/rand"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/provisioning"
)

// Provisioning documents (issue 10, action d): a device's own secret, not
// an admin token, opens GET /provision/{a}/{d}, which serves its SIP
// credentials as phones' auto-provisioning servers do. The secret is
// drawn when the device gets its first password and shown once, in that
// PUT's reply (provisioning_secret); it is never stored (package
// provisioning).

// provisionFailures bounds wrong secrets: after maxProvisionFailures from
// one address within provisionWindow, 429 until the window ends.
const (
	maxProvisionFailures = 10
	provisionWindow      = time.Minute
)

// provisionLimiter counts failed provisioning requests per source address.
type provisionLimiter struct {
	mu    sync.Mutex
	fails map[netip.Addr]provisionFails
}

type provisionFails struct {
	n     int
	since time.Time
}

func (l *provisionLimiter) blocked(ip netip.Addr, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.fails[ip]
	if !ok || now.Sub(f.since) >= provisionWindow {
		return false, 0
	}
	return f.n >= maxProvisionFailures, provisionWindow - now.Sub(f.since)
}

func (l *provisionLimiter) failed(ip netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails == nil || len(l.fails) > 65536 {
		l.fails = map[netip.Addr]provisionFails{}
	}
	f := l.fails[ip]
	if now.Sub(f.since) >= provisionWindow {
		f = provisionFails{since: now}
	}
	f.n++
	l.fails[ip] = f
}

// provisionDoc is what a phone fetches.
type provisionDoc struct {
	Account string  `json:"account"`
	Device  string  `json:"device"`
	SIP     sipCred `json:"sip"`
	// CredentialsResetAt is when fraud containment last reset the
	// password: a phone that sees it change re-registers.
	CredentialsResetAt *time.Time `json:"credentials_reset_at,omitempty"`
}

type sipCred struct {
	Username string `json:"username"`
	// Password is absent when the device's current password was set
	// without a provisioning key (before the device had one).
	Password   string   `json:"password,omitempty"`
	Domain     string   `json:"domain"`
	Realm      string   `json:"realm"`
	Registrar  string   `json:"registrar"`
	Transports []string `json:"transports"`
}

// provision serves a device's provisioning document to the holder of its
// provisioning secret (HTTP Basic with the device id as the user, or a
// Bearer token). Unknown accounts and devices, and another account's
// devices, are 404; a wrong secret is 401, rate-limited per address.
func (s *server) provision(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a", "d")
	if !ok {
		return
	}
	ip := remoteIP(r)
	now := s.cfg.Clock.Now()
	if blocked, left := s.provFails.blocked(ip, now); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(left.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, "Authorization", "too many wrong provisioning secrets from this address; retry later")
		return
	}
	secret := ""
	if user, pass, ok := r.BasicAuth(); ok && user == ids[1] {
		secret = pass
	} else if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		secret = tok
	}
	unauthorized := func() {
		w.Header().Set("WWW-Authenticate", `Basic realm="switchboard provisioning", charset="UTF-8"`)
		writeError(w, http.StatusUnauthorized, "Authorization", "the device's provisioning secret is required: HTTP Basic with the device id as the user")
	}
	if secret == "" {
		// An HTTP client's first try carries no credentials: a
		// challenge, not a failure (a phone would lock itself out).
		unauthorized()
		return
	}
	rep, ok := askAs[*actorpb.ProvisioningReply](s, w, r, actors.KindAccount, ids[0], &actorpb.GetProvisioning{Device: ids[1]})
	if !ok || replyError(w, rep.Error) {
		return
	}
	if len(rep.ProvisioningKey) == 0 {
		writeError(w, http.StatusNotFound, "device", "device has no provisioning secret: set its password to draw one")
		return
	}
	if !provisioning.Authenticate(secret, rep.ProvisioningKey) {
		s.provFails.failed(ip, now)
		unauthorized()
		return
	}
	realm := s.realm(ids[0])
	doc := provisionDoc{Account: ids[0], Device: ids[1], CredentialsResetAt: ts(rep.CredentialsResetAt),
		SIP: sipCred{Username: ids[1], Domain: realm, Realm: realm, Registrar: "sip:" + realm, Transports: []string{"udp", "tcp"}}}
	if len(rep.SealedPassword) > 0 {
		password, err := provisioning.Open(secret, rep.SealedPassword)
		if err != nil {
			s.log.Error("a device's sealed password does not open with its own secret", "account", ids[0], "device", ids[1], "err", err)
			writeError(w, http.StatusInternalServerError, "", "the device's password could not be unsealed")
			return
		}
		doc.SIP.Password = password
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, doc)
}

// sealForDevice fills msg's provisioning fields for a new password: sealed
// to the device's current provisioning key, or to a new one drawn now, in
// which case the new secret is returned (to be shown once).
func (s *server) sealForDevice(w http.ResponseWriter, r *http.Request, account string, msg *actorpb.PutDevice, password string) (string, bool) {
	rep, ok := askAs[*actorpb.ProvisioningReply](s, w, r, actors.KindAccount, account, &actorpb.GetProvisioning{Device: msg.Device})
	if !ok {
		return "", false
	}
	key, secret := rep.GetProvisioningKey(), ""
	if rep.Error != nil && rep.Error.Code != actorpb.Code_CODE_NOT_FOUND {
		replyError(w, rep.Error)
		return "", false
	}
	if len(key) == 0 {
		var err error
		if secret, err = provisioning.NewSecret(rand.Reader); err == nil {
			key, err = provisioning.PublicKey(secret)
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "", "drawing a provisioning secret failed")
			return "", false
		}
		msg.ProvisioningKey = key
	}
	sealed, err := provisioning.Seal(rand.Reader, key, password)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "sealing the password failed")
		return "", false
	}
	msg.SealedPassword = sealed
	return secret, true
}

// restoreDevice is the restore path by hand: the account's supervisor
// resets the device's credentials, removes its bindings and sends the
// check-sync NOTIFY to those whose source its history knew.
func (s *server) restoreDevice(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a", "d")
	if !ok {
		return
	}
	rep, ok := askAs[*actorpb.RestoreReply](s, w, r, actors.KindMessaging, ids[0], &actorpb.RestoreDevice{Device: ids[1]})
	if !ok || replyError(w, rep.Error) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"account": ids[0], "device": ids[1], "credentials_reset_at": ts(rep.CredentialsResetAt),
		"bindings_removed": rep.BindingsRemoved, "bindings_notified": rep.BindingsNotified, "detail": rep.Detail,
	})
}

func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}
