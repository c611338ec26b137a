package ops

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeList(t *testing.T) {
	const set = `{"op":"set","path":["title"],"value":1}`
	many := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(set+",", n), ",") + "]" }
	for _, tc := range []struct {
		name, in string
		index    int // of the DecodeError; -2 for none
		n        int
	}{
		{"empty list", "[]", -2, 0},
		{"whitespace around", " \n[" + set + "]\t", -2, 1},
		{"MaxOps ops", many(MaxOps), -2, MaxOps},
		{"too many ops", many(MaxOps + 1), -1, 0},
		{"null", "null", -1, 0},
		{"empty input", "", -1, 0},
		{"an object", set, -1, 0},
		{"unterminated", "[" + set, -1, 0},
		{"trailing data", "[" + set + "] x", -1, 0},
		{"the third op is bad", "[" + set + "," + set + `,{"op":"set"}]`, 2, 0},
		{"duplicate key", `[{"op":"set","op":"set","path":["a"],"value":1}]`, 0, 0},
		{"duplicate value", `[{"op":"set","path":["a"],"value":1,"value":2}]`, 0, 0},
		{"number out of float64 range", `[{"op":"set","path":["a"],"value":1e400}]`, 0, 0},
		{"path index 1e0", `[{"op":"set","path":["a",1e0],"value":1}]`, -2, 1},
		{"path index -0", `[{"op":"set","path":["a",-0],"value":1}]`, -2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in))
			if tc.index == -2 {
				if err != nil || got == nil || len(got) != tc.n {
					t.Fatalf("got %d ops (nil %v), %v; want %d ops", len(got), got == nil, err, tc.n)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Index != tc.index || got != nil {
				t.Fatalf("got %v, %v; want a *DecodeError for index %d", got, err, tc.index)
			}
			if tc.index >= 0 && !strings.HasPrefix(err.Error(), "op ") {
				t.Errorf("message %q does not name the op", err)
			}
			t.Log(err)
		})
	}
}

func TestUnmarshalOpStrict(t *testing.T) {
	var op Op
	if err := op.UnmarshalJSON([]byte(`{"op":"set","path":["a"],"value":1} {}`)); err == nil {
		t.Error("data after the op was accepted")
	}
	// encoding/json would match "OP" to "op" and keep the last of
	// duplicate keys; Decode must not.
	if err := json.Unmarshal([]byte(`{"OP":"set","path":["a"],"value":1}`), &op); err == nil {
		t.Error("a key in the wrong case was accepted")
	}
	var list []Op
	if err := json.Unmarshal([]byte(`[{"op":"listInsert","path":["l"],"value":"x","where":{"after":"y"}}]`), &list); err != nil {
		t.Fatal(err)
	}
	want := []Op{{Op: OpListInsert, Path: []PathElem{{Key: "l"}}, Value: "x", Where: &Where{Pos: After, Anchor: "y"}}}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMarshalOp(t *testing.T) {
	op := Op{Op: OpListInsert, Path: []PathElem{{Key: "meta"}, {Key: "tags"}, {Index: 0, IsIndex: true}}, Value: "a\"b", Where: &Where{Pos: After}}
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"op":"listInsert","path":["meta","tags",0],"value":"a\"b","where":{"after":null}}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	b, err = json.Marshal(Op{Op: OpSet, Path: []PathElem{{Key: "t"}}})
	if err != nil || string(b) != `{"op":"set","path":["t"],"value":null}` {
		t.Errorf("set of null: got %s, %v", b, err)
	}
}

func TestPathElemAndWhereJSON(t *testing.T) {
	for _, in := range []string{`"k"`, `0`, `7`, `""`} {
		var p PathElem
		if err := json.Unmarshal([]byte(in), &p); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if b, err := json.Marshal(p); err != nil || string(b) != in {
			t.Errorf("%s: got %s, %v", in, b, err)
		}
	}
	for _, in := range []string{`-1`, `1.5`, `true`, `null`, `[]`, `2147483648`} {
		var p PathElem
		if err := json.Unmarshal([]byte(in), &p); err == nil {
			t.Errorf("path step %s accepted as %+v", in, p)
		}
	}
	for _, in := range []string{`"append"`, `"prepend"`, `{"before":"x"}`, `{"after":null}`, `{"after":{"id":1}}`} {
		var w Where
		if err := json.Unmarshal([]byte(in), &w); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if b, err := json.Marshal(w); err != nil || string(b) != in {
			t.Errorf("%s: got %s, %v", in, b, err)
		}
	}
	for _, in := range []string{`"middle"`, `null`, `{}`, `{"before":1,"after":2}`, `{"near":1}`, `1`} {
		var w Where
		if err := json.Unmarshal([]byte(in), &w); err == nil {
			t.Errorf("where %s accepted as %+v", in, w)
		}
	}
}

// TestInvalidOps: ops built in Go obey the rules of Decode.
func TestInvalidOps(t *testing.T) {
	f := []PathElem{{Key: "f"}}
	deep := make([]PathElem, MaxPathDepth+1)
	for i := range deep {
		deep[i] = PathElem{Key: "k"}
	}
	for _, tc := range []struct {
		name string
		op   Op
		want error
	}{
		{"unknown op", Op{Op: "add", Path: f, Value: 1}, ErrInvalidOp},
		{"empty op", Op{Path: f, Value: 1}, ErrInvalidOp},
		{"no path", Op{Op: OpSet, Value: 1}, ErrBadPath},
		{"path starts with an index", Op{Op: OpSet, Path: []PathElem{{IsIndex: true}}, Value: 1}, ErrBadPath},
		{"empty field name", Op{Op: OpSet, Path: []PathElem{{}}, Value: 1}, ErrBadPath},
		{"negative index", Op{Op: OpSet, Path: []PathElem{{Key: "f"}, {IsIndex: true, Index: -1}}, Value: 1}, ErrBadPath},
		{"index above MaxIndex", Op{Op: OpSet, Path: []PathElem{{Key: "f"}, {IsIndex: true, Index: MaxIndex + 1}}, Value: 1}, ErrBadPath},
		{"path too deep", Op{Op: OpSet, Path: deep, Value: 1}, ErrBadPath},
		{"listInsert of nil", Op{Op: OpListInsert, Path: f}, ErrInvalidOp},
		{"listRemove of nil", Op{Op: OpListRemove, Path: f}, ErrInvalidOp},
		{"where on set", Op{Op: OpSet, Path: f, Value: 1, Where: &Where{Pos: Append}}, ErrInvalidOp},
		{"where on listRemove", Op{Op: OpListRemove, Path: f, Value: 1, Where: &Where{Pos: Append}}, ErrInvalidOp},
		{"unknown position", Op{Op: OpListInsert, Path: f, Value: 1, Where: &Where{Pos: "middle"}}, ErrInvalidOp},
		{"empty position", Op{Op: OpListInsert, Path: f, Value: 1, Where: &Where{}}, ErrInvalidOp},
		{"append with an anchor", Op{Op: OpListInsert, Path: f, Value: 1, Where: &Where{Pos: Append, Anchor: "x"}}, ErrInvalidOp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := map[string]any{"f": []any{"x"}}
			if _, err := Apply(rec, tc.op); !errors.Is(err, tc.want) {
				t.Errorf("Apply: got %v, want %v", err, tc.want)
			}
			if _, err := Invert(tc.op, rec); !errors.Is(err, tc.want) {
				t.Errorf("Invert: got %v, want %v", err, tc.want)
			}
			if b, err := json.Marshal(tc.op); err == nil {
				t.Errorf("Marshal: got %s, want an error", b)
			}
		})
	}
}

func TestApplyAllError(t *testing.T) {
	rec := map[string]any{"title": "t", "meta": nil}
	ops := []Op{
		{Op: OpSet, Path: []PathElem{{Key: "title"}}, Value: "u"},
		{Op: OpSet, Path: []PathElem{{Key: "meta"}, {Key: "color"}}, Value: "red"},
	}
	got, err := ApplyAll(rec, ops)
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Index != 1 || !errors.Is(err, ErrBadPath) || got != nil {
		t.Fatalf("got %v, %v; want an *ApplyError for op 1 wrapping ErrBadPath", got, err)
	}
	const msg = "op 1: bad path at meta.color: meta is null, not an object"
	if err.Error() != msg {
		t.Errorf("message %q, want %q", err, msg)
	}
	if rec["title"] != "t" {
		t.Error("the first op changed the input")
	}
}

func TestNilRecord(t *testing.T) {
	got, err := Apply(nil, Op{Op: OpListInsert, Path: []PathElem{{Key: "l"}}, Value: "x"})
	if err != nil || !cmp.Equal(got, map[string]any{"l": []any{"x"}}) {
		t.Errorf("Apply(nil): got %v, %v", got, err)
	}
	if got, err := Apply(nil, Op{Op: OpListRemove, Path: []PathElem{{Key: "l"}}, Value: "x"}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("listRemove on nil: got %v, %v; want an empty record", got, err)
	}
	if got, err := ApplyAll(nil, nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ApplyAll(nil, nil): got %v, %v; want an empty record", got, err)
	}
	inv, err := Invert(Op{Op: OpSet, Path: []PathElem{{Key: "t"}}, Value: 1}, nil)
	if err != nil || inv.Value != nil {
		t.Errorf("Invert on nil: got %+v, %v", inv, err)
	}
}

// TestNoAliasing: results own what they got from ops, and inverses own
// what they got from records, so later changes to one do not leak.
func TestNoAliasing(t *testing.T) {
	val := map[string]any{"k": []any{"x"}}
	op := Op{Op: OpListInsert, Path: []PathElem{{Key: "l"}}, Value: val}
	got, err := Apply(map[string]any{}, op)
	if err != nil {
		t.Fatal(err)
	}
	val["k"].([]any)[0] = "changed"
	if got["l"].([]any)[0].(map[string]any)["k"].([]any)[0] != "x" {
		t.Error("the result shares the op's value")
	}
	before := map[string]any{"meta": map[string]any{"a": []any{"x"}, "n": nil}}
	inv, err := Invert(Op{Op: OpSet, Path: []PathElem{{Key: "meta"}, {Key: "n"}}, Value: 1}, before)
	if err != nil {
		t.Fatal(err)
	}
	inv.Value.(map[string]any)["a"].([]any)[0] = "changed"
	if before["meta"].(map[string]any)["a"].([]any)[0] != "x" {
		t.Error("the inverse shares the record's values")
	}
}

func TestChanged(t *testing.T) {
	before := map[string]any{"a": 1.0, "b": []any{"x"}, "c": nil, "d": map[string]any{"k": 1.0}, "e": "same"}
	after := map[string]any{"a": 1.0, "b": []any{"y"}, "d": map[string]any{"k": 2.0}, "e": "same", "f": nil}
	if diff := cmp.Diff([]string{"b", "c", "d", "f"}, Changed(before, after)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := Changed(before, clone(before).(map[string]any)); got != nil {
		t.Errorf("equal records: got %v", got)
	}
	if got := Changed(nil, nil); got != nil {
		t.Errorf("nil records: got %v", got)
	}
}

func TestEqual(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		a, b any
		want bool
	}{
		{1.0, 1.0, true},
		{1.0, "1", false},
		{nil, nil, true},
		{nil, false, false},
		{[]any{1.0, "a"}, []any{1.0, "a"}, true},
		{[]any{1.0, "a"}, []any{"a", 1.0}, false},
		{map[string]any{"a": 1.0, "b": nil}, map[string]any{"b": nil, "a": 1.0}, true},
		{map[string]any{"a": nil}, map[string]any{}, false},
		// Not JSON values, but no panic.
		{[]int{1}, []int{1}, true},
		{1, 1.0, false},
		{now, now, true},
		{map[string]int{}, []any{}, false},
	} {
		if got := equal(tc.a, tc.b); got != tc.want {
			t.Errorf("equal(%#v, %#v) = %v", tc.a, tc.b, got)
		}
	}
}

func TestMessages(t *testing.T) {
	rec := map[string]any{"meta": map[string]any{"two words": []any{"a"}, "s": "x"}}
	for _, tc := range []struct {
		op   Op
		want string
	}{
		{Op{Op: OpSet, Path: []PathElem{{Key: "meta"}, {Key: "two words"}, {IsIndex: true, Index: 1}}, Value: 1},
			`bad path at meta["two words"][1]: index 1 is out of range: meta["two words"] has length 1`},
		{Op{Op: OpListRemove, Path: []PathElem{{Key: "meta"}, {Key: "s"}}, Value: 1},
			`not a list: listRemove needs an array at meta.s, which is a string`},
		{Op{Op: OpSet, Path: []PathElem{{Key: "meta"}, {Key: "s"}, {Key: "x"}}, Value: 1},
			`bad path at meta.s.x: meta.s is a string, not an object`},
	} {
		if _, err := Apply(rec, tc.op); err == nil || err.Error() != tc.want {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
}
