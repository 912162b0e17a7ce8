package sipedge_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/sipedge"
)

func TestAccountOf_OneValidLabelLeftOfTheZone(t *testing.T) {
	label63 := strings.Repeat("a", 63) // the longest DNS label (RFC 1035 section 2.3.4)
	for _, tc := range []struct {
		host, want string
	}{
		{"acme.sip.switchboard.test", "acme"},
		{"ACME.SIP.Switchboard.TEST", "acme"},  // DNS names are case-insensitive (RFC 4343)
		{"acme.sip.switchboard.test.", "acme"}, // fully qualified, trailing dot
		{"a.sip.switchboard.test", "a"},        // one character
		{"0-9.sip.switchboard.test", "0-9"},    // digits and a hyphen inside
		{label63 + ".sip.switchboard.test", label63},
		{label63 + "a.sip.switchboard.test", ""},      // too long for a label
		{"-acme.sip.switchboard.test", ""},            // leading hyphen
		{"acme-.sip.switchboard.test", ""},            // trailing hyphen (RFC 1035 section 2.3.1)
		{"xn--acme.sip.switchboard.test", ""},         // IDNA's reserved "--" (issue 9: one rule with the API)
		{"ac_me.sip.switchboard.test", ""},            // not in [a-z0-9-]
		{"ac%6De.sip.switchboard.test", ""},           // escapes are not decoded into ids
		{"bob.acme.sip.switchboard.test", ""},         // nested labels are not accounts
		{".sip.switchboard.test", ""},                 // empty account
		{"sip.switchboard.test", ""},                  // the zone itself
		{"acmesip.switchboard.test", ""},              // not a label boundary
		{"acme.sip.switchboard.test.example.com", ""}, // zone not at the end
		{"acme.sip.switchboard.test..", ""},           // two trailing dots
		{"acme.other.test", ""},                       // another zone
		{"192.0.2.1", ""},                             // an IP literal
		{"[2001:db8::1]", ""},                         // an IPv6 reference
		{"", ""},
	} {
		t.Run(tc.host, func(t *testing.T) {
			if got := sipedge.AccountOf(tc.host, testZone); got != tc.want {
				t.Fatalf("AccountOf(%q) = %q, want %q", tc.host, got, tc.want)
			}
		})
	}
}

func TestCallIdentity_SafeCallIDVerbatimElseHashed(t *testing.T) {
	long := strings.Repeat("x", 128)
	for _, tc := range []struct {
		name, callID string
		verbatim     bool
	}{
		{"RFC 3261 example", "a84b4c76e66710@pc33.atlanta.example.com", true},
		{"every safe punctuation", "a.b-c_d@e+f~g!h%i*j", true},
		{"128 characters", long, true},
		{"129 characters", long + "x", false},
		{"empty", "", false},
		{"space", "a b", false},
		{"slash, which separates actor identities", "acme/sales", false},
		{"colon", "a:b", false},
		{"quote", `a"b`, false},
		{"RFC 4475 intmeth Call-ID", "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{", false},
		{"NUL", "a\x00b", false},
		{"non-ASCII", "appel-été", false},
		{"newline", "a\r\nVia: x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sipedge.CallIdentity(tc.callID)
			if tc.verbatim {
				if got != tc.callID {
					t.Fatalf("CallIdentity(%q) = %q, want the Call-ID itself", tc.callID, got)
				}
				return
			}
			if !strings.HasPrefix(got, "h-") || len(got) != 2+32 || strings.Trim(got[2:], "0123456789abcdef") != "" {
				t.Fatalf("CallIdentity(%q) = %q, want h- and 32 hex digits", tc.callID, got)
			}
			if again := sipedge.CallIdentity(tc.callID); again != got {
				t.Fatalf("CallIdentity(%q) is not stable: %q then %q", tc.callID, got, again)
			}
		})
	}
	if a, b := sipedge.CallIdentity("a b"), sipedge.CallIdentity("a  b"); a == b {
		t.Fatalf("two unsafe Call-IDs share the identity %q", a)
	}
}

// invite is the INVITE of RFC 3261 section 4, addressed to account acme.
const invite = `INVITE sip:bob@acme.sip.switchboard.test SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@acme.sip.switchboard.test>
From: Alice <sip:alice@acme.sip.switchboard.test>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Content-Length: 0

`

// edit returns text with every line starting with prefix replaced by
// line, or removed when line is "".
func edit(text, prefix, line string) string {
	var out []string
	found := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			found = true
			if line != "" {
				out = append(out, line)
			}
			continue
		}
		out = append(out, l)
	}
	if !found {
		panic(fmt.Sprintf("edit: no line starts with %q", prefix))
	}
	return strings.Join(out, "\n")
}

func TestCheckRequest_RFC3261_16_3_EntryChecks(t *testing.T) {
	for _, tc := range []struct {
		name        string
		text        string
		wantCode    int // 0: accepted
		wantAccount string
	}{
		{"RFC 3261 section 4 INVITE", invite, 0, "acme"},
		{"request-URI of another domain: no account, decided later", edit(invite, "INVITE ", "INVITE sip:bob@biloxi.example.com SIP/2.0"), 0, ""},
		{"request-URI host in capitals", edit(invite, "INVITE ", "INVITE sip:bob@ACME.sip.switchboard.test SIP/2.0"), 0, "acme"},
		{"compact header forms (RFC 3261 7.3.3)", strings.NewReplacer("Via:", "v:", "To:", "t:", "From:", "f:", "Call-ID:", "i:").Replace(invite), 0, "acme"},

		// RFC 3261 section 8.1.1 / 16.3 step 1: To, From, CSeq, Call-ID,
		// Max-Forwards and Via are mandatory; without one of them the
		// request cannot even be answered properly (RFC 4475 3.3.1).
		{"RFC3261_8_1_1 no Via", edit(invite, "Via:", ""), 400, ""},
		{"RFC3261_8_1_1 no From", edit(invite, "From:", ""), 400, ""},
		{"RFC3261_8_1_1 no To", edit(invite, "To:", ""), 400, ""},
		{"RFC3261_8_1_1 no Call-ID", edit(invite, "Call-ID:", ""), 400, ""},
		{"RFC3261_8_1_1 no CSeq", edit(invite, "CSeq:", ""), 400, ""},
		{"no Max-Forwards: tolerated for RFC 2543 peers (RFC 4475 3.4.1)", edit(invite, "Max-Forwards:", ""), 0, "acme"},

		// RFC 3261 section 8.1.1.5: the CSeq method MUST match the
		// request's (RFC 4475 3.1.2.17 and 3.1.2.18).
		{"RFC4475_3_1_2_17 CSeq method mismatch", edit(invite, "CSeq:", "CSeq: 314159 OPTIONS"), 400, ""},
		{"RFC4475_3_1_2_18 unknown method with CSeq mismatch",
			edit(edit(invite, "INVITE ", "NEWMETHOD sip:bob@acme.sip.switchboard.test SIP/2.0"), "CSeq:", "CSeq: 1 INVITE"), 400, ""},

		// RFC 3261 section 16.3 step 3: Max-Forwards 0 is 483 Too Many Hops.
		{"RFC3261_16_3 Max-Forwards 0", edit(invite, "Max-Forwards:", "Max-Forwards: 0"), 483, ""},
		{"RFC4475_3_3_11 OPTIONS with Max-Forwards 0", edit(edit(edit(invite,
			"INVITE ", "OPTIONS sip:bob@acme.sip.switchboard.test SIP/2.0"),
			"CSeq:", "CSeq: 1 OPTIONS"),
			"Max-Forwards:", "Max-Forwards: 0"), 483, ""},
		{"RFC3261_16_3 Max-Forwards 1 goes on", edit(invite, "Max-Forwards:", "Max-Forwards: 1"), 0, "acme"},
		{"ACK with Max-Forwards 0 is not answered (RFC 3261 17.1.1.3)",
			edit(edit(edit(invite, "INVITE ", "ACK sip:bob@acme.sip.switchboard.test SIP/2.0"), "CSeq:", "CSeq: 314159 ACK"), "Max-Forwards:", "Max-Forwards: 0"), 0, "acme"},

		// RFC 3261 section 8.2.2.1: a scheme the server does not
		// understand is 416 (RFC 4475 3.3.2).
		{"sips request-URI (RFC 3261 19.1)", edit(invite, "INVITE ", "INVITE sips:bob@acme.sip.switchboard.test SIP/2.0"), 0, "acme"},
		{"RFC3261_8_2_2_1 tel request-URI (RFC 3966)", edit(invite, "INVITE ", "INVITE tel:+1-201-555-0123 SIP/2.0"), 416, ""},
		{"RFC4475_3_3_2 unknown scheme", edit(invite, "INVITE ", "INVITE nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0"), 416, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := parseRequest(t, tc.text)
			account, rej := sipedge.CheckRequest(req, testZone)
			switch {
			case tc.wantCode == 0 && rej != nil:
				t.Fatalf("CheckRequest rejected with %v, want it accepted", rej)
			case tc.wantCode != 0 && rej == nil:
				t.Fatalf("CheckRequest accepted (account %q), want %d", account, tc.wantCode)
			case tc.wantCode != 0 && rej.Code != tc.wantCode:
				t.Fatalf("CheckRequest = %v, want %d", rej, tc.wantCode)
			}
			if account != tc.wantAccount {
				t.Fatalf("account = %q, want %q", account, tc.wantAccount)
			}
		})
	}
}

// TestCheckRequest_RFC3261_7_1_ExtensionMethodNotMistakenForCSeqMismatch:
// method names are case-sensitive tokens (RFC 3261 section 7.1), and RFC
// 4475 section 3.1.1.2 is a valid request whose method has lower-case
// letters. sipgo upper-cases the request line's method but not the CSeq's,
// so an exact comparison calls a matching pair a mismatch and answers 400.
func TestCheckRequest_RFC3261_7_1_ExtensionMethodNotMistakenForCSeqMismatch(t *testing.T) {
	req := parseRequest(t, edit(edit(invite, "INVITE ", "fooBar sip:bob@acme.sip.switchboard.test SIP/2.0"), "CSeq:", "CSeq: 1 fooBar"))
	if _, rej := sipedge.CheckRequest(req, testZone); rej != nil {
		t.Fatalf("CheckRequest(fooBar with CSeq fooBar) = %v, want accepted", rej)
	}
}

// register is the REGISTER of RFC 3261 section 10.2 from device alice of
// account acme, with extra header lines inserted before Content-Length.
func register(extra ...string) string {
	lines := []string{
		"REGISTER sip:acme.sip.switchboard.test SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds7",
		"Max-Forwards: 70",
		"To: Alice <sip:alice@acme.sip.switchboard.test>",
		"From: Alice <sip:alice@acme.sip.switchboard.test>;tag=456248",
		"Call-ID: 843817637684230@998sdasdh09",
		"CSeq: 1826 REGISTER",
	}
	lines = append(lines, extra...)
	lines = append(lines, "Content-Length: 0", "", "")
	return strings.Join(lines, "\n")
}

// registerAs runs RegisterRequest for device alice from 192.0.2.4:5060,
// under StrictMinExpires (the RFC 3261 rules as written).
func registerAs(t *testing.T, text string) (*sipRegister, *sipedge.Reject) {
	t.Helper()
	return registerUnder(t, text, sipedge.StrictMinExpires)
}

// registerUnder runs RegisterRequest for device alice from 192.0.2.4:5060
// under rule.
func registerUnder(t *testing.T, text string, rule sipedge.ExpiryRule) (*sipRegister, *sipedge.Reject) {
	t.Helper()
	m, rej := sipedge.RegisterRequest(parseRequest(t, text), "alice", "192.0.2.4:5060", "node-1", rule)
	if m == nil {
		return nil, rej
	}
	r := &sipRegister{removeAll: m.RemoveAll}
	for _, c := range m.Contacts {
		r.contacts = append(r.contacts, contact{c.Uri, c.Expires, c.QMilli})
	}
	return r, rej
}

type contact struct {
	uri     string
	expires uint32
	qMilli  uint32
}

type sipRegister struct {
	contacts  []contact
	removeAll bool
}

func TestRegisterRequest_MessageDescribesTheRequest(t *testing.T) {
	text := register("User-Agent: "+strings.Repeat("u", 200), "Contact: <sip:alice@192.0.2.4:5060;transport=udp>")
	m, rej := sipedge.RegisterRequest(parseRequest(t, text), "alice", "192.0.2.4:5060", "node-1", sipedge.RaiseToMinExpires)
	if rej != nil {
		t.Fatalf("RegisterRequest rejected with %v", rej)
	}
	if m.Device != "alice" || m.CallId != "843817637684230@998sdasdh09" || m.Cseq != 1826 ||
		m.Source != "udp:192.0.2.4:5060" || m.EdgeNode != "node-1" || m.RemoveAll {
		t.Fatalf("Register = %v, want alice's REGISTER from udp:192.0.2.4:5060 via node-1", m)
	}
	if m.UserAgent != strings.Repeat("u", 128) {
		t.Fatalf("UserAgent of %d bytes, want it cut at 128", len(m.UserAgent))
	}
	if len(m.Contacts) != 1 || m.Contacts[0].Uri != "sip:alice@192.0.2.4:5060;transport=udp" {
		t.Fatalf("Contacts = %v, want the one Contact URI as sent", m.Contacts)
	}
	// The transport comes from the request (the Via here).
	m, _ = sipedge.RegisterRequest(parseRequest(t, edit(text, "Via:", "Via: SIP/2.0/TCP 192.0.2.4:5060;branch=z9hG4bKnashds7")), "alice", "192.0.2.4:5060", "node-1", sipedge.RaiseToMinExpires)
	if m.Source != "tcp:192.0.2.4:5060" {
		t.Fatalf("Source over TCP = %q, want tcp:192.0.2.4:5060", m.Source)
	}
}

func TestRegisterRequest_RFC3261_10_3_RegistrarRules(t *testing.T) {
	const c1 = "sip:alice@192.0.2.4"
	elevenContacts := "Contact: <sip:a0@192.0.2.4>"
	for i := 1; i < 11; i++ {
		elevenContacts += fmt.Sprintf(", <sip:a%d@192.0.2.4>", i)
	}
	tenContacts := elevenContacts[:strings.LastIndex(elevenContacts, ",")]
	var ten []contact
	for i := range 10 {
		ten = append(ten, contact{fmt.Sprintf("sip:a%d@192.0.2.4", i), 3600, 1000})
	}
	for _, tc := range []struct {
		name     string
		text     string
		wantCode int
		want     []contact // when accepted
		wantAll  bool
	}{
		// RFC 3261 section 10.3 step 4: a device registers only itself.
		{"RFC3261_10_3_4 To of another user is 403",
			edit(register("Contact: <"+c1+">"), "To:", "To: <sip:bob@acme.sip.switchboard.test>"), 403, nil, false},
		{"RFC3261_10_3_4 To user compared exactly",
			edit(register("Contact: <"+c1+">"), "To:", "To: <sip:Alice@acme.sip.switchboard.test>"), 403, nil, false},

		// RFC 3261 section 10.2.3: no Contact is a query.
		{"RFC3261_10_2_3 no Contact is a query", register(), 0, nil, false},

		// RFC 3261 sections 10.2.1.1 and 10.3 step 7: the expires
		// parameter, else the Expires header, else the registrar's default.
		{"no expiry asked: default 3600", register("Contact: <" + c1 + ">"), 0, []contact{{c1, 3600, 1000}}, false},
		{"RFC3261_10_2_1_1 Expires header", register("Expires: 600", "Contact: <"+c1+">"), 0, []contact{{c1, 600, 1000}}, false},
		{"RFC3261_10_2_1_1 expires param beats Expires header",
			register("Expires: 600", "Contact: <"+c1+">;expires=120", "Contact: <sip:alice@198.51.100.7>"), 0,
			[]contact{{c1, 120, 1000}, {"sip:alice@198.51.100.7", 600, 1000}}, false},
		{"RFC3261_10_2_2 expires 0 removes one binding", register("Contact: <" + c1 + ">;expires=0"), 0, []contact{{c1, 0, 1000}}, false},
		{"RFC3261_10_2_2 Expires 0 removes every listed binding", register("Expires: 0", "Contact: <"+c1+">"), 0, []contact{{c1, 0, 1000}}, false},
		{"expires exactly MinExpires", register("Contact: <" + c1 + ">;expires=60"), 0, []contact{{c1, 60, 1000}}, false},
		{"RFC3261_10_3_7 longer than MaxExpires is shortened to 3600", register("Expires: 7200", "Contact: <"+c1+">"), 0, []contact{{c1, 3600, 1000}}, false},
		{"RFC3261_10_3_7 largest expires param is shortened", register("Contact: <" + c1 + ">;expires=4294967295"), 0, []contact{{c1, 3600, 1000}}, false},
		{"RFC3261_10_3_7 strict: Expires below Min-Expires is 423", register("Expires: 59", "Contact: <"+c1+">"), 423, nil, false},
		{"RFC3261_10_3_7 strict: expires param below Min-Expires is 423", register("Contact: <" + c1 + ">;expires=1"), 423, nil, false},
		{"RFC3261_10_3_7 strict: 423 when only one of the contacts is brief",
			register("Contact: <"+c1+">", "Contact: <sip:alice@198.51.100.7>;expires=30"), 423, nil, false},
		{"Expires not a number is 400", register("Expires: soon", "Contact: <"+c1+">"), 400, nil, false},
		{"RFC4475_3_1_2_4 Expires over 2**32-1 is 400", register("Expires: 10000000000000000", "Contact: <"+c1+">"), 400, nil, false},
		{"expires param not a number is 400", register("Contact: <" + c1 + ">;expires=-1"), 400, nil, false},

		// RFC 3261 section 10.3 step 6: "*" only alone and with Expires: 0.
		{"RFC3261_10_3_6 Contact * with Expires 0 removes all", register("Expires: 0", "Contact: *"), 0, nil, true},
		{"RFC3261_10_3_6 Contact * with Expires 3600 is 400", register("Expires: 3600", "Contact: *"), 400, nil, false},
		{"RFC3261_10_3_6 Contact * without Expires is 400", register("Contact: *"), 400, nil, false},
		{"RFC3261_10_3_6 Contact * beside another contact is 400", register("Expires: 0", "Contact: <"+c1+">", "Contact: *"), 400, nil, false},
		{"RFC3261_10_3_6 Contact * first beside another contact is 400", register("Expires: 0", "Contact: *", "Contact: <"+c1+">"), 400, nil, false},

		// RFC 3261 section 10.2.1.2 and the qvalue grammar of section 25.1.
		{"RFC3261_10_2_1_2 q=0.5", register("Contact: <" + c1 + ">;q=0.5"), 0, []contact{{c1, 3600, 500}}, false},
		{"RFC3261_10_2_1_2 q=1", register("Contact: <" + c1 + ">;q=1"), 0, []contact{{c1, 3600, 1000}}, false},
		{"RFC3261_10_2_1_2 q=0", register("Contact: <" + c1 + ">;q=0"), 0, []contact{{c1, 3600, 0}}, false},
		{"RFC3261_10_2_1_2 q=0.333 keeps three digits", register("Contact: <" + c1 + ">;q=0.333"), 0, []contact{{c1, 3600, 333}}, false},
		{"RFC3261_10_2_1_2 q=0.001", register("Contact: <" + c1 + ">;q=0.001"), 0, []contact{{c1, 3600, 1}}, false},
		{"RFC3261_25_1 q above 1 is 400", register("Contact: <" + c1 + ">;q=1.5"), 400, nil, false},
		{"RFC3261_25_1 negative q is 400", register("Contact: <" + c1 + ">;q=-0.1"), 400, nil, false},
		{"RFC3261_25_1 q not a number is 400", register("Contact: <" + c1 + ">;q=high"), 400, nil, false},

		// Contact URIs the registrar can reach.
		{"sips Contact", register("Contact: <sips:alice@192.0.2.4>"), 0, []contact{{"sips:alice@192.0.2.4", 3600, 1000}}, false},
		{"Contact params stay out of the URI (RFC 4475 3.3.12)",
			register("Contact: <sip:alice@192.0.2.4>;unknownparam;expires=120"), 0, []contact{{c1, 120, 1000}}, false},
		{"URI params stay in the URI (RFC 4475 3.3.13)",
			register("Contact: <sip:alice@192.0.2.4;unknownparam>"), 0, []contact{{c1 + ";unknownparam", 3600, 1000}}, false},
		{"tel Contact is 416", register("Contact: <tel:+1-201-555-0123>"), 416, nil, false},
		{"RFC4475_3_3_4 unknown scheme Contact is 416", register("Contact: <name:John_Smith>"), 416, nil, false},

		// At most ten contacts in one REGISTER, comma-separated or not.
		{"ten contacts", register(tenContacts), 0, ten, false},
		{"eleven comma-separated contacts is 403", register(elevenContacts), 403, nil, false},
		{"eleven Contact headers is 403", register(strings.Split(strings.ReplaceAll(elevenContacts, ", <", "\nContact: <"), "\n")...), 403, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rej := registerAs(t, tc.text)
			if tc.wantCode != 0 {
				if rej == nil || rej.Code != tc.wantCode {
					t.Fatalf("RegisterRequest = %v, %v; want %d", got, rej, tc.wantCode)
				}
				if got != nil {
					t.Fatalf("RegisterRequest rejected with %v but also returned %v", rej, got)
				}
				return
			}
			if rej != nil {
				t.Fatalf("RegisterRequest rejected with %v, want it accepted", rej)
			}
			if got.removeAll != tc.wantAll {
				t.Fatalf("RemoveAll = %v, want %v", got.removeAll, tc.wantAll)
			}
			if fmt.Sprint(got.contacts) != fmt.Sprint(tc.want) {
				t.Fatalf("contacts = %v, want %v", got.contacts, tc.want)
			}
		})
	}
}

// TestRegisterRequest_RFC3261_10_3_7_ShortExpiryRaisedByDefault: by
// default an expiry under MinExpires is raised to it, as Kamailio's and
// OpenSIPS's registrars do (section 10.3 step 7 lets the registrar
// shorten; raising is what keeps phones that give up on 423 registered),
// while 0 still removes and the other contacts keep theirs.
func TestRegisterRequest_RFC3261_10_3_7_ShortExpiryRaisedByDefault(t *testing.T) {
	const c1 = "sip:alice@192.0.2.4"
	for _, tc := range []struct {
		name string
		text string
		want []contact
	}{
		{"Expires 15 (sipsak -x 15)", register("Expires: 15", "Contact: <"+c1+">"), []contact{{c1, 60, 1000}}},
		{"expires param 1", register("Contact: <" + c1 + ">;expires=1"), []contact{{c1, 60, 1000}}},
		{"Expires 59", register("Expires: 59", "Contact: <"+c1+">"), []contact{{c1, 60, 1000}}},
		{"only the brief contact is raised",
			register("Contact: <"+c1+">", "Contact: <sip:alice@198.51.100.7>;expires=30"),
			[]contact{{c1, 3600, 1000}, {"sip:alice@198.51.100.7", 60, 1000}}},
		{"0 still removes", register("Expires: 0", "Contact: <"+c1+">"), []contact{{c1, 0, 1000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rej := registerUnder(t, tc.text, sipedge.RaiseToMinExpires)
			if rej != nil {
				t.Fatalf("RegisterRequest rejected with %v, want the expiry raised", rej)
			}
			if fmt.Sprint(got.contacts) != fmt.Sprint(tc.want) {
				t.Fatalf("contacts = %v, want %v", got.contacts, tc.want)
			}
		})
	}
}

// TestRegisterRequest_RFC3261_10_3_7_IntervalTooBriefNamesMinExpires: a
// 423 carries the registrar's minimum in Min-Expires (RFC 3261 sections
// 10.3 step 7 and 20.23) so the device can retry with it.
func TestRegisterRequest_RFC3261_10_3_7_IntervalTooBriefNamesMinExpires(t *testing.T) {
	_, rej := registerAs(t, register("Contact: <sip:alice@192.0.2.4>;expires=30"))
	if rej == nil || rej.Code != 423 || rej.Reason != "Interval Too Brief" {
		t.Fatalf("RegisterRequest = %v, want 423 Interval Too Brief", rej)
	}
	want := [][2]string{{"Min-Expires", "60"}}
	if fmt.Sprint(rej.Headers) != fmt.Sprint(want) {
		t.Fatalf("423 headers = %v, want %v", rej.Headers, want)
	}
	if sipedge.MinExpires != 60 || sipedge.MaxExpires != 3600 || sipedge.DefaultExpires != 3600 {
		t.Fatalf("MinExpires %d, MaxExpires %d, DefaultExpires %d; the tests above assume 60, 3600, 3600",
			sipedge.MinExpires, sipedge.MaxExpires, sipedge.DefaultExpires)
	}
}

// TestRegisterRequest_RFC3261_25_1_QValueNaNIs400: the qvalue grammar is
// ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")]); "NaN" is not one, yet
// strconv.ParseFloat accepts it and NaN fails both range comparisons.
func TestRegisterRequest_RFC3261_25_1_QValueNaNIs400(t *testing.T) {
	for _, q := range []string{"NaN", "nan", "+NaN"} {
		if got, rej := registerAs(t, register("Contact: <sip:alice@192.0.2.4>;q="+q)); rej == nil || rej.Code != 400 {
			t.Errorf("q=%s: RegisterRequest = %v, %v; want 400", q, got, rej)
		}
	}
}

// TestRegisterRequest_ContactURIsReparse: what goes to the devicegroup
// actor is a URI the proxy can parse again when it routes to the binding.
func TestRegisterRequest_ContactURIsReparse(t *testing.T) {
	for _, c := range []string{
		"<sip:alice@192.0.2.4:5070;transport=tcp;ob>",
		"<sips:alice@[2001:db8::4]:5061>",
		"<sip:%61lice@192.0.2.4>",
		"\"Alice, the phone\" <sip:alice@phone.example.com;lr>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"",
		"<sip:alice@192.0.2.4?Route=%3Csip:sip.example.com%3E>", // RFC 4475 3.3.14
	} {
		t.Run(c, func(t *testing.T) {
			got, rej := registerAs(t, register("Contact: "+c))
			if rej != nil {
				t.Fatalf("RegisterRequest rejected with %v", rej)
			}
			var u sip.Uri
			if err := sip.ParseUri(got.contacts[0].uri, &u); err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.Host == "" {
				t.Fatalf("Contact URI %q does not parse back to a sip/sips URI with a host: %v", got.contacts[0].uri, err)
			}
		})
	}
}
