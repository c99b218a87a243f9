package main

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/oddsledger/oddsledger/examples/internal/feed"
	"github.com/oddsledger/oddsledger/examples/internal/sim"
	"github.com/oddsledger/oddsledger/marketodds"
)

// fixture is what the board knows of an event besides its odds: the host's
// fixture list, which oddsledger does not store.
type fixture struct {
	ID         int64
	Home, Away string
	Kickoff    time.Time
}

// driver plays the simulation into the store, one scrape cycle at a time,
// and publishes the simulated time up to which everything is written.
type driver struct {
	sim      *sim.Simulator
	feed     *feed.Feed
	logger   *slog.Logger
	interval time.Duration

	mu       sync.RWMutex
	written  time.Time // the board's now: every scrape up to it is written
	ncycles  int
	fixtures map[int64]fixture // every event listed so far
	listed   []int64           // the events of the last cycle, by kick-off
}

func newDriver(s *sim.Simulator, f *feed.Feed, logger *slog.Logger) *driver {
	return &driver{sim: s, feed: f, logger: logger, interval: s.Config().Interval, fixtures: make(map[int64]fixture)}
}

// cycle plays one scrape cycle: the scrapes of every (event, bookmaker),
// written through the feed, and waits until the queue has written them.
// Only then does the board's now move, so that a page never shows half a
// cycle. It must not be called concurrently.
func (d *driver) cycle(ctx context.Context) error {
	ce := d.sim.Advance()
	for _, id := range ce.Finished {
		// The match is over: its markets will not be scraped again, and the
		// classifier would keep them for ever.
		d.feed.Classifier.ForgetEvent(id)
	}
	err := d.sim.ScrapeCycle(ctx, func(ctx context.Context, eventID int64, bookmaker string,
		markets []marketodds.Market, at time.Time) error {
		_, err := d.feed.Scrape(ctx, eventID, bookmaker, markets, at)
		return err
	})
	if err == nil {
		err = d.feed.Flush(ctx)
	}
	if err == nil {
		err = d.feed.WaitIdle(ctx)
	}
	if err != nil {
		return err
	}

	events := d.sim.Events()
	listed := make([]int64, 0, len(events))
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range events {
		if _, ok := d.fixtures[e.ID]; !ok {
			d.fixtures[e.ID] = fixture{ID: e.ID, Home: e.Home, Away: e.Away, Kickoff: e.Kickoff}
		}
		listed = append(listed, e.ID)
	}
	slices.SortFunc(listed, func(a, b int64) int {
		return cmp.Or(d.fixtures[a].Kickoff.Compare(d.fixtures[b].Kickoff), cmp.Compare(a, b))
	})
	d.listed = listed
	// The scrapes of a cycle are spread over the first half of the
	// interval; the next cycle starts after it.
	d.written = d.sim.Clock().Add(d.interval / 2)
	d.ncycles++
	d.logger.Debug("cycle written", "cycle", d.ncycles, "simulated_time", d.written, "finished", len(ce.Finished))
	return nil
}

// loop plays a cycle every `every` until ctx ends; it returns nil then, or
// the error of a cycle.
func (d *driver) loop(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := d.cycle(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// now is the simulated time up to which every scrape is written.
func (d *driver) now() time.Time {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.written
}

func (d *driver) cycles() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.ncycles
}

// events returns the events being scraped, by kick-off.
func (d *driver) events() []fixture {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]fixture, len(d.listed))
	for i, id := range d.listed {
		out[i] = d.fixtures[id]
	}
	return out
}

// fixture returns an event listed at any time so far.
func (d *driver) fixture(id int64) (fixture, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	f, ok := d.fixtures[id]
	return f, ok
}
