package engine

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/abe-stack/abe/rules"
)

// This file is what realtime reads: the change log in order, records as
// they are now, and records as a principal may see them. Realtime never
// touches the tables itself.

// Change is an entry of the change log.
type Change struct {
	Seq        int64
	Collection string
	ID         string
	Op         string // create, update or delete
	Version    int64
	At         time.Time
	// Old is the record as it was, for a delete.
	Old Record
}

// ChangeBatch is a read of the change log with the bounds of the snapshot
// it was read in (pg_snapshot_xmin and xmax): every transaction below
// Xmin had finished, so a position missing below the batch whose
// transaction was older than Xmin belongs to a rolled-back one.
type ChangeBatch struct {
	Changes    []Change
	Xmin, Xmax uint64
}

// ReadChanges reads up to limit changes after position after, in order,
// across collections. Deletes carry their old record only for the
// collections in withOld, which saves decoding rows no one listens to.
func (e *Engine) ReadChanges(ctx context.Context, after int64, limit int, withOld func(collection string) bool) (ChangeBatch, error) {
	var b ChangeBatch
	rows, err := e.db.Query(ctx, `WITH s AS (SELECT pg_current_snapshot() AS snap)
		SELECT pg_snapshot_xmin(s.snap)::text::bigint, pg_snapshot_xmax(s.snap)::text::bigint,
		  c.seq, c.collection, c.record_id::text, c.op, c.version, c.at, c.old
		FROM s LEFT JOIN LATERAL (SELECT * FROM abe.changes WHERE seq > $1 ORDER BY seq LIMIT $2) c ON true
		ORDER BY c.seq`, after, limit)
	if err != nil {
		return b, fmt.Errorf("read the change log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var xmin, xmax int64
		var seq, version *int64
		var coll, id, op *string
		var at *time.Time
		var old map[string]any
		if err := rows.Scan(&xmin, &xmax, &seq, &coll, &id, &op, &version, &at, &old); err != nil {
			return b, fmt.Errorf("read the change log: %w", err)
		}
		b.Xmin, b.Xmax = uint64(xmin), uint64(xmax)
		if seq == nil {
			continue
		}
		c := Change{Seq: *seq, Collection: *coll, ID: *id, Op: *op, Version: *version, At: *at}
		if co := e.colls[c.Collection]; co != nil && old != nil && (withOld == nil || withOld(c.Collection)) {
			c.Old = co.fromJSON(old)
		}
		b.Changes = append(b.Changes, c)
	}
	if err := rows.Err(); err != nil {
		return b, fmt.Errorf("read the change log: %w", err)
	}
	return b, nil
}

// ChangesOf reads the changes of one collection (and one record, when id
// is not empty) in (after, upTo], up to limit, for a subscriber catching
// up. prunedThrough is the highest position the log no longer keeps: a
// subscriber whose after is below it has missed changes.
func (e *Engine) ChangesOf(ctx context.Context, collection, id string, after, upTo int64, limit int) (changes []Change, prunedThrough int64, err error) {
	co := e.colls[collection]
	if co == nil {
		return nil, 0, fmt.Errorf("no collection %q", collection)
	}
	rows, err := e.db.Query(ctx, `WITH st AS (SELECT pruned_through FROM abe.change_log WHERE id = 1)
		SELECT st.pruned_through, c.seq, c.record_id::text, c.op, c.version, c.at, c.old
		FROM st LEFT JOIN LATERAL (
		  SELECT * FROM abe.changes WHERE collection = $1 AND seq > $2 AND seq <= $3
		    AND ($4 = '' OR record_id = NULLIF($4, '')::uuid) ORDER BY seq LIMIT $5
		) c ON true ORDER BY c.seq`, collection, after, upTo, id, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("read the changes of %s: %w", collection, err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq, version *int64
		var rid, op *string
		var at *time.Time
		var old map[string]any
		if err := rows.Scan(&prunedThrough, &seq, &rid, &op, &version, &at, &old); err != nil {
			return nil, 0, fmt.Errorf("read the changes of %s: %w", collection, err)
		}
		if seq == nil {
			continue
		}
		c := Change{Seq: *seq, Collection: collection, ID: *rid, Op: *op, Version: *version, At: *at}
		if old != nil {
			c.Old = co.fromJSON(old)
		}
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read the changes of %s: %w", collection, err)
	}
	return changes, prunedThrough, nil
}

// LastChange is the newest position of the change log.
func (e *Engine) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := e.db.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM abe.changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read the change log: %w", err)
	}
	return seq, nil
}

// Records reads records of a collection by id, as they are now; ids that
// do not exist are absent.
func (e *Engine) Records(ctx context.Context, collection string, ids []string) (map[string]Record, error) {
	co := e.colls[collection]
	if co == nil {
		return nil, fmt.Errorf("no collection %q", collection)
	}
	out := map[string]Record{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := e.db.Query(ctx, `SELECT `+co.selectList+` FROM `+co.table+` t WHERE t.id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", collection, err)
	}
	defer rows.Close()
	for rows.Next() {
		rec, err := co.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", collection, err)
		}
		out[rec.ID()] = rec
	}
	return out, rows.Err()
}

// Loads starts a memo of the records rules load with get() and exists(),
// to share across the checks of one batch of events.
func (e *Engine) Loads(ctx context.Context) *rules.Loads { return e.loads(ctx, e.db) }

// Reader is who reads, as rules see them.
type Reader struct {
	Principal *rules.Principal
	Request   rules.Request
}

// Readable checks the read rule of collection for rec and returns the
// fields the field read rules hide from the reader.
func (e *Engine) Readable(ctx context.Context, collection string, who Reader, rec Record, loads *rules.Loads) (ok bool, hidden []string, err error) {
	return e.visible(ctx, collection, who, rec, loads, false)
}

// Listed is Readable for a feed of the whole collection (a collection
// topic, a webhook): the list rule must allow rec as well. A record that
// may be read by id but is not listed (an unlisted link) must not be
// announced to everyone who follows the collection.
func (e *Engine) Listed(ctx context.Context, collection string, who Reader, rec Record, loads *rules.Loads) (ok bool, hidden []string, err error) {
	return e.visible(ctx, collection, who, rec, loads, !e.rules.ListIsRead(collection))
}

func (e *Engine) visible(ctx context.Context, collection string, who Reader, rec Record, loads *rules.Loads, list bool) (ok bool, hidden []string, err error) {
	co := e.colls[collection]
	if co == nil {
		return false, nil, fmt.Errorf("no collection %q", collection)
	}
	c := &caller{principal: who.Principal, request: who.Request}
	in := c.input(rec, nil, nil)
	if list {
		d, err := e.rules.Allow(ctx, collection, rules.List, in, loads)
		if err != nil || !d.Allowed {
			return false, nil, err
		}
	}
	d, err := e.rules.Allow(ctx, collection, rules.Read, in, loads)
	if err != nil || !d.Allowed {
		return false, nil, err
	}
	v, err := e.viewOf(ctx, co, c, loads, rec, nil)
	if err != nil {
		return false, nil, err
	}
	return true, v.hidden, nil
}

// AppendRecord appends rec as JSON without the hidden fields.
func (e *Engine) AppendRecord(buf *bytes.Buffer, collection string, rec Record, hidden []string) error {
	co := e.colls[collection]
	if co == nil {
		return fmt.Errorf("no collection %q", collection)
	}
	return co.appendJSON(buf, rec, &view{hidden: hidden})
}

// Realtime reports whether collection exists and allows subscriptions.
func (e *Engine) Realtime(collection string) (exists, enabled bool) {
	co := e.colls[collection]
	if co == nil {
		return false, false
	}
	return true, co.cfg.Realtime
}
