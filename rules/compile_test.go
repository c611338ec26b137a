package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/abe-stack/abe/schema"
)

var update = os.Getenv("UPDATE_GOLDEN") != ""

// TestCompileGolden compiles each file under testdata/errors and compares
// the diagnostics (or "ok") with the .golden file beside it. Set
// UPDATE_GOLDEN=1 to rewrite them.
func TestCompileGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/errors/*.yaml")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := schema.Parse(filepath.Base(file), data, nil)
			got := "ok\n"
			if err != nil {
				got = "schema: " + err.Error() + "\n"
			} else if _, err := Compile(cfg, nil); err != nil {
				var diags schema.Diagnostics
				if !errors.As(err, &diags) {
					t.Fatalf("got %T %v, want Diagnostics", err, err)
				}
				for _, d := range diags {
					if d.Pos.Line == 0 || d.Hint == "" {
						t.Errorf("diagnostic without a position or a fix: %v", d)
					}
				}
				got = err.Error() + "\n"
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExamplesCompile(t *testing.T) {
	t.Parallel()
	examples, _ := filepath.Glob("../examples/*/abe.yaml")
	if len(examples) == 0 {
		t.Fatal("no examples/*/abe.yaml found")
	}
	for _, path := range append([]string{"../config.example.yaml", "../cmd/abe/scaffold/abe.yaml"}, examples...) {
		cfg, err := schema.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Compile(cfg, nil); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// TestCompilePartial: abe validate compiles the rules of a file that has
// other problems too, decoded as far as they allow; whatever the file,
// Compile answers and never panics.
func TestCompilePartial(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("../schema/testdata/config/*.yaml")
	more, _ := filepath.Glob("testdata/errors/*.yaml")
	for _, file := range append(files, more...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		compilePartial(t, data)
	}
}

func compilePartial(t *testing.T, data []byte) {
	t.Helper()
	cfg, _, err := schema.ParsePartial("abe.yaml", data, nil)
	if err != nil || cfg == nil {
		return
	}
	_, _ = Compile(cfg, nil) //nolint:errcheck // only a panic fails
}

func FuzzCompilePartial(f *testing.F) {
	files, _ := filepath.Glob("testdata/errors/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("collections:\n  Bad-Name:\n    fields: { a: { type: txt } }\n    rules: { list: \"record.a == 1\" }\n"))
	f.Add([]byte("collections:\n  t:\n    fields: { in: { type: text }, b: { type: relation, collection: nope } }\n    rules: { list: { x: 1 }, read: \"record.in\" }\n"))
	f.Fuzz(func(t *testing.T, data []byte) { compilePartial(t, data) })
}
