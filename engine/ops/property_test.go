package ops

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// gen makes random records and ops from small pools, so that equal items,
// duplicates, explicit nulls and valid paths come up often.
type gen struct{ r *rand.Rand }

func (g gen) pick(n int) int { return g.r.IntN(n) }

func (g gen) chance(p float64) bool { return g.r.Float64() < p }

func (g gen) scalar() any {
	pool := []any{"a", "b", "c", "d", "é", "e\u0301", "", 1.0, 2.0, 2.5, math.Copysign(0, -1), true, false, nil}
	return pool[g.pick(len(pool))]
}

func (g gen) item() any {
	switch g.pick(6) {
	case 0:
		return map[string]any{"id": float64(g.pick(3))}
	case 1:
		return []any{"a", float64(g.pick(2))}
	default:
		return g.scalar()
	}
}

func (g gen) list() []any {
	out := []any{}
	for range g.pick(6) {
		out = append(out, g.item())
	}
	return out
}

func (g gen) value(depth int) any {
	if depth <= 0 {
		return g.scalar()
	}
	switch g.pick(4) {
	case 0:
		return g.list()
	case 1:
		m := map[string]any{}
		for range g.pick(4) {
			m[g.key()] = g.value(depth - 1)
		}
		return m
	case 2:
		l := []any{}
		for range g.pick(3) {
			l = append(l, g.value(depth-1))
		}
		return l
	default:
		return g.scalar()
	}
}

func (g gen) key() string {
	keys := []string{"k", "l", "m", "tags", "", "名前"}
	return keys[g.pick(len(keys))]
}

func (g gen) record() map[string]any {
	rec := map[string]any{}
	for _, f := range []string{"title", "labels", "meta", "count", "data"} {
		switch g.pick(5) {
		case 0: // absent
		case 1:
			rec[f] = nil
		default:
			switch f {
			case "labels":
				rec[f] = g.list()
			case "meta", "data":
				rec[f] = g.value(3)
			default:
				rec[f] = g.scalar()
			}
		}
	}
	return rec
}

// path walks into rec, mostly along existing values, sometimes off them.
func (g gen) path(rec map[string]any) []PathElem {
	fields := []string{"title", "labels", "meta", "count", "data", "nope"}
	path := []PathElem{{Key: fields[g.pick(len(fields))]}}
	cur := rec[path[0].Key]
	var ok bool
	for g.chance(0.6) && len(path) < MaxPathDepth {
		var step PathElem
		switch c := cur.(type) {
		case map[string]any:
			step = PathElem{Key: g.key()}
			cur, ok = c[step.Key]
		case []any:
			step = PathElem{IsIndex: true, Index: g.pick(len(c) + 1)}
			if ok = step.Index < len(c); ok {
				cur = c[step.Index]
			}
		default:
			if g.chance(0.5) {
				step = PathElem{Key: g.key()}
			} else {
				step = PathElem{IsIndex: true, Index: g.pick(2)}
			}
			ok = false
		}
		path = append(path, step)
		if !ok {
			break
		}
	}
	return path
}

func (g gen) op(rec map[string]any) Op {
	path := g.path(rec)
	var list []any
	if t, err := locate(rec, path); err == nil {
		list, _ = t.old.([]any)
	}
	member := func() any {
		if len(list) > 0 && g.chance(0.6) {
			return list[g.pick(len(list))]
		}
		return g.item()
	}
	nonNull := func() any {
		v := member()
		for v == nil {
			v = g.item()
		}
		return v
	}
	switch g.pick(3) {
	case 0:
		return Op{Op: OpSet, Path: path, Value: g.value(2)}
	case 1:
		op := Op{Op: OpListInsert, Path: path, Value: nonNull()}
		switch g.pick(5) {
		case 0:
		case 1:
			op.Where = &Where{Pos: Append}
		case 2:
			op.Where = &Where{Pos: Prepend}
		case 3:
			op.Where = &Where{Pos: Before, Anchor: member()}
		default:
			op.Where = &Where{Pos: After, Anchor: member()}
		}
		return op
	default:
		return Op{Op: OpListRemove, Path: path, Value: nonNull()}
	}
}

// sameRecord fails unless got is want, allowing a top-level field absent
// from want to be null in got: the one documented inexactness of Invert.
func sameRecord(t *testing.T, what string, want, got map[string]any) {
	t.Helper()
	if diff := cmp.Diff(withNulls(want, got), got); diff != "" {
		t.Fatalf("%s (-want +got):\n%s", what, diff)
	}
}

func roundTrip(t *testing.T, op Op) {
	t.Helper()
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatalf("marshal %+v: %v", op, err)
	}
	back, err := Decode([]byte("[" + string(b) + "]"))
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if diff := cmp.Diff(op, back[0]); diff != "" {
		t.Fatalf("%s does not round-trip (-op +decoded):\n%s", b, diff)
	}
}

func TestProperties(t *testing.T) {
	g := gen{r: rand.New(rand.NewPCG(1, 2))}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	applied := 0
	for i := range n {
		rec := g.record()
		op := g.op(rec)
		snapshot := clone(rec)
		after, err := Apply(rec, op)
		if diff := cmp.Diff(snapshot, any(rec)); diff != "" {
			t.Fatalf("#%d: Apply(%+v) changed its input (-was +now):\n%s", i, op, diff)
		}
		_, invErr := Invert(op, rec)
		if err != nil {
			if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrNotAList) {
				t.Fatalf("#%d: Apply(%+v): unexpected error %v", i, op, err)
			}
			if invErr == nil || invErr.Error() != err.Error() {
				t.Fatalf("#%d: Apply failed with %v but Invert with %v", i, err, invErr)
			}
			continue
		}
		applied++
		if invErr != nil {
			t.Fatalf("#%d: Invert(%+v): %v", i, op, invErr)
		}
		roundTrip(t, op)
		checkInverse(t, i, rec, op, after)

		// Idempotence: every op, applied again, changes nothing.
		again, err := Apply(after, op)
		if err != nil {
			t.Fatalf("#%d: Apply twice: %v", i, err)
		}
		if diff := cmp.Diff(after, again); diff != "" {
			t.Fatalf("#%d: %+v applied twice differs from once:\n%s", i, op, diff)
		}
		for _, f := range Changed(rec, after) {
			if f != op.Path[0].Key {
				t.Fatalf("#%d: Changed reports %q for %+v", i, f, op)
			}
		}
	}
	if applied < n/4 {
		t.Fatalf("only %d of %d random ops applied: the generator is too far off", applied, n)
	}
}

// checkInverse checks undo and redo of op, which made after from rec.
func checkInverse(t *testing.T, i int, rec map[string]any, op Op, after map[string]any) {
	t.Helper()
	inv, err := Invert(op, rec)
	if err != nil {
		t.Fatalf("#%d: Invert(%+v): %v", i, op, err)
	}
	roundTrip(t, inv)
	afterSnapshot := clone(after)
	restored, err := Apply(after, inv)
	if err != nil {
		t.Fatalf("#%d: applying the inverse %+v of %+v: %v", i, inv, op, err)
	}
	if diff := cmp.Diff(afterSnapshot, any(after)); diff != "" {
		t.Fatalf("#%d: applying the inverse changed its input:\n%s", i, diff)
	}
	sameRecord(t, "undo", rec, restored)
	redo, err := Invert(inv, after)
	if err != nil {
		t.Fatalf("#%d: Invert of the inverse: %v", i, err)
	}
	again, err := Apply(restored, redo)
	if err != nil {
		t.Fatalf("#%d: redo: %v", i, err)
	}
	sameRecord(t, "redo", after, again)
}

// TestUndoStack applies random sequences and undoes them in reverse, as
// the SDK's undo stack does.
func TestUndoStack(t *testing.T) {
	g := gen{r: rand.New(rand.NewPCG(3, 4))}
	for i := range 3000 {
		rec := g.record()
		cur := rec
		var undo []Op
		var done []Op
		for range 1 + g.pick(8) {
			op := g.op(cur)
			next, err := Apply(cur, op)
			if err != nil {
				continue
			}
			inv, err := Invert(op, cur)
			if err != nil {
				t.Fatalf("#%d: Invert: %v", i, err)
			}
			done = append(done, op)
			undo = append(undo, inv)
			cur = next
		}
		all, err := ApplyAll(rec, done)
		if err != nil {
			t.Fatalf("#%d: ApplyAll: %v", i, err)
		}
		if diff := cmp.Diff(cur, all); diff != "" {
			t.Fatalf("#%d: ApplyAll differs from one by one:\n%s", i, diff)
		}
		for j := len(undo) - 1; j >= 0; j-- {
			if cur, err = Apply(cur, undo[j]); err != nil {
				t.Fatalf("#%d: undo %d: %v", i, j, err)
			}
		}
		sameRecord(t, "undo stack", rec, cur)
	}
}
