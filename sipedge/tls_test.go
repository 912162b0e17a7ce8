package sipedge_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/testcert"
	"github.com/switchboard-pbx/switchboard/sipauth"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

// TestTLS_RFC3261_26_2_OptionsOverTLS: with a certificate and key the edge
// serves SIP over TLS (--sips); an OPTIONS over a TLS connection is
// answered 200 on it.
func TestTLS_RFC3261_26_2_OptionsOverTLS(t *testing.T) {
	cert, key := testcert.SelfSigned(t, t.TempDir())
	te := startEdge(t, func(c *sipedge.Config) {
		c.TLSAddr, c.CertFile, c.KeyFile = "127.0.0.1:0", cert, key
	})
	if te.TLSAddr() == "" {
		t.Fatal("the edge has no TLS address")
	}
	conn, err := tls.Dial("tcp", te.TLSAddr(), &tls.Config{InsecureSkipVerify: true}) // a self-signed test certificate
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	id := unique("tls")
	msg := fmt.Sprintf("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"+
		"To: <sip:127.0.0.1>\r\nFrom: <sip:probe@client.invalid>;tag=%s\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		local, unique("b"), unique("t"), id)
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer over TLS: %v", err)
	}
	if !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("OPTIONS over TLS answered %q, want SIP/2.0 200", strings.TrimSpace(line))
	}
}

// TestTLS_MissingCertificateRefused: --sips without a key pair is a
// configuration error, not a silent plain listener.
func TestTLS_MissingCertificateRefused(t *testing.T) {
	auth, err := sipauth.New(sipauth.Config{Secret: []byte("sipedge tests: 32 bytes secret!!")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sipedge.New(sipedge.Config{Node: "n", Zone: testZone, Addr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0",
		Actors: &fakeActors{}, Members: fakeMembers{}, Resolver: fakeResolver{}, Auth: auth})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("sipedge.New with --sips and no certificate: %v, want an error naming the certificate", err)
	}
}
