package sipedge_test

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/sipedge"
)

// FuzzTranslate feeds arbitrary datagrams through what the edge does with
// a request before any actor sees it: sipgo's parser, then CheckRequest,
// AccountOf, CallIdentity and, for a request CheckRequest lets through,
// RegisterRequest. None of them may panic, and:
//
//   - a Reject is a 4xx;
//   - an account is a valid id whose DNS name is the request-URI host;
//   - a call identity is at most 128 characters of safe characters;
//   - a REGISTER accepted, under either ExpiryRule, carries at most ten
//     contacts, each with expires 0 or within [MinExpires, MaxExpires], q at most 1, and a sip or sips
//     URI with a host that parses again; "*" removes all and lists none.
//
// The seed corpus is testdata/fuzz/FuzzTranslate.
func FuzzTranslate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return // the edge's read filter drops it (or answers 400)
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		checkCallIdentity(t, callIDOf(req))
		if a := sipedge.AccountOf(req.Recipient.Host, testZone); a != "" {
			checkAccount(t, a, req.Recipient.Host)
		}
		account, rej := sipedge.CheckRequest(req, testZone)
		if rej != nil {
			if rej.Code < 400 || rej.Code > 499 {
				t.Fatalf("CheckRequest rejected with %v, not a 4xx", rej)
			}
			return // the edge answers and stops here
		}
		if account != "" {
			checkAccount(t, account, req.Recipient.Host)
		}
		// The edge passes the digest username, which the tenancy checks
		// tie to the From user; try the To user (the registering device)
		// and a fixed one, under both expiry rules.
		for i, device := range []string{req.To().Address.User, "alice", req.To().Address.User, "alice"} {
			m, rej := sipedge.RegisterRequest(req, device, "192.0.2.4:5060", "node-1", sipedge.ExpiryRule(i/2))
			if rej != nil {
				if rej.Code < 400 || rej.Code > 499 || m != nil {
					t.Fatalf("RegisterRequest = %v, %v; want a 4xx alone", m, rej)
				}
				continue
			}
			if m == nil {
				t.Fatal("RegisterRequest returned neither a message nor a rejection")
			}
			if m.Device != device || m.Cseq != req.CSeq().SeqNo || m.CallId != req.CallID().Value() {
				t.Fatalf("Register %v does not describe the request", m)
			}
			if m.RemoveAll && len(m.Contacts) != 0 {
				t.Fatalf("Register removes all and lists contacts: %v", m)
			}
			if len(m.Contacts) > 10 {
				t.Fatalf("Register carries %d contacts, more than 10", len(m.Contacts))
			}
			for _, c := range m.Contacts {
				if c.Expires != 0 && (c.Expires < sipedge.MinExpires || c.Expires > sipedge.MaxExpires) {
					t.Fatalf("contact %q expires %d, want 0 or within [%d, %d]", c.Uri, c.Expires, sipedge.MinExpires, sipedge.MaxExpires)
				}
				if c.QMilli > 1000 {
					t.Fatalf("contact %q q %d/1000, more than 1", c.Uri, c.QMilli)
				}
				var u sip.Uri
				if err := sip.ParseUri(c.Uri, &u); err != nil {
					t.Fatalf("contact URI %q does not parse: %v", c.Uri, err)
				}
				if (u.Scheme != "sip" && u.Scheme != "sips") || u.Host == "" || u.Wildcard {
					t.Fatalf("contact URI %q is not a sip or sips URI with a host", c.Uri)
				}
			}
		}
	})
}

func callIDOf(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func checkCallIdentity(t *testing.T, callID string) {
	t.Helper()
	id := sipedge.CallIdentity(callID)
	if id == "" || len(id) > 128 {
		t.Fatalf("CallIdentity(%q) = %q: %d characters, want 1 to 128", callID, id, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_@+~!%*", c) >= 0) {
			t.Fatalf("CallIdentity(%q) = %q has the unsafe byte %q", callID, id, c)
		}
	}
}

func checkAccount(t *testing.T, account, host string) {
	t.Helper()
	if len(account) > 63 || strings.Trim(account, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || account[0] == '-' ||
		account[len(account)-1] == '-' || strings.Contains(account, ".") {
		t.Fatalf("account %q of host %q is not a valid id", account, host)
	}
	if h := strings.TrimSuffix(strings.ToLower(host), "."); h != account+"."+testZone {
		t.Fatalf("account %q is not the account of host %q", account, host)
	}
}
