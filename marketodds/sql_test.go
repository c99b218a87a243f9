package marketodds

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/sql")

// storeStatements are every statement a store loads, by name, as rendered
// for schema "odds".
func storeStatements() []statement {
	var out []statement
	for _, group := range []any{newWriteStatements("odds"), newCurrentStatements("odds"),
		newPartitionStatements("odds"), newSettingsStatements("odds"), newReadStatements("odds"),
		newMigrateStatements("odds")} {
		v := reflect.New(reflect.TypeOf(group)).Elem()
		v.Set(reflect.ValueOf(group))
		for i := range v.NumField() {
			f := v.Field(i) // unexported: read it through its address
			out = append(out, *(*statement)(unsafe.Pointer(f.UnsafeAddr())))
		}
	}
	return out
}

// The SQL the store sends is exactly what testdata/sql/*.golden.sql holds:
// a change to a statement shows up in review as a change of its golden
// file. go test -run TestSQLGolden -update rewrites them.
func TestSQLGolden(t *testing.T) {
	dir := filepath.Join("testdata", "sql")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range storeStatements() {
		var b strings.Builder
		b.WriteString(st.sql)
		b.WriteString("\n-- parameters:\n")
		for i, p := range st.params {
			b.WriteString("--   $" + itoa(i+1) + " @" + p + "\n")
		}
		path := filepath.Join(dir, st.name+".golden.sql")
		if *update {
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestSQLGolden -update)", err)
		}
		if diff := cmp.Diff(string(want), b.String()); diff != "" {
			t.Errorf("%s differs from %s (-golden +rendered):\n%s", st.name, path, diff)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// Every embedded .sql file is a statement some store loads.
func TestSQLFilesAllLoaded(t *testing.T) {
	entries, err := sqlFiles.ReadDir("sql")
	if err != nil {
		t.Fatal(err)
	}
	var loaded []string
	for _, st := range storeStatements() {
		loaded = append(loaded, st.name)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".sql")
		if !slices.Contains(loaded, name) {
			t.Errorf("sql/%s is embedded but no store loads it", e.Name())
		}
	}
}

func TestNumberParams(t *testing.T) {
	sql, names := numberParams(`SELECT @a, '@not', "@col", @b::int -- @c
/* @d */ FROM t WHERE x = @a AND y @> z AND e = @e_2`)
	want := `SELECT $1, '@not', "@col", $2::int -- @c
/* @d */ FROM t WHERE x = $1 AND y @> z AND e = $3`
	if sql != want {
		t.Errorf("numberParams:\n%s\nwant\n%s", sql, want)
	}
	if diff := cmp.Diff([]string{"a", "b", "e_2"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

// A statement and its parameter struct that disagree fail at load, naming
// both; args returns the struct's values in the statement's order.
func TestLoadStatementChecksParams(t *testing.T) {
	type wrongOrder struct {
		Since time.Time `sql:"since"`
		Extra int       `sql:"extra"`
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "scan_current") {
				t.Errorf("recover() = %v, want a panic naming the statement", r)
			}
		}()
		loadStatement("scan_current", "odds", wrongOrder{})
	}()
	p := marketHistoryParams{EventID: 1, Bookmaker: "b", MarketID: "m", LineKey: 2.5, From: time.Unix(1, 0), To: time.Unix(2, 0)}
	if diff := cmp.Diff([]any{int64(1), "b", "m", 2.5, time.Unix(1, 0), time.Unix(2, 0)}, args(p)); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}
