package writequeue

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Config's fields.
const (
	defaultBuffer      = 1024
	defaultWorkers     = 4
	defaultMaxAttempts = 5
	defaultBaseBackoff = 100 * time.Millisecond
	defaultMaxBackoff  = 10 * time.Second
)

// Config is the configuration of a Queue. The zero value, and a nil *Config,
// are valid and mean "all defaults".
type Config struct {
	// Buffer is how many batches the queue holds before Enqueue blocks (and
	// TryEnqueue fails with ErrFull). Batches being handled by a worker, or
	// waiting to be retried, do not count against it.
	//
	// Defaults to 1024.
	Buffer int

	// Workers is the number of goroutines that run handlers, and so the
	// largest number of batches handled at once. Batches of all types share
	// them.
	//
	// Defaults to 4.
	Workers int

	// MaxAttempts is the number of times a batch is given to its handler
	// before it is dropped, counting the first attempt. 1 disables retries.
	//
	// Defaults to 5.
	MaxAttempts int

	// BaseBackoff is the upper bound of the wait before the first retry. The
	// bound doubles with every further retry up to MaxBackoff, and the actual
	// wait is drawn uniformly from [0, bound] ("full jitter"), so that workers
	// that failed together do not retry together.
	//
	// Defaults to 100ms.
	BaseBackoff time.Duration

	// MaxBackoff caps the wait between two attempts.
	//
	// Defaults to 10s, or to BaseBackoff if that is larger.
	MaxBackoff time.Duration

	// Retryable reports whether a failed attempt may be retried. It is not
	// called for errors marked with Permanent (including recovered panics):
	// those are never retried. A host whose handler writes to PostgreSQL
	// typically plugs in the store's classifier, e.g. marketodds.IsTransient.
	//
	// Defaults to retrying every error that is not marked with Permanent.
	Retryable func(err error) bool

	// OnDrop is the dead-letter hook: it is called, exactly once, with every
	// batch the queue gives up on and a *DropError that says why. It runs on
	// a worker goroutine (or on the goroutine calling Close, for batches still
	// buffered when a queue that never started is closed), so it should be
	// quick; it may be called concurrently from several workers. A panic in
	// OnDrop is recovered and logged.
	//
	// Defaults to nil: the drop is only logged.
	OnDrop func(batch any, err error)

	// Logger receives retries (at Warn) and drops (at Error).
	//
	// Defaults to slog.Default(), where marketodds.Config.Logger defaults to
	// discarding: every failure the store logs is returned to its caller as
	// well, while a batch dropped by the queue reaches the host only through
	// OnDrop, which is optional. A lost write must not go unseen by default.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c, with every zero field set to its default.
// c may be nil.
func (c *Config) WithDefaults() *Config {
	if c == nil {
		c = &Config{}
	}
	d := &Config{
		Buffer:      cmp.Or(c.Buffer, defaultBuffer),
		Workers:     cmp.Or(c.Workers, defaultWorkers),
		MaxAttempts: cmp.Or(c.MaxAttempts, defaultMaxAttempts),
		BaseBackoff: cmp.Or(c.BaseBackoff, defaultBaseBackoff),
		MaxBackoff:  cmp.Or(c.MaxBackoff, max(defaultMaxBackoff, c.BaseBackoff)),
		Retryable:   c.Retryable,
		OnDrop:      c.OnDrop,
		Logger:      cmp.Or(c.Logger, slog.Default()),
	}
	if d.Retryable == nil {
		d.Retryable = defaultRetryable
	}
	return d
}

// defaultRetryable retries every error; Permanent errors never reach it.
func defaultRetryable(error) bool { return true }

// validate checks a config that has been through WithDefaults.
func (c *Config) validate() error {
	switch {
	case c.Buffer < 0:
		return fmt.Errorf("writequeue: Buffer must not be negative, got %d", c.Buffer)
	case c.Workers < 0:
		return fmt.Errorf("writequeue: Workers must not be negative, got %d", c.Workers)
	case c.MaxAttempts < 0:
		return fmt.Errorf("writequeue: MaxAttempts must not be negative, got %d", c.MaxAttempts)
	case c.BaseBackoff < 0:
		return fmt.Errorf("writequeue: BaseBackoff must not be negative, got %s", c.BaseBackoff)
	case c.MaxBackoff < c.BaseBackoff:
		return fmt.Errorf("writequeue: MaxBackoff (%s) must not be less than BaseBackoff (%s)", c.MaxBackoff, c.BaseBackoff)
	}
	return nil
}
