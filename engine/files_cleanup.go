package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/internal/storage"
)

// Files no record holds any more wait in abe.file_deletions until
// DeleteOrphanedFiles removes them from storage. Rows come from two places:
//
//   - the trigger abe.queue_file_deletions on every collection table with
//     file fields: a write that replaces or removes a file, or deletes a
//     record (cascades and set_null included), queues the files it let go
//     of, in its own transaction, so a rolled-back write queues nothing;
//   - an upload, before its bytes reach storage: a row due after
//     uploadGrace, which the upload's own transaction deletes when it
//     attaches the file. An upload that never commits (refused, crashed,
//     abandoned) leaves the row, and the file is removed once it is due.
//
// So a file in storage that no record holds always has a row: nothing
// leaks, even across crashes.
const fileDeletionsV1 = `
CREATE TABLE abe.file_deletions (
  key        text PRIMARY KEY,
  collection text NOT NULL,
  record_id  uuid NOT NULL,
  field      text NOT NULL,
  reason     text NOT NULL CHECK (reason IN ('upload', 'replaced', 'deleted')),
  queued_at  timestamptz NOT NULL DEFAULT now(),
  due_at     timestamptz NOT NULL DEFAULT now(),
  attempts   integer NOT NULL DEFAULT 0,
  last_error text
);
CREATE INDEX file_deletions_due_at_idx ON abe.file_deletions (due_at);

-- The names a file field holds: one (text) or many (text[]), as jsonb.
CREATE FUNCTION abe.file_names(v jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE jsonb_typeof(v)
    WHEN 'string' THEN ARRAY[v #>> '{}']
    WHEN 'array' THEN ARRAY(SELECT jsonb_array_elements_text(v))
    ELSE '{}'::text[]
  END
$$;

-- Arguments: the collection, then its file fields. A file's key is
-- <record id>/<name>, as the engine stores it.
CREATE FUNCTION abe.queue_file_deletions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_row jsonb := to_jsonb(OLD);
  new_row jsonb;
  i integer;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    new_row := to_jsonb(NEW);
  END IF;
  FOR i IN 1 .. TG_NARGS - 1 LOOP
    INSERT INTO abe.file_deletions (key, collection, record_id, field, reason)
    SELECT OLD.id::text || '/' || v, TG_ARGV[0], OLD.id, TG_ARGV[i],
           CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'replaced' END
    FROM unnest(abe.file_names(old_row -> TG_ARGV[i])) AS v
    WHERE NOT (v = ANY (abe.file_names(new_row -> TG_ARGV[i])))
    ON CONFLICT (key) DO NOTHING;
  END LOOP;
  RETURN NULL;
END
$$;
`

// uploadGrace is how long an upload may take before its file counts as
// abandoned. An upload that finishes later is refused, not lost: its
// transaction finds its row gone and removes the file again.
const uploadGrace = time.Hour

// Retries of a failed deletion wait fileRetryBase x 2^attempts, at most
// fileRetryMax.
const (
	fileRetryBase = time.Minute
	fileRetryMax  = 24 * time.Hour
)

// DeleteOrphanedFiles removes from storage up to limit files that no
// record holds any more and whose time has come, and tells how many it
// removed. The file clean-up job calls it periodically until it returns 0.
// Several nodes may run it at once: each claims its rows with SKIP LOCKED.
// A deletion that fails is retried later with backoff; the row keeps the
// error and the number of attempts (SELECT * FROM abe.file_deletions WHERE
// attempts > 0 shows them).
func (e *Engine) DeleteOrphanedFiles(ctx context.Context, limit int) (int, error) {
	if e.cfg.Storage == nil || limit < 1 {
		return 0, nil
	}
	deleted := 0
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT key, attempts FROM abe.file_deletions WHERE due_at <= now()
			ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		type due struct {
			key      string
			attempts int
		}
		var claimed []due
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.key, &d.attempts); err != nil {
				rows.Close()
				return err
			}
			claimed = append(claimed, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var done []string
		for _, d := range claimed {
			err := e.cfg.Storage.Delete(ctx, d.key)
			// A key storage refuses (a value written into a file field by
			// hand) names no file it could hold.
			if err == nil || errors.Is(err, storage.ErrInvalidKey) {
				done = append(done, d.key)
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			wait := min(fileRetryBase<<min(d.attempts, 20), fileRetryMax)
			e.log.WarnContext(ctx, "deleting an orphaned file failed; will retry", slog.String("key", d.key),
				slog.Int("attempts", d.attempts+1), slog.Duration("retry_in", wait), slog.String("error", err.Error()))
			if _, err := tx.Exec(ctx, `UPDATE abe.file_deletions SET attempts = attempts + 1, last_error = $2,
				due_at = now() + make_interval(secs => $3) WHERE key = $1`, d.key, err.Error(), wait.Seconds()); err != nil {
				return err
			}
		}
		if len(done) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM abe.file_deletions WHERE key = ANY($1)`, done); err != nil {
				return err
			}
		}
		deleted = len(done)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete orphaned files: %w", err)
	}
	return deleted, nil
}

// queueUpload records an upload about to start, so that its file is
// removed should the upload never attach it.
func (e *Engine) queueUpload(ctx context.Context, co *coll, col *column, id, key string) error {
	_, err := e.db.Exec(ctx, `INSERT INTO abe.file_deletions (key, collection, record_id, field, reason, due_at)
		VALUES ($1, $2, $3, $4, 'upload', now() + make_interval(secs => $5))`, key, co.name, id, col.name, uploadGrace.Seconds())
	if err != nil {
		return fmt.Errorf("queue upload %s: %w", key, err)
	}
	return nil
}

// claimUpload takes an upload's row in the transaction that attaches its
// file. Without the row, the file was (or is being) removed as abandoned.
func claimUpload(ctx context.Context, tx pgx.Tx, key string) error {
	tag, err := tx.Exec(ctx, `DELETE FROM abe.file_deletions WHERE key = $1 AND reason = 'upload'`, key)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return &apiError{status: 408, detail: "the upload took too long and was discarded; send the file again"}
	}
	return nil
}

// discardUpload removes the file of an upload that will not be attached,
// now if storage answers, else when its row comes due.
func (e *Engine) discardUpload(ctx context.Context, co *coll, col *column, id, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.cfg.Storage.Delete(ctx, key); err != nil {
		e.log.WarnContext(ctx, "removing a discarded upload failed; the clean-up job will", slog.String("key", key), slog.String("error", err.Error()))
		// The row may be gone (the upload outlived its grace): queue the
		// file again, due now.
		if _, err := e.db.Exec(ctx, `INSERT INTO abe.file_deletions (key, collection, record_id, field, reason) VALUES ($1, $2, $3, $4, 'upload')
			ON CONFLICT (key) DO UPDATE SET due_at = now()`, key, co.name, id, col.name); err != nil {
			e.log.ErrorContext(ctx, "queueing a discarded upload failed; its file is orphaned", slog.String("key", key), slog.String("error", err.Error()))
		}
		return
	}
	if _, err := e.db.Exec(ctx, `DELETE FROM abe.file_deletions WHERE key = $1 AND reason = 'upload'`, key); err != nil {
		e.log.WarnContext(ctx, "forgetting a discarded upload failed; the clean-up job will", slog.String("key", key), slog.String("error", err.Error()))
	}
}
