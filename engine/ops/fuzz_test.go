package ops

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addVectorSeeds seeds a fuzz target with the ops of every vector.
func addVectorSeeds(f *testing.F) {
	for _, file := range loadVectors(f) {
		for _, c := range file.Cases {
			f.Add([]byte("[" + string(c.Op) + "]"))
			if c.Inverse != nil {
				f.Add([]byte("[" + string(c.Op) + "," + string(c.Inverse) + "]"))
			}
		}
	}
	f.Add([]byte(`[{"op":"set","path":["meta","a",0,"b"],"value":{"x":[1,2,{"y":null}]}}]`))
	f.Add([]byte(`[{"op":"listInsert","path":["labels"],"value":"a","where":{"before":"b"}}`))
	f.Add([]byte(`[{"op":"set","path":["t"],"value":"\ud800"}]`))
}

func FuzzDecode(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := Decode(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || list != nil {
				t.Fatalf("got %v, %v; want nil and a *DecodeError", list, err)
			}
			return
		}
		b, err := json.Marshal(list)
		if err != nil {
			t.Fatalf("marshal decoded ops: %v", err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if diff := cmp.Diff(list, back); diff != "" {
			t.Fatalf("%s does not round-trip (-decoded +re-decoded):\n%s", b, diff)
		}
	})
}

// fuzzRecord is the record FuzzApply changes: every kind of value, with
// lists, duplicates and explicit nulls.
func fuzzRecord() map[string]any {
	return map[string]any{
		"title":  "t",
		"done":   false,
		"count":  2.0,
		"empty":  nil,
		"labels": []any{"a", "b", "c", "a"},
		"meta": map[string]any{
			"tags":  []any{"x", 1.0, map[string]any{"id": 1.0}, nil},
			"n":     nil,
			"obj":   map[string]any{"k": []any{[]any{"a"}, "b"}, "": 1.0},
			"color": "blue",
		},
		"data": []any{1.0, []any{2.0, 3.0}, map[string]any{"a": nil}},
	}
}

func FuzzApply(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := Decode(data)
		if err != nil {
			return
		}
		rec := fuzzRecord()
		want := fuzzRecord()
		cur := rec
		for _, op := range list {
			snapshot := clone(cur)
			after, err := Apply(cur, op)
			if diff := cmp.Diff(snapshot, any(cur)); diff != "" {
				t.Fatalf("Apply(%+v) changed its input:\n%s", op, diff)
			}
			if err != nil {
				if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrNotAList) {
					t.Fatalf("Apply(%+v): unexpected error %v", op, err)
				}
				continue
			}
			inv, err := Invert(op, cur)
			if err != nil {
				t.Fatalf("Invert(%+v): %v", op, err)
			}
			restored, err := Apply(after, inv)
			if err != nil {
				t.Fatalf("applying the inverse %+v: %v", inv, err)
			}
			sameRecord(t, "undo", cur, restored)
			cur = after
		}
		if _, err := ApplyAll(rec, list); err != nil {
			var ae *ApplyError
			if !errors.As(err, &ae) {
				t.Fatalf("ApplyAll: %v is not an *ApplyError", err)
			}
		}
		if diff := cmp.Diff(want, rec); diff != "" {
			t.Fatalf("the ops changed the input record:\n%s", diff)
		}
	})
}
