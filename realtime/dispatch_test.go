package realtime

import (
	"slices"
	"testing"

	"github.com/abe-stack/abe/engine"
)

// batch builds a change log read: the seqs visible, and the snapshot.
func batch(xmin, xmax uint64, seqs ...int64) engine.ChangeBatch {
	b := engine.ChangeBatch{Xmin: xmin, Xmax: xmax}
	for _, s := range seqs {
		b.Changes = append(b.Changes, engine.Change{Seq: s, Collection: "todos", Op: "update"})
	}
	return b
}

func seqsOf(cs []engine.Change) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, c.Seq)
	}
	return out
}

// step feeds one read to the dispatcher as drain does and checks what
// goes out.
func step(t *testing.T, d *dispatcher, b engine.ChangeBatch, wantReady []int64, wantPos int64, wantBlocked bool) {
	t.Helper()
	ready, pos, blocked := d.settle(b)
	d.pos = pos
	if got := seqsOf(ready); !slices.Equal(got, wantReady) || pos != wantPos || blocked != wantBlocked {
		t.Fatalf("settle(seqs %v, xmin %d, xmax %d) = ready %v, pos %d, blocked %v; want %v, %d, %v",
			seqsOf(b.Changes), b.Xmin, b.Xmax, got, pos, blocked, wantReady, wantPos, wantBlocked)
	}
}

func TestSettleInOrder(t *testing.T) {
	t.Parallel()
	d := &dispatcher{pos: 10, seen: 10}
	step(t, d, batch(100, 100, 11, 12, 13), []int64{11, 12, 13}, 13, false)
	step(t, d, batch(100, 100), nil, 13, false)
}

// A position held by a running transaction stops the dispatcher until it
// commits; what committed after it waits, so events stay in seq order.
func TestSettleWaitsForARunningTransaction(t *testing.T) {
	t.Parallel()
	d := &dispatcher{pos: 10, seen: 10}
	// 12 is missing; transaction 100 (which holds it) is still running:
	// xmin 100, xmax 102.
	step(t, d, batch(100, 102, 11, 13), []int64{11}, 11, true)
	// Still running, and 14 committed meanwhile.
	step(t, d, batch(100, 103, 13, 14), nil, 11, true)
	// It commits: 12 is there, and everything goes out in order.
	step(t, d, batch(103, 103, 12, 13, 14), []int64{12, 13, 14}, 14, false)
	if len(d.holes) != 0 {
		t.Fatalf("holes left: %+v", d.holes)
	}
}

// A position whose transaction rolled back is passed once every
// transaction that could hold it has finished.
func TestSettlePassesARolledBackPosition(t *testing.T) {
	t.Parallel()
	d := &dispatcher{pos: 10, seen: 10}
	step(t, d, batch(100, 102, 11, 13), []int64{11}, 11, true)
	// Transaction 100 is gone (xmin moved past the xmax of when the hole
	// was found) and 12 never appeared: rolled back.
	step(t, d, batch(102, 105, 13), []int64{13}, 13, false)
}

// The xmax that decides a hole is the one of the read that first saw it:
// a later read with a higher xmin, but an xmin below that first xmax,
// must not pass it, however many reads go by.
func TestSettleKeepsTheFirstXmax(t *testing.T) {
	t.Parallel()
	d := &dispatcher{pos: 10, seen: 10}
	step(t, d, batch(90, 100, 11, 13), []int64{11}, 11, true)
	// New transactions came and went (xmax 200), but the oldest running is
	// 95, below the first xmax of the hole at 12.
	step(t, d, batch(95, 200, 13, 15), nil, 11, true)
	// The hole at 14 was first seen with xmax 200: when xmin passes 100
	// but not 200, 12 is settled (rolled back) and 14 still holds.
	step(t, d, batch(150, 210, 13, 15), []int64{13}, 13, true)
	step(t, d, batch(200, 210, 15), []int64{15}, 15, false)
}

// A batch that ends below a hole seen earlier (the read was limited)
// keeps that hole's first xmax for the next read.
func TestSettleKeepsHolesAboveTheBatch(t *testing.T) {
	t.Parallel()
	d := &dispatcher{pos: 10, seen: 10}
	step(t, d, batch(100, 101, 11, 13), []int64{11}, 11, true)
	// 12 committed. The next read is limited to two rows and ends at 13.
	step(t, d, batch(101, 300, 12, 13), []int64{12, 13}, 13, false)
	// Positions between reads that were seen before keep their state;
	// new ones (above seen) take the read's xmax.
	step(t, d, batch(150, 300, 16), nil, 13, true)
	step(t, d, batch(300, 301, 16), []int64{16}, 16, false)
}
