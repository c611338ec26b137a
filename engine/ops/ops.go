// Package ops implements the operations clients use to change records:
// set, listInsert and listRemove, applied atomically to the current row by
// the engine and undone in the TypeScript SDK by applying their inverse.
//
// Records and values have the shape encoding/json gives when it decodes
// into any (without UseNumber): nil, bool, float64, string, []any and
// map[string]any. A record is a map of field names to values; list fields
// are []any and json fields hold any of those values.
//
// The semantics are shared with the SDK through the JSON test vectors in
// testdata/operations at the root of the module, which both must pass;
// the rules below are those the vectors check.
//
// # Paths
//
// A path is non-empty. Its first step is a field name; each further step
// goes into a json value: a key goes into an object, an index (a whole
// number from 0 to MaxIndex) into an array. Every step but the last must
// find an existing value of the right kind, and an index must be in range
// at every step, the last included: nothing is created on the way and
// index len does not append. A failing step is an ErrBadPath.
//
// # set
//
// set stores the value at the path. A null value clears: a field becomes
// null, a key of a json object is deleted (deleting an absent key is a
// no-op), and an array element becomes null.
//
// # listInsert and listRemove
//
// The value at the path must be an array, or null or absent, which count
// as an empty list (anything else is an ErrNotAList). Items are unique by
// deep JSON equality, so listInsert first removes every item equal to its
// value, then inserts it where asked: "append" (the default), "prepend",
// {"before": anchor} or {"after": anchor}. The anchor is looked up after
// that removal, so an anchor equal to the value counts as missing; a
// missing anchor inserts at the end nearest to it ("before" prepends,
// "after" appends), and with duplicated anchors the first one counts.
// listRemove removes every item equal to its value; removing an absent
// item is a no-op. Both operations are idempotent. Their value may not be
// null.
//
// # Inversion
//
// Invert(op, before) is the op that undoes op applied to before: applying
// it to the result gives before back exactly, with one exception: a
// top-level field that was absent from before comes back as null, since a
// field cannot be deleted by an op (a stored row has every field, so the
// two read the same). See Invert for the rules.
package ops

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// Limits of what Decode accepts.
const (
	// MaxOps is the largest number of operations in one list.
	MaxOps = 1000
	// MaxPathDepth is the largest number of steps in a path.
	MaxPathDepth = 32
	// MaxIndex is the largest array index a path may hold; it keeps
	// indexes within an int on every platform and within a JavaScript
	// safe integer.
	MaxIndex = 1<<31 - 1
)

// The names of the operations, as they appear in the JSON "op" key.
const (
	OpSet        = "set"
	OpListInsert = "listInsert"
	OpListRemove = "listRemove"
)

// Errors of Apply and Invert wrap one of these; errors.Is tells them apart.
var (
	// ErrBadPath: a step of the path does not exist or has the wrong kind.
	ErrBadPath = errors.New("bad path")
	// ErrNotAList: a list operation found a value that is not an array.
	ErrNotAList = errors.New("not a list")
	// ErrInvalidOp: the op itself is malformed (an unknown name, a list
	// operation with a null value, a where on an op other than
	// listInsert). Decode never returns such an op.
	ErrInvalidOp = errors.New("invalid operation")
)

// Op is one operation on a record.
type Op struct {
	// Op is OpSet, OpListInsert or OpListRemove.
	Op string
	// Path is where the op acts; see the package documentation.
	Path []PathElem
	// Value is the value to set (nil clears), or the list item to insert
	// or remove (never nil).
	Value any
	// Where places a listInsert; nil means append. Other ops have none.
	Where *Where
}

// PathElem is one step of a path: an object key or an array index. It
// marshals as a JSON string or number.
type PathElem struct {
	Key     string
	Index   int
	IsIndex bool
}

// Position says where listInsert puts its value.
type Position string

// The positions of a listInsert.
const (
	Append  Position = "append"
	Prepend Position = "prepend"
	Before  Position = "before"
	After   Position = "after"
)

// Where is the placement of a listInsert. It marshals as "append",
// "prepend", {"before": Anchor} or {"after": Anchor}.
type Where struct {
	Pos Position
	// Anchor is the item to insert before or after; it may be nil (a
	// null item of a json array). Append and Prepend have none.
	Anchor any
}

// DecodeError is a list of operations Decode rejected.
type DecodeError struct {
	// Index is the position of the offending op in the list, or -1 when
	// the list as a whole is wrong.
	Index int
	// Message says what is wrong, for the client.
	Message string
}

func (e *DecodeError) Error() string {
	if e.Index < 0 {
		return e.Message
	}
	return fmt.Sprintf("op %d: %s", e.Index, e.Message)
}

// ApplyError is the failure of one op of ApplyAll.
type ApplyError struct {
	// Index is the position of the op that failed.
	Index int
	// Err wraps ErrBadPath, ErrNotAList or ErrInvalidOp.
	Err error
}

func (e *ApplyError) Error() string { return fmt.Sprintf("op %d: %v", e.Index, e.Err) }

// Unwrap gives errors.Is the cause.
func (e *ApplyError) Unwrap() error { return e.Err }

// Changed lists the top-level fields whose values differ between before
// and after, sorted. A field present in one record and absent from the
// other counts as changed even if it is null, so that a caller learns of
// every field an op touched, unknown ones included.
func Changed(before, after map[string]any) []string {
	var out []string
	for k, a := range before {
		if b, ok := after[k]; !ok || !equal(a, b) {
			out = append(out, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// equal is deep JSON equality: numbers by value, objects by their keys
// and values, arrays in order.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, equal)
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && maps.EqualFunc(x, y, equal)
	default:
		// Not a JSON value: callers should have converted it. Compare
		// without panicking on uncomparable types.
		return reflect.DeepEqual(a, b)
	}
}

// clone deep-copies a JSON value, so that a result never shares mutable
// containers with an op or with the record an inverse came from.
func clone(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = clone(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = clone(e)
		}
		return out
	default:
		return v
	}
}

// kind names the JSON kind of a value for error messages.
func kind(v any, present bool) string {
	if !present {
		return "missing"
	}
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
