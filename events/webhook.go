package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// Webhook delivery headers. The body is the event's JSON, as on the SSE
// stream.
const (
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of the
	// body under the webhook's secret (see Sign and Verify).
	HeaderSignature = "X-Switchboard-Signature"
	// HeaderEventID carries the event's ID: a receiver that has seen it
	// drops the delivery (deliveries are at least once).
	HeaderEventID = "X-Switchboard-Event-Id"
	// HeaderEventSeq and HeaderEventType carry the event's Seq and Type.
	HeaderEventSeq  = "X-Switchboard-Event-Seq"
	HeaderEventType = "X-Switchboard-Event-Type"
)

// Webhook is an account's webhook.
type Webhook struct {
	// URL receives a POST per event, in sequence order.
	URL string `json:"url"`
	// Secret keys the deliveries' signatures.
	Secret string `json:"secret"`
	// Delivered is the sequence of the last event delivered (or skipped);
	// delivery goes on after it. Setting a new webhook starts it at the
	// stream's head: earlier events are not sent.
	Delivered uint64 `json:"delivered"`
}

// hookRec is the stored webhook: the configuration, the delivery cursor
// and the lease of the node delivering, all under one key so that one
// compare-and-set moves the cursor and proves the lease.
type hookRec struct {
	Webhook
	Owner string    `json:"owner,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// Webhook secrets: generated ones are 32 random bytes in hex; given ones
// must be at least minSecretLen characters.
const (
	minSecretLen = 16
	maxSecretLen = 256
	maxURLLen    = 2048
)

// CheckWebhookURL reports whether u can receive webhooks: an absolute
// http or https URL with a host, no credentials and no fragment.
func CheckWebhookURL(u string) error {
	p, err := url.Parse(u)
	switch {
	case len(u) > maxURLLen:
		return fmt.Errorf("%w: url is longer than %d bytes", ErrInvalid, maxURLLen)
	case err != nil:
		return fmt.Errorf("%w: url %q: %v", ErrInvalid, u, err)
	case p.Scheme != "https" && p.Scheme != "http", p.Host == "":
		return fmt.Errorf("%w: url %q must be an absolute https:// (or http://) URL", ErrInvalid, u)
	case p.User != nil:
		return fmt.Errorf("%w: url must not carry credentials; the signature authenticates deliveries", ErrInvalid)
	case p.Fragment != "":
		return fmt.Errorf("%w: url must not have a #fragment", ErrInvalid)
	}
	return nil
}

// SetWebhook sets account's webhook, keeping its delivery cursor when it
// had one. An empty secret draws a random one. It returns the webhook as
// stored, secret included.
func (s *Stream) SetWebhook(ctx context.Context, account, u, secret string) (Webhook, error) {
	if err := checkAccount(account); err != nil {
		return Webhook{}, err
	}
	if err := CheckWebhookURL(u); err != nil {
		return Webhook{}, err
	}
	if secret == "" {
		var err error
		if secret, err = randomHex(s.cfg.Rand, 32, "a webhook secret"); err != nil {
			return Webhook{}, err
		}
	} else if len(secret) < minSecretLen || len(secret) > maxSecretLen || !printable(secret) {
		return Webhook{}, fmt.Errorf("%w: secret must be %d to %d printable characters (or empty, to have one drawn)", ErrInvalid, minSecretLen, maxSecretLen)
	}
	for {
		rec, ver, err := s.readHook(ctx, account)
		if errors.Is(err, ErrNoWebhook) {
			h, _, _, herr := s.readHead(ctx, account)
			if herr != nil {
				return Webhook{}, herr
			}
			rec, ver = hookRec{Webhook: Webhook{Delivered: h.Seq}}, persistence.MustNotExist
		} else if err != nil {
			return Webhook{}, err
		}
		rec.URL, rec.Secret = u, secret
		raw, err := json.Marshal(rec)
		if err != nil {
			return Webhook{}, err
		}
		_, err = s.store.Put(ctx, hookKey(account), raw, ver)
		if errors.Is(err, persistence.ErrConflict) {
			continue // a delivery moved the cursor: keep it
		}
		if err != nil {
			return Webhook{}, fmt.Errorf("events: setting the webhook of %s: %w", account, err)
		}
		return rec.Webhook, nil
	}
}

// GetWebhook returns account's webhook, or ErrNoWebhook.
func (s *Stream) GetWebhook(ctx context.Context, account string) (Webhook, error) {
	if err := checkAccount(account); err != nil {
		return Webhook{}, err
	}
	rec, _, err := s.readHook(ctx, account)
	return rec.Webhook, err
}

// DeleteWebhook removes account's webhook; deliveries stop after the one
// in flight. ErrNoWebhook if it had none.
func (s *Stream) DeleteWebhook(ctx context.Context, account string) error {
	if err := checkAccount(account); err != nil {
		return err
	}
	err := s.store.Delete(ctx, hookKey(account), persistence.AnyVersion)
	if errors.Is(err, persistence.ErrNotFound) {
		return ErrNoWebhook
	}
	return err
}

func (s *Stream) readHook(ctx context.Context, account string) (hookRec, uint64, error) {
	it, err := s.store.Get(ctx, hookKey(account))
	if errors.Is(err, persistence.ErrNotFound) {
		return hookRec{}, 0, ErrNoWebhook
	}
	if err != nil {
		return hookRec{}, 0, fmt.Errorf("events: reading the webhook of %s: %w", account, err)
	}
	var rec hookRec
	if err := json.Unmarshal(it.Value, &rec); err != nil {
		return hookRec{}, 0, fmt.Errorf("%w: webhook of %s: %v", ErrCorrupt, account, err)
	}
	return rec, it.Version, nil
}

// Sign returns the X-Switchboard-Signature value of body under secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, body))
}

func mac(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// Verify reports whether header, an X-Switchboard-Signature value, signs
// body under secret. It compares in constant time. Receivers call it on
// the raw body before parsing it, then drop an event whose id they have
// seen.
func Verify(secret string, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, body))
}

// lease is a claim, held in the store, to deliver one account's webhook.
type lease struct {
	account string
	rec     hookRec
	ver     uint64
}

// deliver sends account's events after its webhook's cursor, in order,
// while this node holds the account's delivery lease; another node
// holding a live lease delivers instead. It returns when caught up (the
// lease given back), when the lease is lost, or when ctx ends.
func (s *Stream) deliver(ctx context.Context, account string) {
	log := s.log.With("account", account)
	for ctx.Err() == nil {
		rec, ver, err := s.readHook(ctx, account)
		if err != nil {
			if !errors.Is(err, ErrNoWebhook) && ctx.Err() == nil {
				log.Warn("webhook delivery: reading the webhook", "err", err)
			}
			return
		}
		now := s.cfg.Clock.Now()
		if rec.Owner != "" && rec.Owner != s.self && now.Before(rec.Until) {
			return // another node delivers; it checks the head before it lets go
		}
		h, _, _, err := s.readHead(ctx, account)
		if err != nil {
			log.Warn("webhook delivery: reading the head", "err", err)
			return
		}
		l := &lease{account: account, rec: rec, ver: ver}
		if h.Seq <= rec.Delivered {
			if rec.Owner == s.self {
				s.release(ctx, l)
			}
			return
		}
		l.rec.Owner = s.self
		if !s.save(ctx, l) {
			// Another node claimed it first (it delivers, and checks the
			// head before it lets go), or the store failed (the next
			// append or sweep tries again).
			return
		}
		if !s.deliverLeased(ctx, l) {
			return
		}
		// Caught up and given back; look at the head again, since an
		// append that found our lease relied on us to deliver it.
	}
}

// deliverLeased delivers until caught up, then gives the lease back. It
// reports false when the lease was lost or ctx ended.
func (s *Stream) deliverLeased(ctx context.Context, l *lease) bool {
	sub := &Subscription{s: s, a: s.account(l.account), account: l.account, cursor: l.rec.Delivered, fresh: true}
	for {
		moved, err := sub.fill(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("webhook delivery: reading events", "account", l.account, "err", err)
			}
			return false
		}
		if !moved {
			return s.release(ctx, l)
		}
		if r := sub.reset; r != nil {
			sub.reset = nil
			s.met.deliveries.WithLabelValues("expired").Add(float64(r.Next - 1 - r.After))
			s.log.Warn("webhook delivery: events expired before delivery", "account", l.account, "from", r.After+1, "to", r.Next-1)
			l.rec.Delivered = r.Next - 1
		}
		for _, e := range sub.buf {
			if !s.send(ctx, l, e) {
				return false
			}
		}
		sub.buf = sub.buf[:0]
	}
}

// send delivers e, retrying with backoff while the receiver fails (network
// errors, timeouts, 408, 429, 5xx), and moves the cursor past it once it is
// accepted (2xx) or refused (other statuses: retrying would not help). It
// reports false when the lease was lost or ctx ended.
func (s *Stream) send(ctx context.Context, l *lease, e Event) bool {
	body, err := json.Marshal(e)
	if err != nil {
		return false
	}
	backoff := s.cfg.Webhook.FirstBackoff
	for attempt := 1; ; attempt++ {
		if !s.save(ctx, l) { // renews the lease for this attempt
			return false
		}
		result, detail := s.post(ctx, l.rec.Webhook, e, body)
		s.met.deliveries.WithLabelValues(result).Inc()
		switch result {
		case "ok", "refused":
			if result == "refused" {
				s.log.Warn("webhook delivery refused; skipping the event", "account", l.account, "seq", e.Seq, "id", e.ID, "detail", detail)
			}
			l.rec.Delivered = e.Seq
			return s.save(ctx, l)
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Warn("webhook delivery failed; retrying", "account", l.account, "seq", e.Seq, "attempt", attempt, "retry_in", backoff, "detail", detail)
		// Wait in steps short enough to keep the lease.
		for left := backoff; left > 0; {
			step := min(left, s.cfg.Webhook.LeaseTTL/3)
			select {
			case <-ctx.Done():
				return false
			case <-time.After(step):
			}
			left -= step
			if left > 0 && !s.save(ctx, l) {
				return false
			}
		}
		backoff = min(2*backoff, s.cfg.Webhook.MaxBackoff)
	}
}

// post makes one delivery attempt: "ok", "retry" or "refused", and what
// happened.
func (s *Stream) post(ctx context.Context, w Webhook, e Event, body []byte) (string, string) {
	start := time.Now()
	defer func() { s.met.deliverySecs.Observe(time.Since(start).Seconds()) }()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Webhook.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return "refused", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchboard-events")
	req.Header.Set(HeaderSignature, Sign(w.Secret, body))
	req.Header.Set(HeaderEventID, e.ID)
	req.Header.Set(HeaderEventSeq, strconv.FormatUint(e.Seq, 10))
	req.Header.Set(HeaderEventType, e.Type)
	resp, err := s.cfg.Webhook.Client.Do(req)
	if err != nil {
		return "retry", err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return "ok", ""
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		return "retry", resp.Status
	default:
		return "refused", resp.Status
	}
}

// save writes l's cursor and renews its lease by compare-and-set. When a
// SetWebhook changed the record meanwhile, it keeps the new URL and secret
// and tries again; it reports false when another node holds the lease,
// the webhook was deleted, or the store failed.
func (s *Stream) save(ctx context.Context, l *lease) bool {
	for ctx.Err() == nil {
		l.rec.Until = s.cfg.Clock.Now().Add(s.cfg.Webhook.LeaseTTL)
		raw, err := json.Marshal(l.rec)
		if err != nil {
			return false
		}
		ver, err := s.store.Put(ctx, hookKey(l.account), raw, l.ver)
		if err == nil {
			l.ver = ver
			return true
		}
		if !errors.Is(err, persistence.ErrConflict) {
			s.log.Warn("webhook delivery: saving the cursor", "account", l.account, "err", err)
			return false
		}
		cur, ver, err := s.readHook(ctx, l.account)
		if err != nil {
			return false
		}
		if cur.Owner != l.rec.Owner && s.cfg.Clock.Now().Before(cur.Until) || cur.Delivered > l.rec.Delivered {
			return false // another node took over
		}
		l.rec.URL, l.rec.Secret, l.ver = cur.URL, cur.Secret, ver
	}
	return false
}

// release gives the lease back, keeping the cursor, so that another node
// may deliver at once. It reports whether the record was written.
func (s *Stream) release(ctx context.Context, l *lease) bool {
	l.rec.Owner = ""
	return s.save(ctx, l)
}
