package writequeue

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	ignoreFuncs := cmpopts.IgnoreFields(Config{}, "Retryable", "OnDrop", "Logger")
	defaults := Config{
		Buffer:      1024,
		Workers:     4,
		MaxAttempts: 5,
		BaseBackoff: 100 * time.Millisecond,
		MaxBackoff:  10 * time.Second,
	}

	for _, cfg := range []*Config{nil, {}} {
		got := cfg.WithDefaults()
		if diff := cmp.Diff(&defaults, got, ignoreFuncs); diff != "" {
			t.Errorf("WithDefaults of %v (-want +got):\n%s", cfg, diff)
		}
		if got.Logger != slog.Default() || got.Retryable == nil || got.OnDrop != nil {
			t.Errorf("WithDefaults of %v: Logger %v, Retryable %v, OnDrop %v; want slog.Default(), set, nil", cfg, got.Logger, got.Retryable != nil, got.OnDrop != nil)
		}
		if !got.Retryable(errors.New("any error")) {
			t.Error("default Retryable rejects a plain error")
		}
	}

	logger := slog.New(slog.DiscardHandler)
	set := &Config{
		Buffer:      1,
		Workers:     2,
		MaxAttempts: 3,
		BaseBackoff: time.Second,
		MaxBackoff:  time.Minute,
		Retryable:   func(error) bool { return false },
		OnDrop:      func(any, error) {},
		Logger:      logger,
	}
	got := set.WithDefaults()
	if diff := cmp.Diff(set, got, ignoreFuncs); diff != "" {
		t.Errorf("WithDefaults changed set fields (-want +got):\n%s", diff)
	}
	if got == set || got.Logger != logger || got.Retryable(errors.New("x")) || got.OnDrop == nil {
		t.Error("WithDefaults did not keep the set Logger, Retryable and OnDrop in a copy")
	}

	// A BaseBackoff above the default MaxBackoff raises the default.
	if got := (&Config{BaseBackoff: time.Minute}).WithDefaults().MaxBackoff; got != time.Minute {
		t.Errorf("MaxBackoff defaulted to %v with a BaseBackoff of 1m, want 1m", got)
	}
}

func TestNewPanicsOnInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Buffer: -1}, "Buffer"},
		{Config{Workers: -1}, "Workers"},
		{Config{MaxAttempts: -1}, "MaxAttempts"},
		{Config{BaseBackoff: -time.Second}, "BaseBackoff"},
		{Config{BaseBackoff: 2 * time.Second, MaxBackoff: time.Second}, "MaxBackoff (1s) must not be less than BaseBackoff (2s)"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			defer func() {
				err, _ := recover().(error)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("New(%+v) panicked with %v, want an error about %s", tt.cfg, err, tt.want)
				}
			}()
			New(&tt.cfg)
		})
	}
}
