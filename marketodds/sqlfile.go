package marketodds

import (
	"embed"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Every statement the store sends lives in sql/NAME.sql, readable on its
// own. Two things are filled in once, when a Store is made, never per call:
//
//   - the schema: a table name written /* TEMPLATE: schema */market_odds_current
//     becomes "odds".market_odds_current (quoted, Config.Schema);
//   - named parameters: @event_ids, @captured_at, ... become $1, $2, ... in
//     the order they first appear.
//
// Each statement has a parameter struct whose fields carry the parameter
// names in `sql:"..."` tags, in the statement's parameter order; loading
// checks that, so a reader maps every parameter to a field by name, without
// counting, and a statement and its struct cannot drift apart.
//
//go:embed sql/*.sql
var sqlFiles embed.FS

const schemaTemplate = "/* TEMPLATE: schema */"

// statement is one SQL statement, ready to send.
type statement struct {
	name   string   // the file's base name
	sql    string   // schema filled in, parameters as $n
	params []string // parameter names; params[i] is $(i+1)
}

// loadStatement reads sql/name.sql, fills in the schema and numbers the
// parameters. paramsType is the statement's parameter struct (nil for none);
// a mismatch between its tags and the statement's parameters is a bug in
// this package, so it panics (every test that makes a Store would fail).
func loadStatement(name, schema string, paramsType any) statement {
	raw, err := sqlFiles.ReadFile("sql/" + name + ".sql")
	if err != nil {
		panic(fmt.Sprintf("marketodds: embedded statement %s: %v", name, err))
	}
	text := strings.ReplaceAll(strings.TrimSpace(string(raw)), schemaTemplate, pgx.Identifier{schema}.Sanitize()+".")
	st := statement{name: name}
	st.sql, st.params = numberParams(text)
	var want []string
	if paramsType != nil {
		want = paramTags(reflect.TypeOf(paramsType))
	}
	if !slices.Equal(st.params, want) {
		panic(fmt.Sprintf("marketodds: statement %s has parameters %v, its struct %T has %v", name, st.params, paramsType, want))
	}
	return st
}

// paramTags lists the sql tags of a parameter struct's fields, in order.
func paramTags(t reflect.Type) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tags := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("sql"); tag != "" {
			tags = append(tags, tag)
		}
	}
	return tags
}

// args returns the values of a parameter struct's tagged fields, in order:
// the arguments of its statement. Reflection costs well under a microsecond
// per call, against milliseconds for the statement.
func args(params any) []any {
	v := reflect.ValueOf(params)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	t := v.Type()
	out := make([]any, 0, t.NumField())
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("sql") != "" {
			out = append(out, v.Field(i).Interface())
		}
	}
	return out
}

// numberParams rewrites @name parameters to $n, numbered in order of first
// appearance, and returns the names. It leaves string literals, quoted
// identifiers and comments alone.
func numberParams(sql string) (string, []string) {
	var b strings.Builder
	var names []string
	isName := func(c byte, first bool) bool {
		return c == '_' || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9')
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"': // literal or quoted identifier: copy to its end
			j := i + 1
			for j < len(sql) && sql[j] != c {
				j++
			}
			b.WriteString(sql[i:min(j+1, len(sql))])
			i = j + 1
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				j = len(sql) - i
			}
			b.WriteString(sql[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			j := strings.Index(sql[i:], "*/")
			if j < 0 {
				j = len(sql) - i - 2
			}
			b.WriteString(sql[i : i+j+2])
			i += j + 2
		case c == '@' && i+1 < len(sql) && isName(sql[i+1], true):
			j := i + 1
			for j < len(sql) && isName(sql[j], false) {
				j++
			}
			name := sql[i+1 : j]
			n := slices.Index(names, name)
			if n < 0 {
				names = append(names, name)
				n = len(names) - 1
			}
			fmt.Fprintf(&b, "$%d", n+1)
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), names
}
