// Package cli is what the examples' commands share: their main function (a
// context that the first SIGINT or SIGTERM cancels, so that the program
// drains and reports; a second signal kills it at once), the flags they
// define alike (Common), and number formatting.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main runs run with the command line and the standard streams, and exits
// with 1 if it fails (a -h is not a failure).
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Common holds the flags that both commands define alike: where the data
// goes, the log level, the drain timeout and the simulation's seed, horizon
// and change rate. They share them so that the names, help texts and checks
// cannot drift apart; each command embeds Common in its options and keeps
// its own flags beside it.
type Common struct {
	DB      string        // -db, or $DATABASE_URL; "" for a throwaway server
	Schema  string        // -schema, dropped and recreated at start
	Level   slog.Level    // -v
	Drain   time.Duration // -drain
	Seed    uint64        // -seed
	Horizon time.Duration // -horizon
	Change  float64       // -change

	level string // -v as given; Parsed reads it into Level
}

// Defaults are the defaults of the Common flags that differ between the
// commands.
type Defaults struct {
	Schema  string
	Change  float64
	Horizon time.Duration
}

// Register defines the Common flags on fs, with d's defaults.
func (c *Common) Register(fs *flag.FlagSet, d Defaults) {
	fs.Float64Var(&c.Change, "change", d.Change, "probability that a market changes between two scrapes (each market independently)")
	fs.DurationVar(&c.Horizon, "horizon", d.Horizon, "kick-offs are spread this far ahead; matches finish 110m after kick-off and are replaced")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed: the same seed plays the same scrapes")
	fs.StringVar(&c.DB, "db", "", "PostgreSQL URL (default $DATABASE_URL; when neither is set, a throwaway server "+
		"from the local PostgreSQL binaries, removed on exit)")
	fs.StringVar(&c.Schema, "schema", d.Schema, "schema for all tables; it is DROPPED AND RECREATED at start, "+
		"so that reruns start clean (refused if it holds tables this program did not make)")
	// A plain string rather than a flag.Value, so that -h shows its type
	// and default as for the other flags.
	fs.StringVar(&c.level, "v", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&c.Drain, "drain", 30*time.Second, "on exit or Ctrl-C, how long the queue may take to write what it holds")
}

// Parsed does the Common work that follows fs.Parse: it refuses arguments
// (the commands take none), reads -v into Level, and defaults DB to
// $DATABASE_URL. The values of -change and -schema are checked apart, by
// CheckChange and CheckSchema, so that each command can interleave them
// with its own checks and report the first problem in its own order.
func (c *Common) Parsed(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := c.Level.UnmarshalText([]byte(c.level)); err != nil {
		return fmt.Errorf("-v: %w", err)
	}
	if c.DB == "" {
		c.DB = os.Getenv("DATABASE_URL")
	}
	return nil
}

// CheckChange refuses a -change that is not a probability (NaN included).
func (c *Common) CheckChange() error {
	if !(c.Change >= 0 && c.Change <= 1) {
		return fmt.Errorf("-change must be within [0, 1], got %v", c.Change)
	}
	return nil
}

// CheckSchema refuses a -schema that is not the program's own to drop:
// the default search path's, or one of PostgreSQL's.
func (c *Common) CheckSchema() error {
	if s := strings.ToLower(c.Schema); s == "" || s == "public" || s == "information_schema" || strings.HasPrefix(s, "pg_") {
		return fmt.Errorf("-schema %q: this program drops and recreates its schema; give it one of its own", c.Schema)
	}
	return nil
}

// Thousands formats n with commas between thousands: 1,234,567.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
