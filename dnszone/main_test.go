package dnszone

import (
	"testing"

	"github.com/switchboard-pbx/switchboard/internal/leaktest"
)

// TestMain fails the package if a Server's serve loops or query handlers,
// or a test's upstream server, outlive the tests.
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
