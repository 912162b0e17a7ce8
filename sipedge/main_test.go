package sipedge_test

import (
	"testing"

	"github.com/switchboard-pbx/switchboard/internal/leaktest"
)

// TestMain fails the package if an Edge's listeners, transaction
// goroutines, probe loop or CANCEL followers outlive the tests.
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
