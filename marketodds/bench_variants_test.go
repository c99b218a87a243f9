package marketodds_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/internal/pgbouncer"
	"github.com/oddsledger/oddsledger/marketodds"
)

// A benchVariant is one more schema that the library writes in a way of its
// own: another confirmation mode (Config.Confirm), another pgx exec mode,
// through PgBouncer, or with the write statement sent otherwise (sendMode).
// Every variant gets the same first load (untimed) as schema A, then the
// same steady cycle, timed, each right after a CHECKPOINT like A's.
type benchVariant struct {
	name    string // metric prefix
	about   string // for the log
	confirm marketodds.ConfirmMode
	schema  string
	pool    *pgxpool.Pool // one connection
	store   *marketodds.Store
}

// variantSpec says how to make a benchVariant.
type variantSpec struct {
	name, about string
	confirm     marketodds.ConfirmMode
	viaBouncer  bool              // connect through PgBouncer (transaction pooling)
	execMode    pgx.QueryExecMode // the pool's DefaultQueryExecMode; 0: pgx's default (cache_statement)
	send        sendMode          // how the write statement goes; sendAsIs: as the store sends it
}

// newVariant makes the variant's pool and store, and migrates its schema
// through a direct connection (Migrate works through PgBouncer too, but the
// migration is not what is measured).
func (e *benchEnv) newVariant(spec variantSpec, iter int) *benchVariant {
	e.b.Helper()
	url := e.url
	if spec.viaBouncer {
		if e.bouncer == nil {
			e.b.Fatalf("variant %s needs PgBouncer", spec.name)
		}
		url = e.bouncer.URL()
	}
	v := &benchVariant{name: spec.name, about: spec.about, confirm: spec.confirm,
		schema: fmt.Sprintf("bench_%s_%d", strings.ReplaceAll(spec.name, "-", "_"), iter)}
	v.pool = newBenchPool(e.b, url, 1, func(pc *pgxpool.Config) {
		if spec.execMode != 0 {
			pc.ConnConfig.DefaultQueryExecMode = spec.execMode
		}
	})
	cfg := &marketodds.Config{Schema: v.schema, Confirm: spec.confirm, Now: func() time.Time { return benchBase }}
	mig, err := marketodds.NewStore(e.admin, cfg)
	if err != nil {
		e.b.Fatal(err)
	}
	if err := mig.Migrate(e.ctx); err != nil {
		e.b.Fatal(err)
	}
	var db marketodds.DB = v.pool
	if spec.send != sendAsIs {
		db = modeDB{Pool: v.pool, send: spec.send}
	}
	if v.store, err = marketodds.NewStore(db, cfg); err != nil {
		e.b.Fatal(err)
	}
	return v
}

func (v *benchVariant) close() { v.pool.Close() }

// schemaTables are the tables of a schema the library writes, for VACUUM.
func schemaTables(schema string) []string {
	var out []string
	for _, t := range []string{"market_odds_current", "market_odds_history", "market_scrapes", "market_scrape_log"} {
		out = append(out, pgx.Identifier{schema, t}.Sanitize())
	}
	return out
}

// phaseStats are what a timed phase cost: wall time, WAL, and CPU of this
// process (the Go side: validation, sorting, encoding) and of the server's
// processes (backends and background processes; PgBouncer's own is not
// counted).
type phaseStats struct {
	d            time.Duration
	walMB        float64
	goCPU, pgCPU time.Duration
}

// cpu is the CPU seconds of the Go process and the server together.
func (p phaseStats) cpu() float64 { return (p.goCPU + p.pgCPU).Seconds() }

func (p phaseStats) String() string {
	s := fmt.Sprintf("%s, WAL %.1f MB", p.d.Round(time.Millisecond), p.walMB)
	if p.goCPU > 0 || p.pgCPU > 0 {
		s += fmt.Sprintf(", CPU Go %s server %s", p.goCPU.Round(10*time.Millisecond), p.pgCPU.Round(10*time.Millisecond))
	}
	return s
}

// cpuMark is a point from which phaseStats are measured.
type cpuMark struct {
	lsn   string
	start time.Time
	goCPU time.Duration
	pg    map[int]time.Duration
}

func (e *benchEnv) mark() cpuMark {
	e.b.Helper()
	m := cpuMark{lsn: e.walLSN(), goCPU: procCPU(os.Getpid()), pg: e.serverCPU()}
	m.start = time.Now()
	return m
}

func (e *benchEnv) since(m cpuMark) phaseStats {
	e.b.Helper()
	p := phaseStats{d: time.Since(m.start)}
	p.goCPU = procCPU(os.Getpid()) - m.goCPU
	for pid, t := range e.serverCPU() {
		p.pgCPU += t - m.pg[pid]
	}
	p.walMB = e.walSince(m.lsn)
	return p
}

// serverCPU reads the CPU time of every server process that
// pg_stat_activity lists (client backends and the background processes),
// from /proc: the benchmark's server runs on this machine. Empty where
// /proc is unreadable.
func (e *benchEnv) serverCPU() map[int]time.Duration {
	e.b.Helper()
	rows, err := e.admin.Query(e.ctx, "SELECT pid FROM pg_stat_activity")
	if err != nil {
		e.b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		e.b.Fatal(err)
	}
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		if t := procCPU(int(pid)); t > 0 {
			out[int(pid)] = t
		}
	}
	return out
}

// procCPU is utime + stime of a process from /proc/PID/stat, 0 when
// unreadable. Linux reports them in USER_HZ ticks, 100 per second on every
// architecture Go supports.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime, stime are fields 14, 15
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * (time.Second / 100)
}

// digest is a count and a sum of row hashes of a table or view, over the
// events below eventsBelow: two relations with equal digests hold the same
// rows.
func (e *benchEnv) digest(rel string, eventsBelow int64) string {
	e.b.Helper()
	var s string
	if err := e.admin.QueryRow(e.ctx, "SELECT count(*) || '/' || coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) FROM "+
		rel+" t WHERE event_id < $1", eventsBelow).Scan(&s); err != nil {
		e.b.Fatal(err)
	}
	return s
}

// sameAs checks that a variant left what the schema ref left: the same
// history, and the same current rows as the readers see them
// (market_odds_live, which gives ConfirmScrapes' rows the confirmation
// ConfirmMarkets would have stored).
func (e *benchEnv) sameAs(ref string, v *benchVariant) {
	e.b.Helper()
	all := int64(1_000_000 + e.cfg.events)
	for _, rel := range []string{"market_odds_live", "market_odds_history"} {
		a := e.digest(pgx.Identifier{ref, rel}.Sanitize(), all)
		b := e.digest(pgx.Identifier{v.schema, rel}.Sanitize(), all)
		if a != b {
			e.b.Fatalf("%s and %s disagree on %s: %s vs %s", v.schema, ref, rel, b, a)
		}
	}
}

// setAutovacuum turns autovacuum on or off server-wide. Off while the
// steady cycles are timed: the cycle that one way leaves (~300,000 dead
// rows) would otherwise be vacuumed while the next way is timed, and its
// time and WAL counted against that way.
func (e *benchEnv) setAutovacuum(on bool) {
	e.b.Helper()
	e.exec(fmt.Sprintf("ALTER SYSTEM SET autovacuum = %t", on))
	e.exec("SELECT pg_reload_conf()")
}

// scrapeLogBytes is the size of the scrape log (its partitions and their
// indexes) and of market_scrapes, and the number of scrapes logged.
func (e *benchEnv) scrapeLogBytes(schema string) (logBytes, newestBytes, scrapes int64) {
	e.b.Helper()
	logBytes = e.queryInt(`SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint
FROM pg_partition_tree($1::regclass)`, pgx.Identifier{schema, "market_scrape_log"}.Sanitize())
	newestBytes = e.queryInt("SELECT pg_total_relation_size($1::regclass)", pgx.Identifier{schema, "market_scrapes"}.Sanitize())
	scrapes = e.queryInt("SELECT count(*) FROM " + pgx.Identifier{schema, "market_scrape_log"}.Sanitize())
	return logBytes, newestBytes, scrapes
}

// startBouncer starts a PgBouncer (transaction pooling) in front of the
// benchmark's server, or returns nil and why not (no binary; ODDSLEDGER_BENCH_PGBOUNCER=0).
func startBouncer(url string) (*pgbouncer.Bouncer, string, error) {
	if os.Getenv("ODDSLEDGER_BENCH_PGBOUNCER") == "0" {
		return nil, "ODDSLEDGER_BENCH_PGBOUNCER=0", nil
	}
	if _, err := pgbouncer.Binary(); err != nil {
		return nil, err.Error(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := pgbouncer.Start(ctx, url, pgbouncer.Options{})
	if err != nil {
		return nil, "", err
	}
	return b, "", nil
}

// sendMode is how a modeDB sends the store's write statement.
type sendMode int

const (
	sendAsIs          sendMode = iota // as the store sends it: the pool's default exec mode
	sendCacheDescribe                 // pgx.QueryExecModeCacheDescribe: described once per connection, then binary, one round trip
	sendDescribeExec                  // pgx.QueryExecModeDescribeExec: described every time (two round trips), binary
	sendExec                          // pgx.QueryExecModeExec: text parameters, parameter types from the statement's casts
	sendBinaryOIDs                    // pgconn ExecParams with the arrays' OIDs and binary format: one round trip, no description
	sendTextOIDs                      // the same in text format: tells the cost of text from that of unknown types
)

func (m sendMode) String() string {
	return [...]string{"as-is", "cache_describe", "describe_exec", "exec", "binary+OIDs", "text+OIDs"}[m]
}

// modeDB is a marketodds.DB around a pool that sends the store's write
// statement (the one statement with dozens of array parameters) in a way of
// its own, and everything else as the pool would. It stands for changes the
// write path could make (choose the exec mode of its write statement, or
// send it through pgconn with explicit OIDs and format codes), measured
// without changing it.
type modeDB struct {
	*pgxpool.Pool
	send sendMode
}

func (d modeDB) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return modeTx{Tx: tx, send: d.send}, nil
}

type modeTx struct {
	pgx.Tx
	send sendMode
}

func (t modeTx) Begin(ctx context.Context) (pgx.Tx, error) {
	sp, err := t.Tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return modeTx{Tx: sp, send: t.send}, nil
}

// isWriteStatement: the store's write statement is the one with more than
// 20 parameters.
func isWriteStatement(args []any) bool { return len(args) > 20 }

func (t modeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if !isWriteStatement(args) {
		return t.Tx.QueryRow(ctx, sql, args...)
	}
	switch t.send {
	case sendCacheDescribe:
		return t.Tx.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
	case sendDescribeExec:
		return t.Tx.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
	case sendExec:
		return t.Tx.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	case sendBinaryOIDs:
		return t.execParams(ctx, sql, args, pgtype.BinaryFormatCode)
	case sendTextOIDs:
		return t.execParams(ctx, sql, args, pgtype.TextFormatCode)
	}
	return t.Tx.QueryRow(ctx, sql, args...)
}

// arrayOID is the PostgreSQL array type of the write statement's Go
// parameter types.
func arrayOID(v any) (uint32, bool) {
	switch v.(type) {
	case []int64:
		return pgtype.Int8ArrayOID, true
	case []int32:
		return pgtype.Int4ArrayOID, true
	case []string:
		return pgtype.TextArrayOID, true
	case []float64:
		return pgtype.Float8ArrayOID, true
	case []time.Time:
		return pgtype.TimestamptzArrayOID, true
	case []bool:
		return pgtype.BoolArrayOID, true
	}
	return 0, false
}

// execParams sends the statement as one Parse/Bind/Describe/Execute/Sync
// (the unnamed statement: what PgBouncer's transaction pooling allows) with
// each parameter's OID and the given format, and the result in binary.
func (t modeTx) execParams(ctx context.Context, sql string, args []any, format int16) pgx.Row {
	conn := t.Conn()
	m := conn.TypeMap()
	values := make([][]byte, len(args))
	oids := make([]uint32, len(args))
	formats := make([]int16, len(args))
	var buf []byte
	for i, a := range args {
		oid, ok := arrayOID(a)
		if !ok {
			return errRow{fmt.Errorf("execParams: parameter %d: no OID for %T", i+1, a)}
		}
		oids[i], formats[i] = oid, format
		start := len(buf)
		enc, err := m.Encode(oid, format, a, buf)
		if err != nil {
			return errRow{fmt.Errorf("execParams: parameter %d: %w", i+1, err)}
		}
		if enc == nil { // a nil slice: NULL, as pgx sends it (unnest(NULL) is no rows)
			continue
		}
		buf = enc
		values[i] = buf[start:len(buf):len(buf)]
	}
	res := conn.PgConn().ExecParams(ctx, sql, values, oids, formats, []int16{pgtype.BinaryFormatCode}).Read()
	if res.Err != nil {
		return errRow{res.Err}
	}
	if len(res.Rows) != 1 {
		return errRow{fmt.Errorf("execParams: %d rows, want 1", len(res.Rows))}
	}
	return valuesRow{m: m, fields: res.FieldDescriptions, values: res.Rows[0]}
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type valuesRow struct {
	m      *pgtype.Map
	fields []pgconn.FieldDescription
	values [][]byte
}

func (r valuesRow) Scan(dest ...any) error {
	if len(dest) != len(r.values) {
		return fmt.Errorf("scan: %d destinations for %d columns", len(dest), len(r.values))
	}
	for i, d := range dest {
		if err := r.m.Scan(r.fields[i].DataTypeOID, r.fields[i].Format, r.values[i], d); err != nil {
			return fmt.Errorf("scan column %s: %w", r.fields[i].Name, err)
		}
	}
	return nil
}

var _ marketodds.DB = modeDB{}
