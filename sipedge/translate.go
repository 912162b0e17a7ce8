package sipedge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// This file translates SIP requests into the messages of the actors that
// own them. It is pure: a parsed request in, a message or a SIP rejection
// out; FuzzTranslate covers it.

// Reject is a SIP final response the edge sends instead of going on.
type Reject struct {
	Code   int
	Reason string
	// Headers are added to the response (Retry-After, Min-Expires,
	// Warning, ...).
	Headers [][2]string
}

func (r *Reject) Error() string { return fmt.Sprintf("%d %s", r.Code, r.Reason) }

func reject(code int, reason string, headers ...[2]string) *Reject {
	return &Reject{Code: code, Reason: reason, Headers: headers}
}

// Registration limits (RFC 3261 section 10.3, steps 6 and 7).
const (
	// MinExpires is the shortest registration: a shorter one is raised
	// to it, or, under StrictMinExpires, answered 423 Interval Too Brief
	// with this in Min-Expires.
	MinExpires = 60
	// MaxExpires caps what a device asks for.
	MaxExpires = 3600
	// DefaultExpires applies when the request names none.
	DefaultExpires = 3600
	// maxContacts bounds one REGISTER's Contact list.
	maxContacts = 10
)

// ExpiryRule is what the registrar does with a contact asking for less
// than MinExpires (and more than 0).
type ExpiryRule int

const (
	// RaiseToMinExpires registers it for MinExpires and answers 200 with
	// that in the contact's expires, as Kamailio and OpenSIPS do: phones
	// that ask for a short interval (sipsak, 15 s) and give up on 423
	// still register, and refresh as often as the 200 tells them.
	RaiseToMinExpires ExpiryRule = iota
	// StrictMinExpires answers 423 Interval Too Brief with Min-Expires
	// (RFC 3261 section 10.3 step 7); the account's strict_min_expires.
	StrictMinExpires
)

// AccountOf returns the account whose DNS name host is (<a>.<zone>), or ""
// when host is not one.
func AccountOf(host, zone string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	a, ok := strings.CutSuffix(host, "."+zone)
	if !ok || !actors.ValidAccountID(a) {
		return ""
	}
	return a
}

// CallIdentity is the call actor's identity for a Call-ID: the Call-ID
// itself when it is short and made of safe characters, else a hash.
func CallIdentity(callID string) string {
	if actors.ValidCallID(callID) {
		return callID
	}
	sum := sha256.Sum256([]byte(callID))
	return "h-" + hex.EncodeToString(sum[:16])
}

// CheckRequest applies the checks every request gets before the edge looks
// at what it asks (RFC 3261 section 16.3): mandatory headers and
// Max-Forwards. It returns the account the request is for ("" when the
// request-URI is not an account DNS name).
func CheckRequest(req *sip.Request, zone string) (account string, rej *Reject) {
	if req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || req.Via() == nil {
		return "", reject(400, "Missing Mandatory Header")
	}
	if req.SipVersion != "SIP/2.0" {
		return "", reject(505, "Version Not Supported")
	}
	if !strings.EqualFold(string(req.CSeq().MethodName), string(req.Method)) {
		return "", reject(400, "CSeq Method Does Not Match")
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && !req.IsAck() {
		return "", reject(483, "Too Many Hops")
	}
	if req.Recipient.Scheme != "sip" && req.Recipient.Scheme != "sips" {
		return "", reject(416, "Unsupported URI Scheme")
	}
	return AccountOf(req.Recipient.Host, zone), nil
}

// RegisterRequest translates a REGISTER from device (authenticated for
// the account) into the devicegroup actor's Register message, or rejects
// it (RFC 3261 section 10.3). rule says what an expiry under MinExpires
// gets.
func RegisterRequest(req *sip.Request, device, source, node string, rule ExpiryRule) (*actorpb.Register, *Reject) {
	to := req.To()
	if to == nil || to.Address.User != device {
		return nil, reject(403, "To Does Not Match The Authenticated Device")
	}
	defExpires := uint32(DefaultExpires)
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return nil, reject(400, "Bad Expires")
		}
		defExpires = uint32(v)
	}
	m := &actorpb.Register{
		Device: device, CallId: req.CallID().Value(), Cseq: req.CSeq().SeqNo,
		Source: strings.ToLower(req.Transport()) + ":" + source, EdgeNode: node,
	}
	if ua := req.GetHeader("User-Agent"); ua != nil {
		m.UserAgent = truncate(ua.Value(), 128)
	}
	contacts := req.GetHeaders("Contact")
	if len(contacts) > maxContacts {
		return nil, reject(403, "Too Many Contacts")
	}
	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, reject(400, "Bad Contact")
		}
		if c.Address.Wildcard {
			// Contact: * only with Expires: 0 and alone (section 10.3 step 6).
			if len(contacts) != 1 || defExpires != 0 || c.Params.Has("expires") {
				return nil, reject(400, "Wildcard Contact Needs Expires 0 Alone")
			}
			m.RemoveAll = true
			return m, nil
		}
		if c.Address.Scheme != "sip" && c.Address.Scheme != "sips" || c.Address.Host == "" {
			return nil, reject(416, "Unsupported Contact URI Scheme")
		}
		expires := defExpires
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, reject(400, "Bad Contact Expires")
			}
			expires = uint32(n)
		}
		if expires != 0 && expires < MinExpires {
			if rule == StrictMinExpires {
				return nil, reject(423, "Interval Too Brief", [2]string{"Min-Expires", strconv.Itoa(MinExpires)})
			}
			expires = MinExpires
		}
		expires = min(expires, MaxExpires)
		q := uint32(1000)
		if v, ok := c.Params.Get("q"); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return nil, reject(400, "Bad Contact q")
			}
			q = uint32(f*1000 + 0.5)
		}
		m.Contacts = append(m.Contacts, &actorpb.ContactUpdate{Uri: c.Address.String(), Expires: expires, QMilli: q})
	}
	return m, nil
}

func truncate(s string, n int) string {
	return s[:min(len(s), n)]
}
