package sipp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ErrNotInstalled is returned by Lookup when no sipp binary is on PATH.
var ErrNotInstalled = errors.New("sipp: the sipp binary is not on PATH; install the Debian package sip-tester (apt-get install sip-tester)")

// binaryName is the command the Debian package sip-tester installs.
const binaryName = "sipp"

// Lookup returns the path of the sipp binary, or ErrNotInstalled.
func Lookup() (string, error) {
	path, err := exec.LookPath(binaryName)
	if err != nil {
		return "", ErrNotInstalled
	}
	return path, nil
}

// Require returns the path of the sipp binary. Without one the test is
// skipped with how to install it, except under CI=true, where a skipped
// SIP test would hide that the SIP edge went untested, so it fails.
func Require(tb testing.TB) string {
	tb.Helper()
	return require(tb, Lookup, os.Getenv("CI") == "true")
}

func require(tb testing.TB, lookup func() (string, error), ci bool) string {
	tb.Helper()
	path, err := lookup()
	if err == nil {
		return path
	}
	if ci {
		tb.Fatal(err)
	} else {
		tb.Skip(err)
	}
	return ""
}

var versionRE = regexp.MustCompile(`SIPp v[0-9][^\s]*`)

// Version returns what `sipp -v` says of itself, e.g.
// "SIPp v3.6.1-SCTP-PCAP-RTPSTREAM".
func Version(ctx context.Context) (string, error) {
	bin, err := Lookup()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// sipp -v exits 0 on some builds and 1 on others; its output decides.
	out, _ := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	v := versionRE.Find(out)
	if v == nil {
		return "", fmt.Errorf("sipp: %s -v printed no version: %q", bin, out)
	}
	return strings.TrimRight(string(v), "."), nil
}
