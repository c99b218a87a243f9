// Package sim is the examples' simulated odds scraper: three bookmakers
// quoting football events with about 50 markets each, over simulated time.
// examples/scraper and examples/oddsboard both feed oddsledger from it.
//
// Every cycle (Advance) each offered market has changed since the last
// scrape with probability Config.ChangeRate, independently of the others:
// usually its odds moved, sometimes it was suspended or withdrawn, and its
// next change brings it back. Matches kick off and finish; finished events
// leave and new fixtures replace them. With the same Config.Seed, the same
// things happen.
package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/oddsledger/oddsledger/marketodds"
)

// Bookmaker is a simulated bookmaker.
type Bookmaker struct {
	Slug string
	// Margin is what the bookmaker puts on its odds: fair odds / (1 + Margin).
	Margin float64
}

// Bookmakers are the simulated bookmakers, in the order Scrape numbers them.
// Do not modify.
var Bookmakers = []Bookmaker{
	{"betpawa", 0.06},
	{"sportybet", 0.07},
	{"bet9ja", 0.08},
}

const (
	// MatchLength is kick-off to final whistle, half-time and stoppage
	// included: an event is scraped until then, and leaves after.
	MatchLength = 110 * time.Minute
	// offerRate is the share of the catalogue a bookmaker offers for an
	// event: each market is offered or not, once, when the event appears.
	offerRate = 0.97
	// A change is an odds move, except for these shares of the changes of an
	// available market: it is suspended, or withdrawn. The next change of a
	// suspended or withdrawn market brings it back.
	shareSuspend  = 0.06
	shareWithdraw = 0.04
	// firstEventID numbers the events, BetPawa-like.
	firstEventID = 30_000_000
)

// Config configures the simulation.
type Config struct {
	Events int
	// ChangeRate is the probability that a market changes in a cycle:
	// every offered market, independently, every cycle.
	ChangeRate float64
	Interval   time.Duration
	// Horizon is how far ahead kick-offs are spread; events finish
	// MatchLength after kick-off and are replaced by new fixtures.
	Horizon time.Duration
	Seed    uint64
	// Start is the simulated time of the first cycle.
	Start time.Time
}

// Simulator plays bookmakers' football pages over simulated time. It is
// deterministic for a given config (Start aside, which only shifts time),
// and not safe for concurrent use.
//
// Markets handed out by Scrape are never modified afterwards: a change
// makes new Outcomes. The host may queue them and write them later.
type Simulator struct {
	cfg    Config
	rng    *rand.Rand // fixtures and kick-offs; each book has its own stream
	clock  time.Time
	cycle  int
	nextID int64
	events []*Event

	distinct int // markets that were in at least one scrape
}

// Event is one football event (match) of the simulation.
type Event struct {
	ID      int64
	Kickoff time.Time
	// Home and Away are the teams: made-up names, drawn from the event id
	// and the seed (not from the streams that play the odds).
	Home, Away string
	books      []*simBook
	fresh      bool // appeared this cycle: not yet scraped
}

type simBook struct {
	slug    string
	rng     *rand.Rand
	markets []simMarket
}

type marketState uint8

const (
	available marketState = iota
	suspended
	withdrawn
)

type simMarket struct {
	m     marketodds.Market
	state marketState
	seen  bool
}

// CycleEvents is what Advance did to the fixture list.
type CycleEvents struct {
	Finished []int64 // removed: the host forgets them
	Added    int
	Live     int // kicked off, not finished
	Changes  int // markets changed by this step, all kinds
}

// New returns a simulator before its first cycle: call Advance.
func New(cfg Config) *Simulator {
	s := &Simulator{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		nextID: firstEventID,
	}
	for range cfg.Events {
		// Spread kick-offs so that some matches are already on at the start
		// and finish during the run, at about Events*Interval/(Horizon+
		// MatchLength) per cycle.
		span := cfg.Horizon + MatchLength
		s.addEvent(cfg.Start.Add(-MatchLength + time.Duration(s.rng.Int64N(int64(span)))))
	}
	return s
}

func (s *Simulator) addEvent(kickoff time.Time) {
	id := s.nextID
	s.nextID++
	// Kick-offs on the five minutes, counted from Start so that another
	// Start plays the same matches.
	kickoff = s.cfg.Start.Add(kickoff.Sub(s.cfg.Start).Truncate(5 * time.Minute))
	e := &Event{ID: id, Kickoff: kickoff, fresh: true}
	e.Home, e.Away = s.teams(id)
	// Expected goals of the match; each bookmaker's own estimate differs a
	// little, as do their margins.
	lh, la := 0.9+1.2*s.rng.Float64(), 0.6+1.1*s.rng.Float64()
	corners, cards := 8.5+3*s.rng.Float64(), 3.5+2*s.rng.Float64()
	for bi, bk := range Bookmakers {
		rng := rand.New(rand.NewPCG(s.cfg.Seed, uint64(id)<<2|uint64(bi)))
		noise := func() float64 { return 1 + 0.1*(rng.Float64()-0.5) }
		m := newModel(lh*noise(), la*noise(), corners*noise(), cards*noise())
		b := &simBook{slug: bk.Slug, rng: rng}
		for i := range catalogue {
			d := &catalogue[i]
			if rng.Float64() >= offerRate {
				continue
			}
			fair := d.fairOdds(m)
			outs := make([]marketodds.Outcome, len(fair))
			for j, f := range fair {
				outs[j] = marketodds.Outcome{Name: d.outcomes[j].name, Odds: roundOdds(f / (1 + bk.Margin))}
			}
			b.markets = append(b.markets, simMarket{m: marketodds.Market{
				EventID: id, Bookmaker: bk.Slug, MarketID: d.id, Line: d.line, Name: d.name,
				Outcomes: outs, Groups: d.groups, Handicap: d.handicap,
			}})
		}
		e.books = append(e.books, b)
	}
	s.events = append(s.events, e)
}

// teamNames are the clubs of the simulated league (made up).
var teamNames = []string{
	"Riverside Rovers", "Harbour City", "Northgate United", "Eastbrook Athletic", "Kingsmoor Town",
	"Redcliff Rangers", "Westvale Wanderers", "Lakeshore FC", "Ironford Albion", "Stonehaven Sporting",
	"Millbrook Celtic", "Oakfield Orient", "Sunport Stars", "Greenhollow Rovers", "Bayside Dynamos",
	"Highmoor Hotspur", "Copperfield City", "Ashgrove United", "Marshgate Athletic", "Falconridge FC",
}

// teams names the two teams of an event, from a stream of their own so that
// the odds do not depend on them.
func (s *Simulator) teams(id int64) (home, away string) {
	rng := rand.New(rand.NewPCG(s.cfg.Seed^0x7ea3, uint64(id)))
	h := rng.IntN(len(teamNames))
	a := (h + 1 + rng.IntN(len(teamNames)-1)) % len(teamNames)
	return teamNames[h], teamNames[a]
}

// roundOdds rounds to two decimals, within [1.01, 500], as bookmakers quote.
func roundOdds(o float64) float64 {
	return math.Min(math.Max(math.Round(o*100)/100, 1.01), 500)
}

// Config returns the simulator's configuration.
func (s *Simulator) Config() Config { return s.cfg }

// Clock is the simulated time of the current cycle.
func (s *Simulator) Clock() time.Time { return s.clock }

// Advance moves to the next cycle (the first call: to Start). Events whose
// match is over leave, new fixtures replace them, and every market of the
// other events changes with probability ChangeRate.
func (s *Simulator) Advance() CycleEvents {
	var ce CycleEvents
	s.cycle++
	if s.cycle == 1 {
		s.clock = s.cfg.Start
	} else {
		s.clock = s.clock.Add(s.cfg.Interval)
		for _, e := range s.events {
			e.fresh = false
		}
		s.events = slices.DeleteFunc(s.events, func(e *Event) bool {
			if s.clock.Before(e.Kickoff.Add(MatchLength)) {
				return false
			}
			ce.Finished = append(ce.Finished, e.ID)
			return true
		})
		for range ce.Finished {
			// Fixtures are published about Horizon ahead.
			s.addEvent(s.clock.Add(s.cfg.Horizon - time.Duration(s.rng.Int64N(int64(s.cfg.Interval)+1))))
			ce.Added++
		}
		for _, e := range s.events {
			if e.fresh {
				continue
			}
			for _, b := range e.books {
				for i := range b.markets {
					if b.rng.Float64() < s.cfg.ChangeRate {
						b.change(i)
						ce.Changes++
					}
				}
			}
		}
	}
	for _, e := range s.events {
		if !s.clock.Before(e.Kickoff) {
			ce.Live++
		}
	}
	return ce
}

// change applies one change to market i.
func (b *simBook) change(i int) {
	mk := &b.markets[i]
	switch mk.state {
	case withdrawn, suspended:
		// Back, repriced (and no longer suspended).
		mk.state = available
		mk.m.Outcomes = b.moved(mk.m.Outcomes)
	default:
		switch u := b.rng.Float64(); {
		case u < shareWithdraw:
			mk.state = withdrawn
		case u < shareWithdraw+shareSuspend:
			mk.state = suspended
			outs := slices.Clone(mk.m.Outcomes)
			for j := range outs {
				outs[j].Suspended = true
			}
			mk.m.Outcomes = outs
		default:
			mk.m.Outcomes = b.moved(mk.m.Outcomes)
		}
	}
}

// moved returns a copy of outs, not suspended, with the odds of one outcome
// moved by 2-10% (at least one cent) and those of another moved the other
// way, as a bookmaker rebalances a book. outs itself is not modified: it
// may sit in a queued batch.
func (b *simBook) moved(outs []marketodds.Outcome) []marketodds.Outcome {
	out := slices.Clone(outs)
	for j := range out {
		out[j].Suspended = false
	}
	k := b.rng.IntN(len(out))
	dir := 1.0
	if b.rng.IntN(2) == 0 {
		dir = -1
	}
	old := out[k].Odds
	nu := roundOdds(old * (1 + dir*(0.02+0.08*b.rng.Float64())))
	if nu == old {
		nu = roundOdds(old + 0.01) // at the floor or the ceiling: move the only way there is
		if nu == old {
			nu = roundOdds(old - 0.01)
		}
	}
	out[k].Odds = nu
	if len(out) > 1 {
		j := (k + 1 + b.rng.IntN(len(out)-1)) % len(out)
		out[j].Odds = roundOdds(out[j].Odds * (1 - dir*0.5*(0.02+0.08*b.rng.Float64())))
	}
	return out
}

// Events returns the events of the current cycle, in a stable order. The
// slice is the simulator's: it changes with the next Advance.
func (s *Simulator) Events() []*Event { return s.events }

// Scrape returns what the bookmaker's page of the event shows now: every
// offered market that is not withdrawn. The slice is the caller's.
func (s *Simulator) Scrape(e *Event, book int) []marketodds.Market {
	b := e.books[book]
	out := make([]marketodds.Market, 0, len(b.markets))
	for i := range b.markets {
		mk := &b.markets[i]
		if mk.state == withdrawn {
			continue
		}
		if !mk.seen {
			mk.seen = true
			s.distinct++
		}
		out = append(out, mk.m)
	}
	return out
}

// EventsSeen is the number of events listed so far, finished ones included.
func (s *Simulator) EventsSeen() int { return int(s.nextID - firstEventID) }

// Distinct is the number of markets that were in at least one scrape.
func (s *Simulator) Distinct() int { return s.distinct }

// Distribution describes the simulated changes, for reports.
func (c Config) Distribution() string {
	return fmt.Sprintf("uniform: every market changes independently with probability %.3g per cycle\n"+
		"  (%.0f%% odds moves, %.0f%% suspensions, %.0f%% withdrawals; the next change of a suspended or\n"+
		"  withdrawn market brings it back)",
		c.ChangeRate, 100*(1-shareSuspend-shareWithdraw), 100*shareSuspend, 100*shareWithdraw)
}

// CatalogueSize is the number of markets in the catalogue: what a bookmaker
// offers of an event is most of them.
func CatalogueSize() int { return len(catalogue) }

// ScrapeFunc takes one scrape of one (event, bookmaker): every market the
// bookmaker's page showed at the simulated time at. markets must not be
// modified.
type ScrapeFunc func(ctx context.Context, eventID int64, bookmaker string, markets []marketodds.Market, at time.Time) error

// ScrapeCycle scrapes every (event, bookmaker) of the current cycle once,
// in a stable order. The scrapes of a cycle are spread over the first half
// of the interval, as a scraper working through its list would. An error
// from fn, or ctx's, stops it.
func (s *Simulator) ScrapeCycle(ctx context.Context, fn ScrapeFunc) error {
	n := len(s.events) * len(Bookmakers)
	step := s.cfg.Interval / 2 / time.Duration(max(n, 1))
	i := 0
	for _, e := range s.events {
		if err := ctx.Err(); err != nil {
			return err
		}
		for b, bk := range Bookmakers {
			at := s.clock.Add(time.Duration(i) * step)
			i++
			if err := fn(ctx, e.ID, bk.Slug, s.Scrape(e, b), at); err != nil {
				return err
			}
		}
	}
	return nil
}
