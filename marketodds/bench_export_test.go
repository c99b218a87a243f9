package marketodds

import (
	"reflect"

	"github.com/jackc/pgx/v5"
)

// BenchWriteArgs runs the Go side of one write of b, without a server:
// validation, sorting and grouping (prepare), and the write statement's
// arguments (params), as WriteMarketBatch computes them for its first
// statement. For BenchmarkWriteGoSide (bench_goside_test.go).
func BenchWriteArgs(s *Store, b Batch) []any {
	p := s.prepare(&b)
	return args(p.params(p.units, confirmByUpdate))
}

// BenchWriteNamedArgs is BenchWriteArgs by parameter name (the sql tags of
// writeMarketsParams), for statements other than the store's that take the
// same arrays: BenchmarkWriteFloor (bench_floor_test.go).
func BenchWriteNamedArgs(s *Store, b Batch) pgx.NamedArgs {
	p := s.prepare(&b)
	params := p.params(p.units, confirmByUpdate)
	values := args(params)
	named := make(pgx.NamedArgs, len(values))
	for i, name := range paramTags(reflect.TypeOf(params)) {
		named[name] = values[i]
	}
	return named
}
