package ops

// Invert returns the op that undoes op applied to before: Apply(Apply(
// before, op), Invert(op, before)) is before again, except that a
// top-level field absent from before comes back as null. It fails as
// Apply(before, op) would.
//
// The rules:
//   - set inverts to a set of the old value, null when it was absent (a
//     set of null deletes a json key again). When the old value was an
//     explicit null under a json object key, which a set of null would
//     delete, the inverse sets the enclosing value (the object holding
//     the key) to what it was.
//   - listRemove of an item that is not in the list (or on a null or
//     absent list) is a no-op and inverts to itself.
//   - listInsert on a null or absent list inverts to a set that restores
//     the null (or the absence of the json key), as above.
//   - listInsert of an item that was not in the list inverts to a
//     listRemove of it.
//   - listInsert of an item that was in the list (a move, possibly to
//     where it already was) and listRemove of a present item invert to a
//     listInsert of the old item {"after": its old previous neighbour},
//     or "prepend" when it was first.
//   - when the list held duplicates that make those anchors ambiguous
//     (the item, or its previous neighbour, appeared more than once), the
//     inverse is a set of the whole old list.
func Invert(op Op, before map[string]any) (Op, error) {
	if err := op.validate(); err != nil {
		return Op{}, err
	}
	t, err := locate(before, op.Path)
	if err != nil {
		return Op{}, err
	}
	if op.Op == OpSet {
		return t.restore(op.Path), nil
	}
	list, err := t.list(op)
	if err != nil {
		return Op{}, err
	}
	n := count(list, op.Value)
	switch {
	case op.Op == OpListRemove && n == 0:
		return cloneOp(op), nil
	case !t.present || t.old == nil:
		// A listInsert on a null or absent list: it must become so
		// again, not [].
		return t.restore(op.Path), nil
	case op.Op == OpListInsert && n == 0:
		return Op{Op: OpListRemove, Path: clonePath(op.Path), Value: clone(op.Value)}, nil
	case n > 1:
		return t.restore(op.Path), nil
	}
	// The item was present once: put it back after its old neighbour.
	i := 0
	for !equal(list[i], op.Value) {
		i++
	}
	back := Op{Op: OpListInsert, Path: clonePath(op.Path), Value: clone(list[i]), Where: &Where{Pos: Prepend}}
	if i > 0 {
		if count(list, list[i-1]) > 1 {
			// The anchor lookup would find the first of the duplicates.
			return t.restore(op.Path), nil
		}
		back.Where = &Where{Pos: After, Anchor: clone(list[i-1])}
	}
	return back, nil
}

// restore is a set that brings back the value the target had.
func (t target) restore(path []PathElem) Op {
	last := len(path) - 1
	if parent, ok := t.chain[last].(map[string]any); ok && last > 0 && t.present && t.old == nil {
		// A set of null would delete the key: set the object holding
		// it, which exists, to what it was.
		return Op{Op: OpSet, Path: clonePath(path[:last]), Value: clone(parent)}
	}
	// An absent key comes back absent too, as a set of null deletes it.
	return Op{Op: OpSet, Path: clonePath(path), Value: clone(t.old)}
}

func clonePath(p []PathElem) []PathElem {
	return append([]PathElem(nil), p...)
}

func cloneOp(op Op) Op {
	out := Op{Op: op.Op, Path: clonePath(op.Path), Value: clone(op.Value)}
	if op.Where != nil {
		out.Where = &Where{Pos: op.Where.Pos, Anchor: clone(op.Where.Anchor)}
	}
	return out
}
