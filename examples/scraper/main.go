// Command scraper is the example to start with: a simulated odds scraper
// wired to oddsledger exactly as a host application would wire its real
// one, against a real PostgreSQL, and the measurement that justifies the
// library.
//
// It plays three bookmakers (betpawa, sportybet, bet9ja) quoting -events
// football events with about 50 markets each: 1X2, double chance, draw no
// bet, both teams to score, over/under at lines 0.5 to 5.5, Asian handicaps
// from -2.5 to +2.5, European handicaps, correct score, half time/full time,
// team and half totals, corners and bookings. Every -interval of simulated
// time (no real sleeping: CapturedAt is the simulated clock) it scrapes
// every (event, bookmaker), and each market has changed since the last
// scrape with probability -change, independently of the others: usually
// its odds moved, sometimes it was suspended or withdrawn, and its next
// change brings it back. Matches kick off and finish, and finished events
// are forgotten (changedetect.Classifier.ForgetEvent) and replaced by new
// fixtures. With the same -seed, the same things happen.
//
// The simulation is examples/internal/sim, shared with examples/oddsboard.
// The wiring, in examples/internal/feed (feed.go), is the library's
// intended use:
//
//	scrape -> changedetect.Classifier.Classify -> writes of many scrapes in one *marketodds.Batch
//	       -> writequeue.Queue.Enqueue -> handler: marketodds.Store.WriteMarketBatch
//	          (retried when marketodds.IsTransient; a dropped batch's changes are Forgotten
//	          by the classifier, so that the next scrape sends them again)
//
// Beside it, through the same queue, runs the pre-library way (legacy.go,
// host.go): whenever any market of an (event, bookmaker) changed, a
// snapshot of all of its markets, one row per market, in the table
// legacy_odds_snapshots, shaped like market_odds_history. Between cycles,
// where a real scraper would sleep, the program waits for the queue to
// write the cycle's batches, so that each progress line is complete. Each
// line shows the cycle's write time: the durations of its WriteMarketBatch
// calls summed, as Config.OnBatch reports them.
//
// -confirm chooses how the store confirms the markets that did not change
// (marketodds.Config.Confirm, recorded in the schema by Migrate): markets,
// the default, an UPDATE of every such market's current row per scrape; or
// scrapes, where only changed markets are written and each scrape's row in
// market_scrapes confirms the rest. Run it both ways with the same -seed to
// compare them: the same history and scrape log, the same reads, less
// written.
//
// At the end it reads PostgreSQL's own row counts and sizes of both designs
// and prints them: over all cycles (the first one stores every market in
// both designs) and in the steady state that follows (cycles 2..n), the
// part that grows for as long as a scraper runs. There, at the default 5%
// change rate spread uniformly over ~50 markets, history stores about 94%
// fewer rows than the snapshots: 1 - q/(1-(1-q)^m), which the program
// prints next to the measured figure. The current table (one row per
// market) and the scrape log (one row per scrape, and one per event and
// bookmaker) are shown separately, and summed with history: with
// -confirm=markets every scrape rewrites the current row of every market it
// saw, and the table's bytes level off after a few cycles; with
// -confirm=scrapes only changed markets' rows are rewritten. Changes
// concentrated in a few events save much less. The table ends with the
// store's own counters (Store.Stats) and the write calls' durations (count,
// mean, exact p50 and p99, and feed.WriteMetrics's histogram).
//
// Run it from the module root, with nothing to set up:
//
//	go run ./examples/scraper
//
// It uses the server of DATABASE_URL (or -db) when set, in a schema of its
// own (-schema, dropped and recreated at start), and otherwise starts a
// throwaway PostgreSQL from the local server binaries and removes it on
// exit. The defaults (500 events, 10 cycles: ~720,000 scraped markets, twice
// written) take 20 to 40 seconds on two cores. Ctrl-C stops scraping, lets
// the queue write what it holds, and prints the table for what was
// written. Logs go to stderr (-v debug for more); `go run ./examples/scraper
// -h` lists the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/oddsledger/oddsledger/examples/internal/cli"
	"github.com/oddsledger/oddsledger/examples/internal/feed"
	"github.com/oddsledger/oddsledger/examples/internal/sim"
	"github.com/oddsledger/oddsledger/internal/pgserver"
	"github.com/oddsledger/oddsledger/marketodds"
)

func main() { cli.Main("scraper", run) }

// The default workload: the change rate the design's figures assume, a
// scrape every five minutes, fixtures three days ahead (so few matches
// finish during a run).
const (
	defaultChange   = 0.05
	defaultInterval = 5 * time.Minute
	defaultHorizon  = 72 * time.Hour
)

// options are the command line.
type options struct {
	cli.Common
	events, cycles int
	interval       time.Duration
	batch          int
	workers        int
	legacy         bool
	confirm        marketodds.ConfirmMode
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("scraper", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.Register(fs, cli.Defaults{Schema: "oddsledger_example", Change: defaultChange, Horizon: defaultHorizon})
	fs.IntVar(&o.events, "events", 500, "football events scraped per cycle, each at 3 bookmakers with ~50 markets")
	fs.IntVar(&o.cycles, "cycles", 10, "scrape cycles to run")
	fs.DurationVar(&o.interval, "interval", defaultInterval, "simulated time between cycles (nothing sleeps: it is the CapturedAt clock)")
	fs.IntVar(&o.batch, "batch", 5000, "writes per batch (the writes of many scrapes go in one batch)")
	fs.IntVar(&o.workers, "workers", 4, "write queue workers (batches written at once)")
	fs.Func("confirm", "how the store confirms markets that did not change: markets (an UPDATE of every market's current\n"+
		"row per scrape) or scrapes (one row per scrape; only changed markets are written); default markets",
		func(s string) (err error) { o.confirm, err = parseConfirm(s); return err })
	fs.BoolVar(&o.legacy, "legacy", true, "also store full snapshots the pre-library way, for comparison (-legacy=false: off)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := o.Parsed(fs); err != nil {
		return nil, err
	}
	switch changeErr, schemaErr := o.CheckChange(), o.CheckSchema(); {
	case o.events < 1, o.cycles < 1, o.batch < 1, o.workers < 1:
		return nil, errors.New("-events, -cycles, -batch and -workers must be at least 1")
	case changeErr != nil:
		return nil, changeErr
	case o.interval <= 0 || o.Horizon <= 0 || o.Drain <= 0:
		return nil, errors.New("-interval, -horizon and -drain must be positive")
	case schemaErr != nil:
		return nil, schemaErr
	}
	return o, nil
}

// parseConfirm reads -confirm: a marketodds.ConfirmMode by its name.
func parseConfirm(s string) (marketodds.ConfirmMode, error) {
	for _, m := range []marketodds.ConfirmMode{marketodds.ConfirmMarkets, marketodds.ConfirmScrapes} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("want %s or %s", marketodds.ConfirmMarkets, marketodds.ConfirmScrapes)
}

// run is the whole program; main adds only the signals and the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.Level}))
	started := time.Now()

	// The database: the host's own, or a throwaway one.
	db, err := feed.OpenDatabase(ctx, o.DB, o.workers+2, pgserver.Options{SharedBuffers: "512MB"}, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	pool := db.Pool

	// The schema, fresh: the library's tables, and the baseline's.
	if err := feed.ResetSchema(ctx, pool, o.Schema, legacyTable); err != nil {
		return err
	}
	// The store could log too (Config.Logger: rejected rows at Warn, batches
	// at Debug); here the host logs what it sees, and the store's logger is
	// left at its default, which discards, so that nothing is logged twice.
	// -confirm is recorded in the new schema by Migrate. Config.OnBatch:
	// feed.NewStore installs the feed's write metrics (calls, errors, sizes,
	// a duration histogram); the hook given here is called after it, and
	// keeps every call's duration for the closing table's exact percentiles.
	durs := &durations{}
	store, metrics, err := feed.NewStore(pool, &marketodds.Config{Schema: o.Schema, Confirm: o.confirm,
		OnBatch: durs.onBatch})
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	var legacy *legacyStore
	if o.legacy {
		legacy = newLegacyStore(pool, o.Schema)
		if err := legacy.Create(ctx); err != nil {
			return err
		}
	}

	// The wiring (examples/internal/feed), and the baseline's handler.
	h := newHost(logger, store, metrics, legacy, o.batch, o.workers, started.Unix())
	// The queue's run context must outlive a Ctrl-C: cancelling it is a hard
	// stop, while Close drains.
	if err := h.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	closeQueue := func() error {
		if err := h.flushLegacy(context.WithoutCancel(ctx)); err != nil {
			logger.Error("final batches not queued", "err", err)
		}
		return h.Close(ctx, o.Drain)
	}
	defer closeQueue() // on early error returns; Close is idempotent

	sc := sim.Config{Events: o.events, ChangeRate: o.Change, Interval: o.interval, Horizon: o.Horizon, Seed: o.Seed,
		Start: started.UTC().Truncate(time.Minute)}
	// A host warms its classifier from market_odds_current on start, so that
	// a restart does not report every market changed and write it to history
	// again. The schema here is new, so there is nothing to load: the call
	// is the wiring.
	warmed, err := h.Warm(ctx, sc.Start.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	logger.Info("classifier warmed", "markets", warmed)
	sm := sim.New(sc)
	m := newMeter(pool, o.Schema, o.legacy)
	rep := &report{plannedCycles: o.cycles, sim: sc, legacy: o.legacy, confirm: o.confirm, workers: o.workers,
		defaultWorkload: o.Change == defaultChange && o.interval == defaultInterval && o.Horizon == defaultHorizon}

	fmt.Fprintf(stdout, "oddsledger scraper example: %d events x 3 bookmakers (betpawa, sportybet, bet9ja), ~%d markets each;\n",
		o.events, sim.CatalogueSize())
	fmt.Fprintf(stdout, "%d cycles %s of simulated time apart; change probability %.3g per market per cycle; seed %d.\n",
		o.cycles, o.interval, o.Change, o.Seed)
	fmt.Fprintf(stdout, "PostgreSQL %s (%s), schema %q (dropped and recreated).\n", db.Version, db.Where, o.Schema)
	fmt.Fprintf(stdout, "Confirmation: -confirm=%s (%s).\n", o.confirm, confirmText(o.confirm))
	if !o.legacy {
		fmt.Fprintf(stdout, "Snapshot baseline off (-legacy=false).\n")
	}
	fmt.Fprintf(stdout, "Per cycle, \"write\" is the sum of the durations of the cycle's WriteMarketBatch calls as\n"+
		"Config.OnBatch reports them (%d workers write at once; the snapshot baseline's writes are not in it); the\n"+
		"last figure is the cycle's wall time, scraping and snapshots included.\n", o.workers)
	fmt.Fprintln(stdout)

	// progress prints the line of a cycle: what it scraped, and what the
	// queue wrote of it.
	type mark struct {
		scraped, changed, hist, snaps, calls int64
		write                                time.Duration
	}
	markNow := func() mark {
		st := h.Stats()
		return mark{st.Scraped, st.Changed, st.HistoryAdded, h.snapshotRows.Load(), st.Batches.Count, st.Batches.Total}
	}
	progress := func(cycle int, ce sim.CycleEvents, before mark, t0 time.Time, note string) {
		now := markNow()
		st := h.Stats()
		scraped, changed := now.scraped-before.scraped, now.changed-before.changed
		fmt.Fprintf(stdout, "cycle %*d/%d  %s  events %d (%d live, %d finished)  markets %s  changed %s (%.1f%%)  "+
			"history +%s  snapshots +%s  retried %d  dropped %d  write %s (%d calls)  %s%s\n",
			len(fmt.Sprint(o.cycles)), cycle, o.cycles, sm.Clock().Format("15:04"), len(sm.Events()), ce.Live,
			len(ce.Finished), num(scraped), num(changed), 100*float64(changed)/float64(max(scraped, 1)),
			num(now.hist-before.hist), num(now.snaps-before.snaps), st.Queue.Retries, st.Queue.Dropped,
			(now.write - before.write).Round(time.Millisecond), now.calls-before.calls,
			time.Since(t0).Round(10*time.Millisecond), note)
	}
	var last func() // prints the line of an interrupted cycle, once the queue has drained
	for cycle := 1; cycle <= o.cycles && ctx.Err() == nil; cycle++ {
		t0 := time.Now()
		before := markNow()
		ce := sm.Advance()
		for _, id := range ce.Finished {
			// The match is over: its markets will not be scraped again, and
			// the classifier would keep them for ever.
			h.Classifier.ForgetEvent(id)
			logger.Debug("event finished and forgotten", "event", id)
		}
		err := sm.ScrapeCycle(ctx, h.scrape)
		if err == nil {
			err = h.flush(ctx)
		}
		if err == nil {
			// Where a real scraper sleeps until the next cycle, wait for the
			// writes instead (the clock jumps the interval): the numbers of
			// each cycle are then complete.
			err = h.WaitIdle(ctx)
		}
		rep.cycles = cycle
		if ctx.Err() != nil {
			last = func() { progress(cycle, ce, before, t0, " (interrupted; drained)") }
			break
		}
		if err != nil {
			return err
		}
		progress(cycle, ce, before, t0, "")
		if cycle == 1 {
			st := h.Stats()
			rep.scraped1, rep.changed1, rep.distinct1, rep.scrapes1 = st.Scraped, st.Changed, sm.Distinct(), st.Scrapes
			rep.writeTime1 = st.Batches.Total
			if rep.afterFirst, err = m.sizes(ctx); err != nil {
				return err
			}
			rep.haveFirst = true
		}
	}
	rep.partial = last != nil
	if rep.interrupted = ctx.Err() != nil; rep.interrupted {
		logger.Info("interrupted: writing what the queue holds", "drain_timeout", o.Drain)
	}
	if err := closeQueue(); err != nil {
		logger.Error("queue not drained", "err", err)
	}
	if last != nil {
		last()
	}

	// The measurement, on a context of its own: after a Ctrl-C the table is
	// still wanted.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	steadyFrom := sc.Start.Add(sc.Interval)
	if rep.rows, err = m.counts(mctx, steadyFrom); err != nil {
		return err
	}
	if rep.end, err = m.sizes(mctx); err != nil {
		return err
	}
	st := h.Stats()
	rep.distinct, rep.eventsSeen = sm.Distinct(), sm.EventsSeen()
	rep.scraped, rep.changed, rep.scrapes = st.Scraped, st.Changed, st.Scrapes
	rep.retries, rep.dropped = st.Queue.Retries, st.Queue.Dropped
	rep.droppedWrites, rep.droppedRows = st.DroppedWrites, h.droppedRows.Load()
	rep.store, rep.batches, rep.durations = store.Stats(), st.Batches, durs.sorted()
	rep.elapsed = time.Since(started)
	rep.print(stdout)
	return nil
}
