package cli

import (
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100200300: "100,200,300"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// parseCommon parses args as a command does: the Common flags with d's
// defaults, then Parsed.
func parseCommon(d Defaults, args ...string) (*Common, *flag.FlagSet, error) {
	c := &Common{}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs, d)
	if err := fs.Parse(args); err != nil {
		return c, fs, err
	}
	return c, fs, c.Parsed(fs)
}

var testDefaults = Defaults{Schema: "test_example", Change: 0.1, Horizon: 12 * time.Hour}

func TestCommonDefaults(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	c, fs, err := parseCommon(testDefaults)
	if err != nil {
		t.Fatal(err)
	}
	if c.DB != "" || c.Schema != "test_example" || c.Level != slog.LevelInfo || c.Drain != 30*time.Second ||
		c.Seed != 1 || c.Horizon != 12*time.Hour || c.Change != 0.1 {
		t.Errorf("defaults: %+v", c)
	}
	for name, want := range map[string]string{"db": "", "schema": "test_example", "v": "info", "drain": "30s",
		"seed": "1", "horizon": "12h0m0s", "change": "0.1"} {
		if f := fs.Lookup(name); f == nil || f.DefValue != want {
			t.Errorf("-%s: %+v, want the default %q", name, f, want)
		}
	}
	if f := fs.Lookup("schema"); f == nil || !strings.Contains(f.Usage, "DROPPED AND RECREATED") {
		t.Errorf("-schema's help does not warn that it is dropped: %+v", f)
	}
	if err := c.CheckChange(); err != nil {
		t.Errorf("CheckChange, default -change: %v", err)
	}
	if err := c.CheckSchema(); err != nil {
		t.Errorf("CheckSchema, default -schema: %v", err)
	}
}

func TestCommonDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://env/db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "postgres://env/db"},
		{[]string{"-db", ""}, "postgres://env/db"},
		{[]string{"-db", "postgres://flag/db"}, "postgres://flag/db"},
	} {
		if c, _, err := parseCommon(testDefaults, tc.args...); err != nil || c.DB != tc.want {
			t.Errorf("DATABASE_URL set, %q: DB %q, %v; want %q", tc.args, c.DB, err, tc.want)
		}
	}
}

func TestCommonParsedRefuses(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	for _, tc := range []struct {
		args []string
		want string // the error's start
	}{
		{[]string{"-v", "loud"}, "-v: "},
		{[]string{"-v", ""}, "-v: "},
		{[]string{"extra"}, `unexpected arguments: ["extra"]`},
		{[]string{"-v", "loud", "a", "b"}, `unexpected arguments: ["a" "b"]`},
	} {
		if _, _, err := parseCommon(testDefaults, tc.args...); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("parse %q: %v, want %q", tc.args, err, tc.want)
		}
	}
	if c, _, err := parseCommon(testDefaults, "-v", "debug"); err != nil || c.Level != slog.LevelDebug {
		t.Errorf("-v debug: %+v, %v", c, err)
	}
}

func TestCommonChecks(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	for arg, want := range map[string]string{
		"1.5": "-change must be within [0, 1], got 1.5", "-0.1": "-change must be within [0, 1], got -0.1",
		"NaN": "-change must be within [0, 1], got NaN", "0": "", "1": "",
	} {
		c, _, err := parseCommon(testDefaults, "-change", arg)
		if err != nil {
			t.Fatalf("-change %s: %v", arg, err)
		}
		if err := c.CheckChange(); (err == nil) != (want == "") || err != nil && err.Error() != want {
			t.Errorf("-change %s: CheckChange() = %v, want %q", arg, err, want)
		}
	}
	for schema, refused := range map[string]bool{
		"": true, "public": true, "Public": true, "information_schema": true, "pg_catalog": true, "PG_toast": true,
		"oddsledger_example": false, "my_pg_schema": false,
	} {
		err := (&Common{Schema: schema}).CheckSchema()
		if refused && (err == nil || !strings.HasPrefix(err.Error(), "-schema \""+schema+"\": this program drops")) ||
			!refused && err != nil {
			t.Errorf("CheckSchema, -schema %q: %v, refused %v", schema, err, refused)
		}
	}
}
