package marketodds

import (
	"errors"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of what a Store has done since it was made: counters
// only, for a host to export to whatever metrics system it uses (the
// package imports none). Store.Stats is safe to call concurrently with
// writes, like pgxpool's Stat.
//
// Writes through WriteMarketBatchTx are counted when the call returns: a
// caller that then rolls its transaction back has them counted anyway.
type Stats struct {
	// Batches counts write calls: Succeeded + Failed.
	Batches, Succeeded, Failed int64
	// Writes counts the writes of all batches, failed ones included.
	Writes int64
	// Invalid counts writes rejected by validation (*ValidationError);
	// RowsIsolated counts writes that PostgreSQL refused and that were
	// isolated by splitting their batch (*RowError). Both in batches that
	// succeeded.
	Invalid, RowsIsolated int64
	// Upserted, Stale, ConfirmedByScrape, HistoryAdded, HistoryDuplicate and
	// Scrapes add up the Results of the batches that succeeded.
	Upserted, Stale, ConfirmedByScrape int64
	HistoryAdded, HistoryDuplicate     int64
	Scrapes                            int64
	// PartitionsCreated and PartitionsDropped count partitions of history
	// and the scrape log that this store created (Migrate, EnsurePartitions
	// or a write) and dropped (DropPartitionsBefore).
	PartitionsCreated, PartitionsDropped int64
	// TransientErrors and PermanentErrors split Failed: IsTransient said a
	// retry may help, or it cannot.
	TransientErrors, PermanentErrors int64
}

// BatchEvent is what Config.OnBatch receives after every write call.
//
// For OpenTelemetry's database metrics a host maps Duration to
// db.client.operation.duration (seconds; attributes db.operation.name
// "WriteMarketBatch", db.namespace the schema, error.type when Err is not
// nil) and len(Batch.Writes) to db.operation.batch.size; the Result's
// counts make good counters of their own.
type BatchEvent struct {
	// Batch is the batch as given (do not keep or modify it).
	Batch *Batch
	// Result is what the call returned.
	Result Result
	// Duration is the time the call took, Result.Elapsed.
	Duration time.Duration
	// Err is the call's error: nil when the batch was written.
	Err error
}

// storeStats are a store's counters.
type storeStats struct {
	batches, succeeded, failed, writes      atomic.Int64
	invalid, rowsIsolated                   atomic.Int64
	upserted, stale, confirmedByScrape      atomic.Int64
	historyAdded, historyDuplicate, scrapes atomic.Int64
	partitionsCreated, partitionsDropped    atomic.Int64
	transientErrors, permanentErrors        atomic.Int64
}

func (st *storeStats) record(b *Batch, res Result, err error) {
	st.batches.Add(1)
	st.writes.Add(int64(len(b.Writes)))
	if err != nil {
		st.failed.Add(1)
		if IsTransient(err) {
			st.transientErrors.Add(1)
		} else {
			st.permanentErrors.Add(1)
		}
		return
	}
	st.succeeded.Add(1)
	for _, r := range res.Rejected {
		var ve *ValidationError
		if errors.As(r.Err, &ve) {
			st.invalid.Add(1)
		} else {
			st.rowsIsolated.Add(1)
		}
	}
	st.upserted.Add(int64(res.Upserted))
	st.stale.Add(int64(res.Stale))
	st.confirmedByScrape.Add(int64(res.ConfirmedByScrape))
	st.historyAdded.Add(int64(res.HistoryAdded))
	st.historyDuplicate.Add(int64(res.HistoryDuplicate))
	st.scrapes.Add(int64(res.Scrapes))
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	st := &s.stats
	return Stats{
		Batches: st.batches.Load(), Succeeded: st.succeeded.Load(), Failed: st.failed.Load(),
		Writes: st.writes.Load(), Invalid: st.invalid.Load(), RowsIsolated: st.rowsIsolated.Load(),
		Upserted: st.upserted.Load(), Stale: st.stale.Load(), ConfirmedByScrape: st.confirmedByScrape.Load(),
		HistoryAdded: st.historyAdded.Load(), HistoryDuplicate: st.historyDuplicate.Load(), Scrapes: st.scrapes.Load(),
		PartitionsCreated: st.partitionsCreated.Load(), PartitionsDropped: st.partitionsDropped.Load(),
		TransientErrors: st.transientErrors.Load(), PermanentErrors: st.permanentErrors.Load(),
	}
}
