package marketodds_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/internal/pgbouncer"
)

// BenchmarkExecModes asks why the write path is slower in pgx's exec mode
// (QueryExecModeExec: what a host behind PgBouncer 1.18 in transaction
// pooling configures) than in pgx's default (cache_statement: a named
// prepared statement per connection), and what the library could do about
// it. The steady cycle of BenchmarkCycle (cycle 2, ConfirmMarkets) is
// written by the library in each of these ways, each into a schema of its
// own with the same first load, on one server (and one PgBouncer in front
// of it, transaction pooling) per run:
//
//	default          pool default cache_statement: named statement, binary parameters
//	exec             pool default exec: unnamed statement, parameters in text, types from the casts
//	describe         pool default exec, write statement sent with QueryExecModeCacheDescribe:
//	                 described once per connection, then unnamed statement, binary, one round trip
//	describe-exec    the same with QueryExecModeDescribeExec: described every time, two round trips
//	text-oids        write statement sent through pgconn.ExecParams with the arrays' OIDs, text
//	binary-oids      the same in binary: one round trip, no description, nothing cached
//	simple           pool default simple_protocol: parameters interpolated into the SQL text
//	pgb-exec         exec through PgBouncer
//	pgb-describe     describe through PgBouncer
//	pgb-binary-oids  binary-oids through PgBouncer
//
// The last five are ways the library could send its write statement
// (modeDB stands in for the change). The order of the ways rotates from run
// to run, so that none is always first after the first loads. Reported per
// way: rows/s, the ratio to default, and the CPU seconds of the Go process
// and of the server's processes (PgBouncer's own not counted), which tell
// encoding in Go from parsing and planning on the server; the cycle's
// wall time is also spent waiting for WAL flushes and, on a shared
// machine, for a CPU.
//
//	go test -run '^$' -bench ExecModes -benchtime 1x -count 6 -timeout 90m ./marketodds | tee modes.txt
//
// ODDSLEDGER_BENCH_EVENTS, _BATCH and _SETTINGS apply as in BenchmarkCycle; ODDSLEDGER_BENCH_PGBOUNCER=0 leaves PgBouncer out;
// ODDSLEDGER_BENCH_MODES=exec,pgb-describe (say) runs only those ways and
// default.
func BenchmarkExecModes(b *testing.B) {
	cfg := benchConfigFromEnv(b)
	logPath, err := openBenchLog()
	if err != nil {
		b.Fatalf("benchmark log: %v", err)
	}
	b.Logf("events=%d batch=%d; detailed log: %s", cfg.events, cfg.batch, logPath)
	srv, bouncer := startBenchServers(b, cfg, "pgb-* ways are left out")
	specs := []variantSpec{
		{name: "default", about: "cache_statement"},
		{name: "exec", about: "pool default exec", execMode: pgx.QueryExecModeExec},
		{name: "describe", about: "exec pool, write statement in cache_describe", execMode: pgx.QueryExecModeExec, send: sendCacheDescribe},
		{name: "describe-exec", about: "exec pool, write statement in describe_exec", execMode: pgx.QueryExecModeExec, send: sendDescribeExec},
		{name: "text-oids", about: "exec pool, write statement through pgconn, OIDs, text", execMode: pgx.QueryExecModeExec, send: sendTextOIDs},
		{name: "binary-oids", about: "exec pool, write statement through pgconn, OIDs, binary", execMode: pgx.QueryExecModeExec, send: sendBinaryOIDs},
		{name: "simple", about: "pool default simple_protocol", execMode: pgx.QueryExecModeSimpleProtocol},
	}
	if bouncer != nil {
		specs = append(specs,
			variantSpec{name: "pgb-exec", about: "PgBouncer, pool default exec", execMode: pgx.QueryExecModeExec, viaBouncer: true},
			variantSpec{name: "pgb-describe", about: "PgBouncer, exec pool, write statement in cache_describe",
				execMode: pgx.QueryExecModeExec, viaBouncer: true, send: sendCacheDescribe},
			variantSpec{name: "pgb-binary-oids", about: "PgBouncer, exec pool, write statement through pgconn, OIDs, binary",
				execMode: pgx.QueryExecModeExec, viaBouncer: true, send: sendBinaryOIDs})
	}

	if only := os.Getenv("ODDSLEDGER_BENCH_MODES"); only != "" {
		want := strings.Split(only, ",")
		specs = slices.DeleteFunc(specs, func(s variantSpec) bool { return s.name != "default" && !slices.Contains(want, s.name) })
	}
	sums := make(map[string]*modeSums, len(specs))
	for _, s := range specs {
		sums[s.name] = &modeSums{}
	}
	for i := range b.N {
		for name, r := range runModesScenario(b, srv.URL(), bouncer, cfg, specs, i) {
			sums[name].add(r)
		}
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	for _, s := range specs {
		r := sums[s.name]
		b.ReportMetric(r.rate/n, s.name+"-rows/s")
		if s.name != "default" {
			b.ReportMetric(r.ratio/n, s.name+"/default")
		}
		b.ReportMetric(r.goCPU/n, s.name+"-go-cpu-s/cycle")
		b.ReportMetric(r.pgCPU/n, s.name+"-pg-cpu-s/cycle")
	}
}

// modeResult is one way's figures in one run.
type modeResult struct {
	rate, ratio  float64 // rows/s; rows/s over default's
	goCPU, pgCPU float64 // seconds
}

type modeSums modeResult

func (s *modeSums) add(r modeResult) {
	s.rate += r.rate
	s.ratio += r.ratio
	s.goCPU += r.goCPU
	s.pgCPU += r.pgCPU
}

// modesRuns counts the runs of BenchmarkExecModes in this process: the
// order of the ways rotates by it.
var modesRuns atomic.Int64

func runModesScenario(b *testing.B, url string, bouncer *pgbouncer.Bouncer, cfg benchConfig, specs []variantSpec, iter int) map[string]modeResult {
	ctx := context.Background()
	e := &benchEnv{b: b, ctx: ctx, cfg: cfg, url: url, bouncer: bouncer}
	e.admin = newBenchPool(b, url, 4, nil)
	defer e.admin.Close()
	var variants []*benchVariant
	defer func() {
		for _, v := range variants {
			v.close()
			if _, err := e.admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{v.schema}.Sanitize()+" CASCADE"); err != nil {
				b.Errorf("drop schema %s: %v", v.schema, err)
			}
		}
	}()
	e.setAutovacuum(false)
	for _, s := range specs {
		variants = append(variants, e.newVariant(s, iter))
	}
	run := modesRuns.Add(1) - 1
	order := slices.Clone(variants)
	rot := int(run) % len(order)
	order = append(order[rot:], order[:rot]...)

	wl := newBenchWorkload(cfg.events, cfg.change)
	cycle1, cycle2 := wl.next(), wl.next()
	markets := len(cycle1)
	e.logf("BenchmarkExecModes run %d at %s: %d markets/cycle, batch %d; load average %s; order %v",
		run, time.Now().Format(time.RFC3339), markets, cfg.batch, loadAverage(), names(order))
	for _, v := range order {
		e.checkpoint()
		ps, _ := e.timeLib(v.store, cycle1, 1)
		e.logf("first load, %-16s %8.0f rows/s (%s)", v.name+":", perSecond(markets, ps.d), ps)
	}
	for _, v := range order {
		for _, t := range schemaTables(v.schema) {
			e.exec("VACUUM (ANALYZE) " + t)
		}
	}
	out := make(map[string]modeResult, len(order))
	for _, v := range order {
		e.checkpoint()
		ps, _ := e.timeLib(v.store, cycle2, 2)
		out[v.name] = modeResult{rate: perSecond(markets, ps.d), goCPU: ps.goCPU.Seconds(), pgCPU: ps.pgCPU.Seconds()}
		e.logf("cycle 2, %-16s %8.0f rows/s (%s; %s)", v.name+":", out[v.name].rate, ps, v.about)
	}
	ref := out["default"].rate
	for name, r := range out {
		r.ratio = r.rate / ref
		out[name] = r
	}
	for _, v := range variants[1:] {
		e.sameAs(variants[0].schema, v)
	}
	return out
}

func names(vs []*benchVariant) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.name
	}
	return out
}
