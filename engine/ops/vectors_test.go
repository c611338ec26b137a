package ops

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// vectorDir holds the test vectors shared with the TypeScript SDK.
const vectorDir = "../../testdata/operations"

type vectorFile struct {
	Description string       `json:"description"`
	Cases       []vectorCase `json:"cases"`
}

type vectorCase struct {
	Name     string          `json:"name"`
	Before   map[string]any  `json:"before"`
	Op       json.RawMessage `json:"op"`
	After    map[string]any  `json:"after"`
	Inverse  json.RawMessage `json:"inverse"`
	Restored map[string]any  `json:"restored"`
	Error    string          `json:"error"`
}

// errorKinds maps the error names of the vectors to the sentinels.
var errorKinds = map[string]error{"bad_path": ErrBadPath, "not_a_list": ErrNotAList}

func loadVectors(t testing.TB) map[string]vectorFile {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no vector files in %s (err %v)", vectorDir, err)
	}
	out := map[string]vectorFile{}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		var f vectorFile
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[filepath.Base(name)] = f
	}
	return out
}

func TestVectorFiles(t *testing.T) {
	files := loadVectors(t)
	total := 0
	seen := map[string]bool{}
	for name, f := range files {
		if f.Description == "" {
			t.Errorf("%s has no description", name)
		}
		for _, c := range f.Cases {
			if c.Name == "" || seen[c.Name] {
				t.Errorf("%s: case name %q is empty or not unique", name, c.Name)
			}
			seen[c.Name] = true
			if c.Before == nil || len(c.Op) == 0 {
				t.Errorf("%s: %s: before and op are required", name, c.Name)
			}
			if c.Error != "" {
				if c.After != nil || c.Inverse != nil || c.Restored != nil {
					t.Errorf("%s: %s: an error case has only name, before, op and error", name, c.Name)
				}
				if _, ok := errorKinds[c.Error]; !ok && c.Error != "decode" {
					t.Errorf("%s: %s: unknown error %q", name, c.Name, c.Error)
				}
			} else if c.After == nil || c.Inverse == nil {
				t.Errorf("%s: %s: after and inverse are required", name, c.Name)
			}
		}
		total += len(f.Cases)
	}
	for _, want := range []string{"set.json", "list_insert.json", "list_remove.json", "errors.json"} {
		if _, ok := files[want]; !ok {
			t.Errorf("missing %s", want)
		}
	}
	if total < 60 {
		t.Errorf("%d vectors; want at least 60", total)
	}
	t.Logf("%d vectors in %d files", total, len(files))
}

func TestVectors(t *testing.T) {
	for file, f := range loadVectors(t) {
		for _, c := range f.Cases {
			t.Run(strings.TrimSuffix(file, ".json")+"/"+c.Name, func(t *testing.T) {
				if c.Error == "" {
					runVector(t, c)
				} else {
					runErrorVector(t, c)
				}
			})
		}
	}
}

// decodeVector decodes an op of a vector through both entry points, which
// must agree.
func decodeVector(t *testing.T, raw json.RawMessage) (Op, error) {
	t.Helper()
	list, err := Decode([]byte("[" + string(raw) + "]"))
	var one Op
	oneErr := json.Unmarshal(raw, &one)
	if (err == nil) != (oneErr == nil) {
		t.Fatalf("Decode error %v but Op.UnmarshalJSON error %v", err, oneErr)
	}
	if err != nil {
		return Op{}, err
	}
	if diff := cmp.Diff(list[0], one); diff != "" {
		t.Fatalf("Decode and Op.UnmarshalJSON differ (-Decode +Unmarshal):\n%s", diff)
	}
	return one, nil
}

func runVector(t *testing.T, c vectorCase) {
	op, err := decodeVector(t, c.Op)
	if err != nil {
		t.Fatalf("decode op: %v", err)
	}
	sameJSON(t, "op re-marshalled", op, c.Op)

	snapshot := clone(c.Before)
	after, err := Apply(c.Before, op)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if diff := cmp.Diff(c.After, after); diff != "" {
		t.Errorf("Apply (-want +got):\n%s", diff)
	}
	inv, err := Invert(op, c.Before)
	if err != nil {
		t.Fatalf("Invert: %v", err)
	}
	if diff := cmp.Diff(snapshot, c.Before); diff != "" {
		t.Fatalf("Apply or Invert changed before (-was +now):\n%s", diff)
	}
	sameJSON(t, "Invert", inv, c.Inverse)
	want, err := decodeVector(t, c.Inverse)
	if err != nil {
		t.Fatalf("decode inverse: %v", err)
	}

	// The inverse of the vector, not ours, restores: the SDK checks the
	// same.
	afterSnapshot := clone(c.After)
	restored, err := Apply(c.After, want)
	if err != nil {
		t.Fatalf("Apply inverse: %v", err)
	}
	if diff := cmp.Diff(afterSnapshot, c.After); diff != "" {
		t.Fatalf("Apply changed after (-was +now):\n%s", diff)
	}
	wantRestored := c.Before
	if c.Restored != nil {
		wantRestored = c.Restored
		if diff := cmp.Diff(withNulls(c.Before, c.Restored), c.Restored); diff != "" || cmp.Equal(c.Before, c.Restored) {
			t.Errorf("restored may only differ from before by absent top-level fields that are null (-before +restored):\n%s", diff)
		}
	} else if diff := cmp.Diff(withNulls(c.Before, restored), c.Before); diff != "" {
		t.Errorf("the case needs restored: before lacks a field the inverse sets to null")
	}
	if diff := cmp.Diff(wantRestored, restored); diff != "" {
		t.Errorf("applying the inverse (-want +got):\n%s", diff)
	}

	again, err := Apply(after, op)
	if err != nil {
		t.Fatalf("Apply twice: %v", err)
	}
	if diff := cmp.Diff(after, again); diff != "" {
		t.Errorf("applying the op twice differs from once (-once +twice):\n%s", diff)
	}
	all, err := ApplyAll(c.Before, []Op{op, want})
	if err != nil {
		t.Fatalf("ApplyAll: %v", err)
	}
	if diff := cmp.Diff(wantRestored, all); diff != "" {
		t.Errorf("ApplyAll of op and inverse (-want +got):\n%s", diff)
	}
	for _, name := range Changed(c.Before, after) {
		if name != op.Path[0].Key {
			t.Errorf("Changed reports %q, which the op does not touch", name)
		}
	}
}

func runErrorVector(t *testing.T, c vectorCase) {
	op, err := decodeVector(t, c.Op)
	if c.Error == "decode" {
		var de *DecodeError
		if !errors.As(err, &de) || de.Index != 0 {
			t.Fatalf("Decode: got %v (%T), want a *DecodeError for op 0", err, err)
		}
		t.Logf("message: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("decode op: %v", err)
	}
	sameJSON(t, "op re-marshalled", op, c.Op)
	want := errorKinds[c.Error]
	snapshot := clone(c.Before)
	if got, err := Apply(c.Before, op); !errors.Is(err, want) || got != nil {
		t.Errorf("Apply: got %v, %v; want nil, %v", got, err, want)
	} else {
		t.Logf("message: %v", err)
	}
	if _, err := Invert(op, c.Before); !errors.Is(err, want) {
		t.Errorf("Invert: got %v; want %v", err, want)
	}
	var ae *ApplyError
	if _, err := ApplyAll(c.Before, []Op{op}); !errors.As(err, &ae) || ae.Index != 0 || !errors.Is(err, want) {
		t.Errorf("ApplyAll: got %v; want an *ApplyError for op 0 wrapping %v", err, want)
	}
	if diff := cmp.Diff(snapshot, c.Before); diff != "" {
		t.Errorf("the failed op changed before (-was +now):\n%s", diff)
	}
}

// sameJSON fails unless v marshals to JSON equal to want (as values: key
// order, spacing and number spelling do not matter).
func sameJSON(t *testing.T, what string, v any, want json.RawMessage) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: marshal: %v", what, err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s: got %s, want %s (-want +got):\n%s", what, got, want, diff)
	}
}

// withNulls is before plus a null for each top-level field that restored
// has as null and before lacks: the one way an inverse may not restore
// exactly.
func withNulls(before, restored map[string]any) map[string]any {
	out := clone(before).(map[string]any)
	for k, v := range restored {
		if _, ok := before[k]; !ok && v == nil {
			out[k] = nil
		}
	}
	return out
}
