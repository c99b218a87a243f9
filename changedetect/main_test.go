package changedetect_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/oddsledger/oddsledger/internal/pgtest"
)

// TestMain stops the throwaway PostgreSQL server of the Warm tests, then
// checks that no goroutine outlived the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Shutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
