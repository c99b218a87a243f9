package marketodds_test

import (
	"testing"

	"github.com/oddsledger/oddsledger/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
