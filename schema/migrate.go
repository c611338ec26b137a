package schema

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Migration is a versioned SQL script that creates or changes the system
// tables of one component (core, auth, ...). Components own their tables
// and hand their migrations to the Migrator, which runs the pending ones
// before the collection changes.
type Migration struct {
	Component string
	Version   int
	Name      string
	SQL       string
	// OwnTx runs the migration in a transaction of its own, after the
	// rest of the plan commits: PostgreSQL cannot use an enum value in
	// the transaction that added it, so migrations written to run one by
	// one (River's) must not share one.
	OwnTx bool
}

// Key identifies the migration among all components.
func (m *Migration) Key() string { return migrationKey(m.Component, m.Version) }

// Checksum identifies the migration's SQL, to notice one edited after it
// was applied.
func (m *Migration) Checksum() string {
	sum := sha256.Sum256([]byte(m.SQL))
	return hex.EncodeToString(sum[:])
}

func migrationKey(component string, version int) string {
	return fmt.Sprintf("%s/%d", component, version)
}

// migrateLockKey is the advisory lock every apply takes, so concurrent
// applies run one after the other. The value is arbitrary but fixed:
// "abe.migrate" read as bytes.
const migrateLockKey int64 = 0x6162652e6d6967

// Beginner starts transactions: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Extension plans steps for what a component keeps in its own tables
// from the configuration (auth syncs the roles of abe.yaml). Its steps run
// after the collection steps, in the same transaction.
type Extension interface {
	Plan(ctx context.Context, db DB, cfg *Config) ([]Step, error)
}

// Migrator plans and applies the changes that bring a database to a
// configuration.
type Migrator struct {
	Config *Config
	// System lists every system migration, in the order they must run.
	System []Migration
	// Extensions add the steps of components.
	Extensions []Extension
	// TableTriggers are put on every collection table.
	TableTriggers []TableTrigger
	// Version of abe, recorded with each applied plan.
	Version string
}

// Plan diffs the configuration against the database db.
func (m *Migrator) Plan(ctx context.Context, db DB) (*Plan, error) {
	live, err := ReadCatalog(ctx, db, m.Config.Database.Schema)
	if err != nil {
		return nil, err
	}
	return m.plan(ctx, db, live)
}

func (m *Migrator) plan(ctx context.Context, db DB, live *Catalog) (*Plan, error) {
	plan, err := Diff(DesiredWith(m.Config, m.TableTriggers), live, m.System)
	if err != nil {
		return nil, err
	}
	for _, ext := range m.Extensions {
		steps, err := ext.Plan(ctx, db, m.Config)
		if err != nil {
			return nil, err
		}
		plan.Steps = append(plan.Steps, steps...)
	}
	// Steps that run in a transaction of their own run after the others
	// commit; list them last, so the plan reads, and apply numbers its
	// steps, in the order they run.
	slices.SortStableFunc(plan.Steps, func(a, b Step) int {
		return cmp.Compare(ownTx(a), ownTx(b))
	})
	return plan, nil
}

// ownTx is 1 for a step that runs in a transaction of its own, else 0.
func ownTx(s Step) int {
	if s.Migration != nil && s.Migration.OwnTx {
		return 1
	}
	return 0
}

// ApplyOpts are options for Apply.
type ApplyOpts struct {
	// AllowDestructive lets steps that can lose data run.
	AllowDestructive bool
	// Progress receives a line per step as it runs; nil discards them.
	Progress io.Writer
	// SkipDestructive applies the other steps and leaves the destructive
	// ones, instead of refusing the plan (abe dev's reload).
	SkipDestructive bool
}

// DestructiveError refuses a plan with destructive steps.
type DestructiveError struct {
	Steps []Step
}

func (e *DestructiveError) Error() string {
	var b strings.Builder
	b.WriteString("the plan has steps that can lose data, and they were not allowed:")
	for _, s := range e.Steps {
		b.WriteString("\n  - " + s.Summary)
		if s.Warning != "" {
			b.WriteString(" (" + s.Warning + ")")
		}
	}
	b.WriteString("\nreview them with `abe migrate plan`, then run `abe migrate apply --allow-destructive`")
	return b.String()
}

// StepError is a step that failed; the transaction rolled back and nothing
// was applied.
type StepError struct {
	Index, Total int
	Step         Step
	Err          error
	// Committed says the steps before this one were applied: it ran in a
	// transaction of its own (Migration.OwnTx).
	Committed bool
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("step %d/%d (%s) failed: %v", e.Index, e.Total, e.Step.Summary, e.Err)
	var pgErr *pgconn.PgError
	if errors.As(e.Err, &pgErr) {
		msg = fmt.Sprintf("step %d/%d (%s) failed: %s", e.Index, e.Total, e.Step.Summary, pgErr.Message)
		if pgErr.Detail != "" {
			msg += " (" + pgErr.Detail + ")"
		}
		switch pgErr.Code {
		case "23502":
			msg += "\nsome records have no value for a field that is now required: give the field a default, or fill the records in first"
		case "23514":
			msg += "\nsome records break the new constraint: fix them, or loosen the field's min/max/pattern/values"
		case "23505":
			msg += "\nsome records share a value that is now unique: remove the duplicates first"
		case "23503":
			msg += "\nsome records point at records that do not exist: fix or clear them first"
		case "22P02", "42804":
			msg += "\nsome values do not convert to the new type: fix them, or keep the old type"
		}
	} else if e.Step.Warning != "" {
		msg += "\n" + e.Step.Warning
	}
	if e.Committed {
		return msg + "\nthe steps before it were applied; run the migration again once the cause is fixed"
	}
	return msg + "\nnothing was applied"
}

func (e *StepError) Unwrap() error { return e.Err }

// Apply brings the database to the configuration in one transaction. It
// first takes an advisory lock, so a concurrent apply waits and then finds
// nothing left to do. An empty plan changes and records nothing.
func (m *Migrator) Apply(ctx context.Context, db Beginner, opts *ApplyOpts) (*Plan, error) {
	if opts == nil {
		opts = &ApplyOpts{}
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL standard_conforming_strings = on"); err != nil {
		return nil, fmt.Errorf("prepare migration: %w", err)
	}
	// Plan under the lock: whatever another apply did meanwhile is seen.
	plan, err := m.Plan(ctx, tx)
	if err != nil {
		return nil, err
	}
	if plan.Empty() {
		return plan, nil
	}
	if opts.SkipDestructive && !opts.AllowDestructive {
		var keep []Step
		for _, st := range plan.Steps {
			if !st.Destructive {
				keep = append(keep, st)
			}
		}
		if plan = (&Plan{Steps: keep}); plan.Empty() {
			return plan, nil
		}
	}
	if d := plan.Destructive(); len(d) > 0 && !opts.AllowDestructive {
		return nil, &DestructiveError{Steps: d}
	}

	total := len(plan.Steps)
	var own []int
	for i, step := range plan.Steps {
		if step.Migration != nil && step.Migration.OwnTx {
			own = append(own, i)
			continue
		}
		fmt.Fprintf(progress, "[%d/%d] %s ... ", i+1, total, step.Summary)
		start := time.Now()
		for _, q := range step.SQL {
			if _, err := tx.Exec(ctx, q); err != nil {
				fmt.Fprintln(progress, "failed")
				return nil, &StepError{Index: i + 1, Total: total, Step: step, Err: err}
			}
		}
		if mig := step.Migration; mig != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO abe.system_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)`,
				mig.Component, mig.Version, mig.Name, mig.Checksum()); err != nil {
				return nil, fmt.Errorf("record system migration %s: %w", mig.Key(), err)
			}
		}
		fmt.Fprintf(progress, "ok (%s)\n", time.Since(start).Round(time.Millisecond))
	}
	steps, err := json.Marshal(plan.Steps)
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO abe.migrations (checksum, steps, config_file, abe_version) VALUES ($1, $2, $3, $4)`,
		plan.Checksum(), steps, m.Config.File, m.Version); err != nil {
		return nil, fmt.Errorf("record migration: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit migration: %w", err)
	}
	for _, i := range own {
		if err := applyOwn(ctx, db, plan.Steps[i], i+1, total, progress); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// applyOwn applies a system migration in its own transaction, under the
// migration lock; one another apply got to first is skipped.
func applyOwn(ctx context.Context, db Beginner, step Step, index, total int, progress io.Writer) error {
	mig := step.Migration
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin system migration %s: %w", mig.Key(), err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	var done bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM abe.system_migrations WHERE component = $1 AND version = $2)`,
		mig.Component, mig.Version).Scan(&done); err != nil {
		return fmt.Errorf("read system migrations: %w", err)
	}
	if done {
		return nil
	}
	fmt.Fprintf(progress, "[%d/%d] %s ... ", index, total, step.Summary)
	start := time.Now()
	for _, q := range step.SQL {
		if _, err := tx.Exec(ctx, q); err != nil {
			fmt.Fprintln(progress, "failed")
			return &StepError{Index: index, Total: total, Step: step, Err: err, Committed: true}
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO abe.system_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)`,
		mig.Component, mig.Version, mig.Name, mig.Checksum()); err != nil {
		return fmt.Errorf("record system migration %s: %w", mig.Key(), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit system migration %s: %w", mig.Key(), err)
	}
	fmt.Fprintf(progress, "ok (%s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// AppliedPlan is a plan recorded in abe.migrations.
type AppliedPlan struct {
	ID         int64
	AppliedAt  time.Time
	Checksum   string
	Steps      int
	ConfigFile string
	Version    string
}

// Status is the migration history of a database and what is pending.
type Status struct {
	Applied []AppliedPlan
	Pending *Plan
	// Changed lists applied system migrations whose SQL has since changed.
	Changed []string
}

// Status reads the history of applied plans (newest first, at most limit)
// and plans what is pending.
func (m *Migrator) Status(ctx context.Context, db DB, limit int) (*Status, error) {
	live, err := ReadCatalog(ctx, db, m.Config.Database.Schema)
	if err != nil {
		return nil, err
	}
	st := &Status{}
	if st.Pending, err = m.plan(ctx, db, live); err != nil {
		return nil, err
	}
	for _, mig := range m.System {
		if a, ok := live.Applied[mig.Key()]; ok && a.Checksum != mig.Checksum() {
			st.Changed = append(st.Changed, mig.Key())
		}
	}
	if len(live.Applied) == 0 {
		return st, nil
	}
	err = forRows(ctx, db, `SELECT id, applied_at, checksum, jsonb_array_length(steps), coalesce(config_file, ''), coalesce(abe_version, '')
		FROM abe.migrations ORDER BY id DESC LIMIT $1`, []any{limit}, func(r pgx.Rows) error {
		var a AppliedPlan
		if err := r.Scan(&a.ID, &a.AppliedAt, &a.Checksum, &a.Steps, &a.ConfigFile, &a.Version); err != nil {
			return err
		}
		st.Applied = append(st.Applied, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read migration history: %w", err)
	}
	return st, nil
}

// CoreMigrations are the system migrations of the migration system itself:
// the abe schema, the bookkeeping tables, and the functions collection
// tables use.
func CoreMigrations() []Migration {
	return []Migration{{Component: "core", Version: 1, Name: "abe schema, migration history, uuid_v7, many-relation checks", SQL: coreV1}}
}

const coreV1 = `
CREATE SCHEMA IF NOT EXISTS abe;

CREATE TABLE abe.system_migrations (
  component  text NOT NULL,
  version    integer NOT NULL,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (component, version)
);

CREATE TABLE abe.migrations (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  checksum    text NOT NULL,
  steps       jsonb NOT NULL,
  config_file text,
  abe_version text
);

-- UUIDv7 (RFC 9562): a millisecond timestamp then random bits, so ids sort
-- by creation and index well. Postgres 18 has uuidv7(); this works from 13.
CREATE FUNCTION abe.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

-- check_many_ref gives a many-relation (a uuid[] column) the guarantee of
-- a foreign key: every id it gains must exist in the target table, which
-- is locked FOR KEY SHARE like a foreign key check does.
-- Arguments: the quoted target table, the column name.
CREATE FUNCTION abe.check_many_ref() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids    uuid[];
  old_ids uuid[] := '{}';
  wanted integer;
  found  integer;
BEGIN
  EXECUTE format('SELECT ($1).%I', TG_ARGV[1]) INTO ids USING NEW;
  IF TG_OP = 'UPDATE' THEN
    EXECUTE format('SELECT ($1).%I', TG_ARGV[1]) INTO old_ids USING OLD;
  END IF;
  SELECT array_agg(DISTINCT i) INTO ids FROM unnest(ids) AS i
    WHERE i IS NOT NULL AND NOT (i = ANY (coalesce(old_ids, '{}')));
  wanted := coalesce(cardinality(ids), 0);
  IF wanted = 0 THEN
    RETURN NEW;
  END IF;
  EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s WHERE id = ANY ($1) FOR KEY SHARE) s', TG_ARGV[0])
    INTO found USING ids;
  IF found < wanted THEN
    RAISE EXCEPTION 'insert or update on table "%" violates many-relation "%"', TG_TABLE_NAME, TG_ARGV[1]
      USING ERRCODE = 'foreign_key_violation',
            DETAIL = format('%s of the ids in %s do not exist in %s.', wanted - found, TG_ARGV[1], TG_ARGV[0]),
            COLUMN = TG_ARGV[1], TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA, CONSTRAINT = TG_NAME;
  END IF;
  RETURN NEW;
END
$$;

-- many_ref_on_delete applies a many-relation's on_delete when a record it
-- may point at is deleted: set_null removes the id from every list,
-- cascade deletes the records that list it, restrict refuses the delete.
-- Arguments: the quoted source table, the column name, the action.
CREATE FUNCTION abe.many_ref_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  referenced boolean;
BEGIN
  IF TG_ARGV[2] = 'restrict' THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I @> ARRAY[$1])', TG_ARGV[0], TG_ARGV[1])
      INTO referenced USING OLD.id;
    IF referenced THEN
      RAISE EXCEPTION 'delete on table "%" violates many-relation "%" of %', TG_TABLE_NAME, TG_ARGV[1], TG_ARGV[0]
        USING ERRCODE = 'foreign_key_violation',
              DETAIL = format('Key (id)=(%s) is still referenced from %s.%s.', OLD.id, TG_ARGV[0], TG_ARGV[1]),
              CONSTRAINT = TG_NAME;
    END IF;
  ELSIF TG_ARGV[2] = 'cascade' THEN
    EXECUTE format('DELETE FROM %s WHERE %I @> ARRAY[$1]', TG_ARGV[0], TG_ARGV[1]) USING OLD.id;
  ELSE
    EXECUTE format('UPDATE %s SET %I = array_remove(%I, $1), version = version + 1, updated_at = now() WHERE %I @> ARRAY[$1]',
                   TG_ARGV[0], TG_ARGV[1], TG_ARGV[1], TG_ARGV[1]) USING OLD.id;
  END IF;
  RETURN OLD;
END
$$;
`
