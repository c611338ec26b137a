package engine

import "github.com/abe-stack/abe/schema"

// Migrations are the system migrations of the change log.
func Migrations() []schema.Migration {
	return []schema.Migration{
		{Component: "engine", Version: 1, Name: "change log", SQL: changesV1},
		{Component: "engine", Version: 2, Name: "file deletions", SQL: fileDeletionsV1},
	}
}

// TableTriggers are the triggers every collection table gets: each write,
// including those Postgres makes itself (cascading deletes, set_null,
// many-relation clean-ups), appends to the change log in its own
// transaction, and an update that did not bump the version itself gets a
// new version, so clients holding the old one notice.
func TableTriggers() []schema.TableTrigger {
	return []schema.TableTrigger{
		{Suffix: "version", When: "BEFORE UPDATE", Function: "abe.bump_version"},
		{Suffix: "changes", When: "AFTER INSERT OR UPDATE OR DELETE", Function: "abe.record_change"},
		// Files a write lets go of (a replaced or removed file, the files
		// of a deleted record, cascades included) are queued for deletion
		// in the write's transaction; see files_cleanup.go.
		{Suffix: "files", When: "AFTER UPDATE OF {fields} OR DELETE", Function: "abe.queue_file_deletions", OnFields: schema.File},
	}
}

// The change log. seq orders changes as they were made; xid lets readers
// tell which transactions have committed (realtime reads up to the
// oldest running one, so a change committed late is not skipped). A
// delete keeps the record as it was, so that who may hear of it can be
// checked against it.
const changesV1 = `
CREATE TABLE abe.changes (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  collection text NOT NULL,
  record_id  uuid NOT NULL,
  op         text NOT NULL CHECK (op IN ('create', 'update', 'delete')),
  version    bigint NOT NULL,
  at         timestamptz NOT NULL DEFAULT now(),
  xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
  old        jsonb
);
CREATE INDEX changes_collection_seq_idx ON abe.changes (collection, seq);
CREATE INDEX changes_at_idx ON abe.changes (at);

-- pruned_through is the highest seq the prune removed: a client asking
-- for changes since an earlier position has missed some and must refetch.
CREATE TABLE abe.change_log (
  id             integer PRIMARY KEY CHECK (id = 1),
  pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO abe.change_log (id) VALUES (1);

-- The engine's own updates set version = version + 1; Postgres's (a
-- set_null, a many-relation clean-up) and hand-written SQL do not.
CREATE FUNCTION abe.bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version = OLD.version THEN
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;

CREATE FUNCTION abe.record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO abe.changes (collection, record_id, op, version) VALUES (TG_ARGV[0], NEW.id, 'create', NEW.version);
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO abe.changes (collection, record_id, op, version) VALUES (TG_ARGV[0], NEW.id, 'update', NEW.version);
  ELSE
    INSERT INTO abe.changes (collection, record_id, op, version, old) VALUES (TG_ARGV[0], OLD.id, 'delete', OLD.version, to_jsonb(OLD));
  END IF;
  -- One notification per collection and transaction: Postgres folds equal ones.
  PERFORM pg_notify('abe_changes', TG_ARGV[0]);
  RETURN NULL;
END
$$;
`
