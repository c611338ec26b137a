package ops

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Apply returns the record op makes of rec. It never modifies rec, op or
// anything reachable from them: the containers on the path are copied,
// and the result shares the rest of rec's values, so treat both as
// immutable. A nil rec is an empty record. Errors wrap ErrBadPath,
// ErrNotAList or ErrInvalidOp.
func Apply(rec map[string]any, op Op) (map[string]any, error) {
	if err := op.validate(); err != nil {
		return nil, err
	}
	t, err := locate(rec, op.Path)
	if err != nil {
		return nil, err
	}
	last := len(op.Path) - 1
	switch op.Op {
	case OpSet:
		// Inside an object null deletes the key; a field or an array
		// element keeps its place and becomes null.
		_, inObject := t.chain[last].(map[string]any)
		del := op.Value == nil && inObject && last > 0
		return t.with(op.Path, clone(op.Value), del), nil
	case OpListInsert:
		list, err := t.list(op)
		if err != nil {
			return nil, err
		}
		return t.with(op.Path, insert(list, op.Value, op.Where), false), nil
	default: // OpListRemove, as validate allows no other
		list, err := t.list(op)
		if err != nil {
			return nil, err
		}
		if count(list, op.Value) == 0 {
			return maps.Clone(nonNil(rec)), nil
		}
		return t.with(op.Path, without(list, op.Value), false), nil
	}
}

// ApplyAll applies ops in order and returns the final record; rec is not
// modified. An error is an *ApplyError naming the op that failed.
func ApplyAll(rec map[string]any, ops []Op) (map[string]any, error) {
	out := maps.Clone(nonNil(rec))
	for i, op := range ops {
		next, err := Apply(out, op)
		if err != nil {
			return nil, &ApplyError{Index: i, Err: err}
		}
		out = next
	}
	return out, nil
}

func nonNil(rec map[string]any) map[string]any {
	if rec == nil {
		return map[string]any{}
	}
	return rec
}

// insert returns a new list: list without value, then value placed as
// where says.
func insert(list []any, value any, where *Where) []any {
	rest := without(list, value)
	at := len(rest)
	if where != nil {
		switch where.Pos {
		case Prepend:
			at = 0
		case Before:
			// A missing anchor prepends: the value still goes to the
			// side the client asked for.
			at = max(0, slices.IndexFunc(rest, func(v any) bool { return equal(v, where.Anchor) }))
		case After:
			if i := slices.IndexFunc(rest, func(v any) bool { return equal(v, where.Anchor) }); i >= 0 {
				at = i + 1
			}
		}
	}
	return slices.Insert(rest, at, clone(value))
}

// without returns a new list holding the items of list not equal to value.
func without(list []any, value any) []any {
	out := make([]any, 0, len(list)+1)
	for _, v := range list {
		if !equal(v, value) {
			out = append(out, v)
		}
	}
	return out
}

// count is the number of items of list equal to value.
func count(list []any, value any) int {
	n := 0
	for _, v := range list {
		if equal(v, value) {
			n++
		}
	}
	return n
}

// target is the place a path leads to in a record.
type target struct {
	// chain[k] is the container step k of the path goes into: chain[0] is
	// the record, then json objects and arrays.
	chain []any
	// old is the value at the path; present is false when the last step
	// is a key that is absent.
	old     any
	present bool
}

// locate follows path in rec, checking every step. The last step may name
// an absent key, but not an index out of range.
func locate(rec map[string]any, path []PathElem) (target, error) {
	t := target{chain: make([]any, len(path))}
	var cur any = rec
	present := true
	for k, step := range path {
		t.chain[k] = cur
		var next any
		switch c := cur.(type) {
		case map[string]any:
			if step.IsIndex {
				return target{}, badStep(path, k, cur, present, "an array")
			}
			next, present = c[step.Key]
		case []any:
			if !step.IsIndex {
				return target{}, badStep(path, k, cur, present, "an object")
			}
			if step.Index >= len(c) {
				return target{}, fmt.Errorf("%w at %s: index %d is out of range: %s has length %d",
					ErrBadPath, formatPath(path), step.Index, formatPath(path[:k]), len(c))
			}
			next = c[step.Index]
		default:
			want := "an object"
			if step.IsIndex {
				want = "an array"
			}
			return target{}, badStep(path, k, cur, present, want)
		}
		cur = next
	}
	t.old, t.present = cur, present
	return t, nil
}

func badStep(path []PathElem, k int, v any, present bool, want string) error {
	return fmt.Errorf("%w at %s: %s is %s, not %s", ErrBadPath, formatPath(path), formatPath(path[:k]), kind(v, present), want)
}

// list is the list a list op acts on: the array at the target, or an
// empty list when it is null or absent.
func (t target) list(op Op) ([]any, error) {
	if !t.present || t.old == nil {
		return nil, nil
	}
	l, ok := t.old.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s needs an array at %s, which is %s", ErrNotAList, op.Op, formatPath(op.Path), kind(t.old, true))
	}
	return l, nil
}

// with returns a copy of the record with leaf at the path (or the last key
// deleted when del is set), copying each container on the way so that
// nothing reachable from the original changes.
func (t target) with(path []PathElem, leaf any, del bool) map[string]any {
	v := leaf
	for k := len(path) - 1; k >= 0; k-- {
		switch c := t.chain[k].(type) {
		case map[string]any:
			n := make(map[string]any, len(c)+1)
			maps.Copy(n, c)
			if del && k == len(path)-1 {
				delete(n, path[k].Key)
			} else {
				n[path[k].Key] = v
			}
			v = n
		case []any:
			n := slices.Clone(c)
			n[path[k].Index] = v
			v = n
		}
	}
	rec, _ := v.(map[string]any)
	return rec
}

// invalidError is an op that breaks the rules whatever the record; Decode
// reports its message alone.
type invalidError struct {
	kind error
	msg  string
}

func (e *invalidError) Error() string { return e.kind.Error() + ": " + e.msg }
func (e *invalidError) Unwrap() error { return e.kind }

func invalid(kind error, format string, args ...any) error {
	return &invalidError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// validate checks what Decode checks, so that an op built in Go obeys the
// same rules as one that came over the wire.
func (o Op) validate() error {
	switch o.Op {
	case OpSet, OpListInsert, OpListRemove:
	default:
		return invalid(ErrInvalidOp, "unknown op %q: want set, listInsert or listRemove", o.Op)
	}
	if err := validatePath(o.Path); err != nil {
		return err
	}
	if o.Op != OpSet && o.Value == nil {
		return invalid(ErrInvalidOp, "%s needs a value that is not null", o.Op)
	}
	if o.Where != nil {
		if o.Op != OpListInsert {
			return invalid(ErrInvalidOp, "where is only for listInsert")
		}
		switch o.Where.Pos {
		case Append, Prepend:
			if o.Where.Anchor != nil {
				return invalid(ErrInvalidOp, "where %q takes no anchor", o.Where.Pos)
			}
		case Before, After:
		default:
			return invalid(ErrInvalidOp, "unknown where %q: want append, prepend, before or after", o.Where.Pos)
		}
	}
	return nil
}

func validatePath(path []PathElem) error {
	if len(path) == 0 {
		return invalid(ErrBadPath, "the path is empty")
	}
	if len(path) > MaxPathDepth {
		return invalid(ErrBadPath, "the path has %d steps; at most %d are allowed", len(path), MaxPathDepth)
	}
	if path[0].IsIndex || path[0].Key == "" {
		return invalid(ErrBadPath, "the path must start with a field name")
	}
	for i, s := range path {
		if s.IsIndex && (s.Index < 0 || s.Index > MaxIndex) {
			return invalid(ErrBadPath, "path[%d] is %d: an index must be a whole number from 0 to %d", i, s.Index, MaxIndex)
		}
	}
	return nil
}

// formatPath writes a path for messages: title, meta.color, meta.tags[2],
// meta["two words"].
func formatPath(path []PathElem) string {
	var b strings.Builder
	for i, s := range path {
		switch {
		case s.IsIndex:
			b.WriteString("[" + strconv.Itoa(s.Index) + "]")
		case isIdent(s.Key):
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.Key)
		default:
			q, err := json.Marshal(s.Key)
			if err != nil {
				q = []byte(strconv.Quote(s.Key))
			}
			b.WriteString("[" + string(q) + "]")
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
