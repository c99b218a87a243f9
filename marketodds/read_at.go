package marketodds

// readStatements are the statements of the read path (MarketsAt, History,
// OpeningClosing, ...), loaded once per Store.
type readStatements struct{}

func newReadStatements(schema string) readStatements {
	_ = schema
	return readStatements{}
}
