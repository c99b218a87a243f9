// Command oddsboard is an odds board: a web server that shows what
// oddsledger stored, read back through the store, while the simulated
// scraper of examples/scraper keeps feeding it.
//
// Run it from the module root, with nothing to set up, and open the URL it
// prints:
//
//	go run ./examples/oddsboard
//
// Like examples/scraper it uses the server of DATABASE_URL (or -db) when
// set, in a schema of its own (-schema, dropped and recreated at start),
// and otherwise starts a throwaway PostgreSQL from the local server
// binaries and removes it on exit.
//
// It feeds itself: the simulation (examples/internal/sim: three
// bookmakers, -events football matches with about 50 markets each) runs in
// the background in simulated time, one scrape cycle of -interval (5
// minutes) every -speed (a second) of real time, written through the same
// wiring as the scraper's (examples/internal/feed: changedetect.Classifier
// -> writequeue.Queue -> marketodds.Store). Before it serves, it plays
// -backfill cycles at once, so that the pages have a few hours of history
// to show. Every time on the pages is simulated time, in UTC.
//
// The pages are rendered on the server (html/template, charts as inline
// SVG; no script, nothing fetched from elsewhere, so it works offline):
//
//	/                                    upcoming and live events, their bookmakers, when each was last scraped
//	/events/{id}?at=TIME                 markets x bookmakers: odds, best prices, margins, suspended and
//	                                     unavailable markets, when each bookmaker was seen; "as of" an earlier time
//	/events/{id}/markets/{market}?line=L the line movement of one market: every outcome at every bookmaker
//	                                     over time, unavailable periods shaded, opening and closing marked
//	/debug/vars                          counters (expvar): cycles, writes, history rows, the write queue,
//	                                     the store's Stats and its write calls (Config.OnBatch: count, errors,
//	                                     batch sizes, a duration histogram)
//
// Ctrl-C stops the feeding and the server, lets the queue write what it
// holds, and exits. Logs go to stderr; `go run ./examples/oddsboard -h`
// lists the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/oddsledger/oddsledger/examples/internal/cli"
	"github.com/oddsledger/oddsledger/examples/internal/feed"
	"github.com/oddsledger/oddsledger/examples/internal/sim"
	"github.com/oddsledger/oddsledger/internal/pgserver"
	"github.com/oddsledger/oddsledger/marketodds"
)

func main() { cli.Main("oddsboard", run) }

// options are the command line.
type options struct {
	cli.Common
	addr     string
	events   int
	interval time.Duration
	speed    time.Duration
	backfill int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("oddsboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.Register(fs, cli.Defaults{Schema: "oddsboard_example", Change: 0.1, Horizon: 12 * time.Hour})
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to serve the board on (port 0: any free port)")
	fs.IntVar(&o.events, "events", 12, "football events on the board at a time, each at 3 bookmakers with ~50 markets")
	fs.DurationVar(&o.interval, "interval", 5*time.Minute, "simulated time between two scrape cycles")
	fs.DurationVar(&o.speed, "speed", time.Second, "real time between two scrape cycles: the simulated clock runs -interval per -speed")
	fs.IntVar(&o.backfill, "backfill", 36, "scrape cycles played at once before serving, so that there is history to show")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := o.Parsed(fs); err != nil {
		return nil, err
	}
	switch changeErr, schemaErr := o.CheckChange(), o.CheckSchema(); {
	case o.events < 1:
		return nil, errors.New("-events must be at least 1")
	case o.backfill < 1:
		return nil, errors.New("-backfill must be at least 1: the board shows what was scraped")
	case changeErr != nil:
		return nil, changeErr
	case o.interval <= 0 || o.speed <= 0 || o.Horizon <= 0 || o.Drain <= 0:
		return nil, errors.New("-interval, -speed, -horizon and -drain must be positive")
	case schemaErr != nil:
		return nil, schemaErr
	}
	return o, nil
}

// run is the whole program; main adds only the signals and the exit code.
// It returns when ctx is cancelled (or on an error), after the feeding and
// the server have stopped and the queue has drained.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.Level}))
	started := time.Now()

	db, err := feed.OpenDatabase(ctx, o.DB, 8, pgserver.Options{}, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := feed.ResetSchema(ctx, db.Pool, o.Schema); err != nil {
		return err
	}
	// feed.NewStore installs the feed's write metrics as Config.OnBatch.
	store, metrics, err := feed.NewStore(db.Pool, &marketodds.Config{Schema: o.Schema})
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}

	// The wiring, as the scraper's.
	fd := feed.New(feed.Config{Store: store, Metrics: metrics, Logger: logger, BatchSize: 5000, RunID: started.Unix()})
	if err := fd.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer func() {
		if err := fd.Close(ctx, o.Drain); err != nil {
			logger.Error("queue not drained", "err", err)
		}
	}()
	d := newDriver(sim.New(sim.Config{Events: o.events, ChangeRate: o.Change, Interval: o.interval,
		Horizon: o.Horizon, Seed: o.Seed, Start: started.UTC().Truncate(time.Minute)}), fd, logger)

	fmt.Fprintf(stdout, "oddsboard: %d events x 3 bookmakers (betpawa, sportybet, bet9ja), ~%d markets each; "+
		"change probability %.3g per market per cycle; seed %d.\n", o.events, sim.CatalogueSize(), o.Change, o.Seed)
	fmt.Fprintf(stdout, "PostgreSQL %s (%s), schema %q (dropped and recreated).\n", db.Version, db.Where, o.Schema)
	t0 := time.Now()
	for range o.backfill {
		if err := d.cycle(ctx); err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
	}
	st := fd.Stats()
	fmt.Fprintf(stdout, "Backfilled %d cycles (%s of simulated time, to %s) in %s: %s history rows.\n",
		o.backfill, time.Duration(o.backfill)*o.interval, d.now().Format("2006-01-02 15:04 MST"),
		time.Since(t0).Round(10*time.Millisecond), num(st.HistoryAdded))

	b := newBoard(d, newReader(store, db.Pool), logger)
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: b.handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "Serving the board on http://%s/ (one %s cycle every %s; Ctrl-C to stop).\n",
		ln.Addr(), o.interval, o.speed)

	// Feed in the background until ctx ends.
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	fed := make(chan error, 1)
	go func() { fed <- d.loop(loopCtx, o.speed) }()

	var runErr error
	servedDone, fedDone := false, false
	select {
	case <-ctx.Done():
	case err := <-served:
		servedDone, runErr = true, fmt.Errorf("serve: %w", err)
	case err := <-fed:
		fedDone, runErr = true, err
	}
	stopLoop()
	if !fedDone {
		if err := <-fed; err != nil && runErr == nil {
			runErr = err
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("server shutdown", "err", err)
	}
	if !servedDone {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) && runErr == nil {
			runErr = fmt.Errorf("serve: %w", err)
		}
	}
	logger.Info("stopped", "cycles", d.cycles(), "simulated_time", d.now())
	return runErr
}
