package engine

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/abe-stack/abe/rules"
)

// change is an entry of the change log.
type logEntry struct {
	seq     int64
	id, op  string
	version int64
	at      time.Time
	old     map[string]any
}

// handleChanges answers GET /api/collections/{c}/changes?since=: the
// changes after a position that the caller may read, so a client that was
// offline catches up without refetching everything. A position older than
// the log keeps is 410: the client has missed changes and must refetch.
func (e *Engine) handleChanges(w http.ResponseWriter, r *http.Request) {
	co, err := e.collOf(r)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	since, err := strconv.ParseInt(q.Get("since"), 10, 64)
	if err != nil || since < 0 {
		e.writeError(w, r, errStatus(http.StatusBadRequest, "since must be a change position (a whole number, 0 for the start)"))
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxLimit {
			e.writeError(w, r, errStatus(http.StatusBadRequest, "limit must be a whole number from 1 to %d", maxLimit))
			return
		}
	}
	ctx := r.Context()
	c := e.callerOf(r)
	// Only the entries of records the list rule lets the caller see are
	// read, in SQL: the page and next_since must not move with writes the
	// caller cannot see. A delete is judged by the record it removed.
	sq := &rules.SQL{Args: []any{co.name, since, limit}}
	pred, err := e.rules.ListPredicate(co.name, &rules.SQLInput{Auth: c.principal, Request: c.request}, sq)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	visible := `CASE WHEN ch.op = 'delete' THEN EXISTS (SELECT 1 FROM jsonb_populate_record(NULL::` + co.table + `, ch.old) t WHERE ` + pred + `)
		ELSE EXISTS (SELECT 1 FROM ` + co.table + ` t WHERE t.id = ch.record_id AND ` + pred + `) END`
	// One statement, so the prune position and the entries come from one
	// snapshot: a prune in between cannot open an unnoticed gap.
	rows, err := e.db.Query(ctx, `WITH st AS (SELECT pruned_through FROM abe.change_log WHERE id = 1)
		SELECT st.pruned_through, c.seq, c.record_id::text, c.op, c.version, c.at, c.old
		FROM st LEFT JOIN LATERAL (
		  SELECT * FROM abe.changes ch WHERE ch.collection = $1 AND ch.seq > $2 AND `+visible+` ORDER BY ch.seq LIMIT $3
		) c ON true ORDER BY c.seq`, sq.Args...)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	var entries []logEntry
	var pruned int64
	for rows.Next() {
		var en logEntry
		var seq, version *int64
		var id, op *string
		var at *time.Time
		if err := rows.Scan(&pruned, &seq, &id, &op, &version, &at, &en.old); err != nil {
			rows.Close()
			e.writeError(w, r, err)
			return
		}
		if seq == nil {
			continue
		}
		en.seq, en.id, en.op, en.version, en.at = *seq, *id, *op, *version, *at
		entries = append(entries, en)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		e.writeError(w, r, err)
		return
	}
	if since < pruned {
		e.writeError(w, r, errStatus(http.StatusGone, "changes up to position %d are no longer kept; refetch the records, then follow the changes from the newest position", pruned))
		return
	}
	loads := e.loads(ctx, e.db)
	current, err := e.currentRecords(ctx, co, entries)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	// A record changed twice in the page is sent once, as it is now: the
	// client needs the state, not the history.
	last := make(map[string]int64, len(entries))
	for _, en := range entries {
		last[en.id] = en.seq
	}
	next := since
	var buf bytes.Buffer
	buf.WriteString(`{"items":[`)
	n := 0
	for _, en := range entries {
		next = en.seq
		if last[en.id] != en.seq {
			continue
		}
		var rec Record
		switch en.op {
		case "delete":
			rec = co.fromJSON(en.old)
		default:
			// The record as it is now; gone means a delete follows.
			if rec = current[en.id]; rec == nil {
				continue
			}
		}
		d, err := e.rules.Allow(ctx, co.name, rules.Read, c.input(rec, nil, nil), loads)
		if err != nil {
			e.writeError(w, r, err)
			return
		}
		if !d.Allowed {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		fmt.Fprintf(&buf, `{"seq":%d,"op":%q,"id":%q,"version":%d,"at":%q`, en.seq, en.op, en.id, en.version, en.at.UTC().Format(time.RFC3339Nano))
		if en.op != "delete" {
			v, err := e.viewOf(ctx, co, c, loads, rec, nil)
			if err != nil {
				e.writeError(w, r, err)
				return
			}
			buf.WriteString(`,"record":`)
			if err := co.appendJSON(&buf, rec, v); err != nil {
				e.writeError(w, r, err)
				return
			}
		}
		buf.WriteByte('}')
	}
	fmt.Fprintf(&buf, `],"next_since":%d}`, next)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes()) //nolint:errcheck // the client went away
}

// currentRecords reads the records that the create and update entries
// name, as they are now.
func (e *Engine) currentRecords(ctx context.Context, co *coll, entries []logEntry) (map[string]Record, error) {
	var ids []string
	for _, en := range entries {
		if en.op != "delete" {
			ids = append(ids, en.id)
		}
	}
	out := map[string]Record{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := e.db.Query(ctx, `SELECT `+co.selectList+` FROM `+co.table+` t WHERE t.id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		rec, err := co.scan(rows)
		if err != nil {
			return nil, err
		}
		out[rec.ID()] = rec
	}
	return out, rows.Err()
}

// fromJSON reads a record that to_jsonb gave (the old row of a delete)
// into Record values.
func (co *coll) fromJSON(m map[string]any) Record {
	rec := Record{}
	for _, c := range co.columns {
		v := m[c.name]
		switch c.kind {
		case "int":
			if f, ok := v.(float64); ok {
				v = int64(f)
			}
		case "time":
			if s, ok := v.(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					v = t.UTC()
				}
			}
		case "list":
			items, _ := v.([]any)
			list := make([]string, 0, len(items))
			for _, it := range items {
				if s, ok := it.(string); ok {
					list = append(list, s)
				}
			}
			v = list
		}
		rec[c.name] = v
	}
	return rec
}

// PruneChanges removes changes older than the retention and records the
// highest position removed, so older positions are answered 410.
func (e *Engine) PruneChanges(ctx context.Context) (int64, error) {
	cutoff := e.now().Add(-e.cfg.Retention)
	var removed int64
	// One statement: the entries go and the position moves together.
	err := e.db.QueryRow(ctx, `WITH gone AS (DELETE FROM abe.changes WHERE at < $1 RETURNING seq),
		m AS (SELECT count(*) AS n, coalesce(max(seq), 0) AS s FROM gone)
		UPDATE abe.change_log SET pruned_through = greatest(pruned_through, m.s) FROM m WHERE id = 1 RETURNING m.n`, cutoff).Scan(&removed)
	if err != nil {
		return 0, fmt.Errorf("prune the change log: %w", err)
	}
	return removed, nil
}
