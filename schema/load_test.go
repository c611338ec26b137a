package schema

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLoadGolden reads every file under testdata/config and compares the
// diagnostics (or "ok") with the .golden file beside it.
func TestLoadGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/config/*.yaml")
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := "ok\n"
			if _, err := Parse(filepath.Base(file), data, nil); err != nil {
				var diags Diagnostics
				if !errors.As(err, &diags) {
					t.Fatalf("got %T %v, want Diagnostics", err, err)
				}
				for _, d := range diags {
					if d.Pos.Line == 0 && d.Pos.Env == "" {
						t.Errorf("diagnostic without a position: %v", d)
					}
					if d.Hint == "" {
						t.Errorf("diagnostic without a fix: %v", d)
					}
				}
				got = err.Error() + "\n"
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExamplesAreValid(t *testing.T) {
	t.Parallel()
	examples, _ := filepath.Glob("../examples/*/abe.yaml")
	if len(examples) == 0 {
		t.Fatal("no examples/*/abe.yaml found")
	}
	for _, path := range append([]string{"../config.example.yaml", "../cmd/abe/scaffold/abe.yaml"}, examples...) {
		if _, err := Load(path); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Parallel()
	src := `
server:
  listen: ${HOST:-127.0.0.1}:${PORT}
  shutdown_timeout: ${GRACE:-5s}
database:
  url: ${DATABASE_URL}
  max_conns: ${CONNS}
auth:
  secret: "${SECRET}"
collections:
  notes:
    fields:
      title: { type: text, default: "${NOT_EXPANDED_IN_KEYS_ONLY}" }
`
	cfg, err := Parse("abe.yaml", []byte(src), []string{"PORT=9000", "CONNS=7", "SECRET=0123456789abcdef0123456789abcdef", "NOT_EXPANDED_IN_KEYS_ONLY=hello"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:9000" || time.Duration(cfg.Server.ShutdownTimeout) != 5*time.Second {
		t.Errorf("server = %+v", cfg.Server)
	}
	if cfg.Database.URL != "" || cfg.Database.MaxConns != 7 {
		t.Errorf("an unset variable must read as empty text and a numeric one as a number: %+v", cfg.Database)
	}
	if cfg.Auth.Secret != "0123456789abcdef0123456789abcdef" {
		t.Errorf("secret = %q", cfg.Auth.Secret)
	}
	if d := cfg.Collections[0].Fields[0].Default; d != "hello" {
		t.Errorf("default = %v", d)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	src := "server:\n  listen: 127.0.0.1:8090\ncollections: {}\n"
	env := []string{
		"ABE_SERVER_LISTEN=0.0.0.0:80",
		"ABE_DATABASE_URL=postgres://u:p@db/app",
		"ABE_DATABASE_MAX_CONNS=3",
		"ABE_SERVER_SHUTDOWN_TIMEOUT=1m",
		"ABE_TEST_DATABASE_URL=ignored: not a section",
		"ABE_CONFIG=ignored too",
	}
	cfg, err := Parse("abe.yaml", []byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "0.0.0.0:80" || cfg.Database.URL != "postgres://u:p@db/app" || cfg.Database.MaxConns != 3 || time.Duration(cfg.Server.ShutdownTimeout) != time.Minute {
		t.Errorf("overrides not applied: %+v %+v", cfg.Server, cfg.Database)
	}

	_, err = Parse("abe.yaml", []byte(src), []string{"ABE_DATABASE_MAX_CONNS=lots", "ABE_SERVER_LISTN=:1"})
	want := "$ABE_DATABASE_MAX_CONNS: database.max_conns: expected integer, got string"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "did you mean ABE_SERVER_LISTEN?") {
		t.Errorf("got %v\nwant it to name the variables: %q and a typo hint", err, want)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("abe.yaml", []byte(`
collections:
  a:
    fields:
      opt: { type: relation, collection: users }
      req: { type: relation, collection: users, required: true }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != DefaultListen || cfg.Database.Schema != "public" || cfg.Database.MaxConns != DefaultMaxConns {
		t.Errorf("defaults: %+v %+v", cfg.Server, cfg.Database)
	}
	if a := cfg.Collection("a"); a.Field("opt").OnDelete != OnDeleteSetNull || a.Field("req").OnDelete != OnDeleteRestrict {
		t.Errorf("on_delete defaults: %q %q", a.Field("opt").OnDelete, a.Field("req").OnDelete)
	}
}

func TestRateLimitDefaults(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		yaml            string
		def, auth, writ RateClass
	}{
		{yaml: "", def: RateClass{3000, Duration(time.Minute), 3000}, auth: RateClass{20, Duration(time.Minute), 20}, writ: RateClass{1200, Duration(time.Minute), 2000}},
		// A rate without a burst keeps the old meaning: all at once.
		{yaml: "server: { rate_limit: { requests: 10, writes: { requests: 5, window: 10s } } }",
			def: RateClass{10, Duration(time.Minute), 10}, auth: RateClass{20, Duration(time.Minute), 20}, writ: RateClass{5, Duration(10 * time.Second), 5}},
		{yaml: "server: { rate_limit: { burst: 50, writes: { burst: 7 }, auth: { requests: 3, burst: 6 } } }",
			def: RateClass{3000, Duration(time.Minute), 50}, auth: RateClass{3, Duration(time.Minute), 6}, writ: RateClass{1200, Duration(time.Minute), 7}},
	} {
		cfg, err := Parse("abe.yaml", []byte(c.yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		rl := cfg.Server.RateLimit
		if got := (RateClass{rl.Requests, rl.Window, rl.Burst}); got != c.def || rl.Auth != c.auth || rl.Writes != c.writ {
			t.Errorf("%q: default %+v auth %+v writes %+v", c.yaml, got, rl.Auth, rl.Writes)
		}
	}
}

func TestAliases(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("abe.yaml", []byte(`
collections:
  a:
    fields:
      title: &title { type: text, required: true, max: 10 }
  b:
    fields:
      title: *title
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := cfg.Collection("b").Field("title"); f.Type != Text || !f.Required || *f.Max != 10 {
		t.Errorf("alias not resolved: %+v", f)
	}
}

func TestAliasBomb(t *testing.T) {
	t.Parallel()
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		src += name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = name
	}
	// 10^10 values if expanded: without a bound this would not return.
	_, err := Parse("abe.yaml", []byte(src), nil)
	if err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Fatalf("got %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "15m": 15 * time.Minute, "1h30m": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "-1d", "soon", "-5s"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

// FuzzParse feeds arbitrary bytes to the loader: it must answer with a
// Config or Diagnostics, never panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	files = append(files, "../examples/todo/abe.yaml", "../config.example.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("collections: { a: { fields: { b: { type: relation, collection: a, many: true, default: [x] } } } }"))
	f.Add([]byte("server: &a { listen: *a }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, []string{"ABE_SERVER_LISTEN=:1", "X=${X}"})
		if err != nil {
			var diags Diagnostics
			if !errors.As(err, &diags) || len(diags) == 0 {
				t.Fatalf("error is not Diagnostics: %T %v", err, err)
			}
			return
		}
		// A valid config must also plan without trouble.
		_ = Desired(cfg)
	})
}
