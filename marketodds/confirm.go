package marketodds

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ConfirmMode is how a schema records that a market which did not change
// was still offered: Config.Confirm.
type ConfirmMode int

const (
	// ConfirmMarkets moves every written market's last_confirmed_at: each
	// unchanged write is an UPDATE of its current row. It asks nothing of
	// the scrapes. The default.
	ConfirmMarkets ConfirmMode = iota
	// ConfirmScrapes writes only the markets that changed (changes,
	// appearances, disappearances); the others are confirmed by their
	// scrape's row in market_scrapes, one row per event and bookmaker. A
	// steady scrape cycle then writes about a twentieth of the rows.
	//
	// The precondition: every scrape is sent whole, as
	// changedetect.Classifier.Classify returns it: every market the
	// bookmaker offered for the event at that time (changed or not), and a
	// disappearance for each market it stopped offering. A market left out
	// of its scrape without a disappearance would read as confirmed by it.
	//
	// Reads are the same in both modes: CurrentMarkets, ScanCurrent (and so
	// changedetect's Warm) and the view market_odds_live give back the
	// last_confirmed_at that ConfirmMarkets would have stored: the market's
	// own, or while it is available its event and bookmaker's newest
	// scrape, whichever is newer.
	ConfirmScrapes
)

// String is the mode's name in oddsledger_settings.confirm_mode.
func (m ConfirmMode) String() string {
	switch m {
	case ConfirmMarkets:
		return "markets"
	case ConfirmScrapes:
		return "scrapes"
	}
	return fmt.Sprintf("ConfirmMode(%d)", int(m))
}

// SwitchConfirmMode changes the schema's confirmation mode. Run it as the
// schema's owner with the writers stopped, then start them with
// Config.Confirm = mode: a writer still running with the old mode has its
// next batch refused (ErrSchemaMismatch, nothing written), never written
// the wrong way. Switching to ConfirmMarkets first writes into every
// current row the confirmation its scrapes gave it, so that nothing read
// changes across the switch. The store's own Config is not changed.
//
// Stop the writers between whole scrapes: switching to ConfirmScrapes while
// only part of a scrape's batches were written would read the rest as
// confirmed by it. A schema written before confirmation modes existed
// confirms per market: Migrate it with ConfirmMarkets, then switch.
func (s *Store) SwitchConfirmMode(ctx context.Context, mode ConfirmMode) error {
	if mode != ConfirmMarkets && mode != ConfirmScrapes {
		return fmt.Errorf("marketodds: SwitchConfirmMode: unknown mode %d", int(mode))
	}
	err := inTx(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.migrations.lock.sql, args(schemaParams{Schema: s.cfg.Schema})...); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, s.settings.switchMode.sql, args(switchModeParams{ConfirmMode: mode.String()})...)
		return err
	})
	if err != nil {
		return fmt.Errorf("marketodds: switch schema %q to confirm mode %s: %w", s.cfg.Schema, mode, err)
	}
	s.mu.Lock()
	s.settingsChecked = false
	s.mu.Unlock()
	return nil
}

type switchModeParams struct {
	ConfirmMode string `sql:"confirm_mode"`
}
