package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/oddsledger/oddsledger/marketodds"
)

// The simulated bookmakers, with the margin each puts on its odds.
var bookmakers = []struct {
	slug   string
	margin float64
}{
	{"betpawa", 0.06},
	{"sportybet", 0.07},
	{"bet9ja", 0.08},
}

const (
	// matchLength is kick-off to final whistle, half-time and stoppage
	// included: an event is scraped until then, and forgotten after.
	matchLength = 110 * time.Minute
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

// simConfig configures the simulation.
type simConfig struct {
	Events int
	// ChangeRate is the probability that a market changes in a cycle:
	// every offered market, independently, every cycle.
	ChangeRate float64
	Interval   time.Duration
	// Horizon is how far ahead kick-offs are spread; events finish
	// matchLength after kick-off and are replaced by new fixtures.
	Horizon time.Duration
	Seed    uint64
	Start   time.Time
}

// simulator plays bookmakers' football pages over simulated time. It is
// deterministic for a given config (Start aside, which only shifts time),
// and not safe for concurrent use.
//
// Markets handed out by Scrape are never modified afterwards: a change
// makes new Outcomes. The host may queue them and write them later.
type simulator struct {
	cfg    simConfig
	rng    *rand.Rand // fixtures and kick-offs; each book has its own stream
	clock  time.Time
	cycle  int
	nextID int64
	events []*simEvent

	distinct int // markets that were in at least one scrape
}

type simEvent struct {
	ID      int64
	Kickoff time.Time
	books   []*simBook
	fresh   bool // appeared this cycle: not yet scraped
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

// cycleEvents is what Advance did to the fixture list.
type cycleEvents struct {
	Finished []int64 // removed: the host forgets them
	Added    int
	Live     int // kicked off, not finished
	Changes  int // markets changed by this step, all kinds
}

func newSimulator(cfg simConfig) *simulator {
	s := &simulator{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		nextID: firstEventID,
	}
	for range cfg.Events {
		// Spread kick-offs so that some matches are already on at the start
		// and finish during the run, at about Events*Interval/(Horizon+
		// matchLength) per cycle.
		span := cfg.Horizon + matchLength
		s.addEvent(cfg.Start.Add(-matchLength + time.Duration(s.rng.Int64N(int64(span)))))
	}
	return s
}

func (s *simulator) addEvent(kickoff time.Time) {
	id := s.nextID
	s.nextID++
	// Kick-offs on the five minutes, counted from Start so that another
	// Start plays the same matches.
	kickoff = s.cfg.Start.Add(kickoff.Sub(s.cfg.Start).Truncate(5 * time.Minute))
	e := &simEvent{ID: id, Kickoff: kickoff, fresh: true}
	// Expected goals of the match; each bookmaker's own estimate differs a
	// little, as do their margins.
	lh, la := 0.9+1.2*s.rng.Float64(), 0.6+1.1*s.rng.Float64()
	corners, cards := 8.5+3*s.rng.Float64(), 3.5+2*s.rng.Float64()
	for bi, bk := range bookmakers {
		rng := rand.New(rand.NewPCG(s.cfg.Seed, uint64(id)<<2|uint64(bi)))
		noise := func() float64 { return 1 + 0.1*(rng.Float64()-0.5) }
		m := newModel(lh*noise(), la*noise(), corners*noise(), cards*noise())
		b := &simBook{slug: bk.slug, rng: rng}
		for i := range catalogue {
			d := &catalogue[i]
			if rng.Float64() >= offerRate {
				continue
			}
			fair := d.fairOdds(m)
			outs := make([]marketodds.Outcome, len(fair))
			for j, f := range fair {
				outs[j] = marketodds.Outcome{Name: d.outcomes[j].name, Odds: roundOdds(f / (1 + bk.margin))}
			}
			b.markets = append(b.markets, simMarket{m: marketodds.Market{
				EventID: id, Bookmaker: bk.slug, MarketID: d.id, Line: d.line, Name: d.name,
				Outcomes: outs, Groups: d.groups, Handicap: d.handicap,
			}})
		}
		e.books = append(e.books, b)
	}
	s.events = append(s.events, e)
}

// roundOdds rounds to two decimals, within [1.01, 500], as bookmakers quote.
func roundOdds(o float64) float64 {
	return math.Min(math.Max(math.Round(o*100)/100, 1.01), 500)
}

// Clock is the simulated time of the current cycle.
func (s *simulator) Clock() time.Time { return s.clock }

// Advance moves to the next cycle (the first call: to Start). Events whose
// match is over leave, new fixtures replace them, and every market of the
// other events changes with probability ChangeRate.
func (s *simulator) Advance() cycleEvents {
	var ce cycleEvents
	s.cycle++
	if s.cycle == 1 {
		s.clock = s.cfg.Start
	} else {
		s.clock = s.clock.Add(s.cfg.Interval)
		for _, e := range s.events {
			e.fresh = false
		}
		s.events = slices.DeleteFunc(s.events, func(e *simEvent) bool {
			if s.clock.Before(e.Kickoff.Add(matchLength)) {
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

// Events returns the events of the current cycle, in a stable order.
func (s *simulator) Events() []*simEvent { return s.events }

// Scrape returns what the bookmaker's page of the event shows now: every
// offered market that is not withdrawn. The slice is the caller's.
func (s *simulator) Scrape(e *simEvent, book int) []marketodds.Market {
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
func (s *simulator) EventsSeen() int { return int(s.nextID - firstEventID) }

// Distinct is the number of markets that were in at least one scrape.
func (s *simulator) Distinct() int { return s.distinct }

// distribution describes the simulated changes, for the report.
func (c simConfig) distribution() string {
	return fmt.Sprintf("uniform: every market changes independently with probability %.3g per cycle\n"+
		"  (%.0f%% odds moves, %.0f%% suspensions, %.0f%% withdrawals; the next change of a suspended or\n"+
		"  withdrawn market brings it back)",
		c.ChangeRate, 100*(1-shareSuspend-shareWithdraw), 100*shareSuspend, 100*shareWithdraw)
}
