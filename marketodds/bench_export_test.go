package marketodds

// BenchWriteArgs runs the Go side of one write of b, without a server:
// validation, sorting and grouping (prepare), and the write statement's
// arguments (params), as WriteMarketBatch computes them for its first
// statement. For BenchmarkWriteGoSide (bench_goside_test.go).
func BenchWriteArgs(s *Store, b Batch) []any {
	p := s.prepare(&b)
	return args(p.params(p.units, confirmByUpdate))
}
