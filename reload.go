package abe

import (
	"context"
	"fmt"
	"io"

	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

// ReloadResult says what Reload did to the database.
type ReloadResult struct {
	// Applied are the migration steps that ran.
	Applied []schema.Step
	// Skipped are the destructive steps left for `abe migrate apply
	// --allow-destructive`: until then the database keeps what they would
	// drop or narrow.
	Skipped []schema.Step
}

// Reload makes the collections, roles and rules of cfg the ones in force
// without a restart (abe dev, on every save of abe.yaml): it compiles the
// rules, applies the migration's non-destructive steps, and swaps in the
// new records engine, rules, OpenAPI document and realtime rule checks.
// Open WebSocket connections stay, and their events are checked against
// the new read rules from the next one on. The other sections of the file
// (server, database, auth, mail, storage, realtime, jobs, hosting) take
// effect at the next start; the hosted files themselves are read from disk
// on every request. On an error the running model stays as it was.
func (a *App) Reload(ctx context.Context, cfg *schema.Config, progress io.Writer) (*ReloadResult, error) {
	a.reload.Lock()
	defer a.reload.Unlock()
	next := *a.cfg
	next.File, next.Roles, next.Collections = cfg.File, cfg.Roles, cfg.Collections
	r, err := rules.Compile(&next, &rules.Options{Dev: a.opts.Dev})
	if err != nil {
		return nil, err
	}
	m, err := a.newModel(&next, r)
	if err != nil {
		return nil, err
	}
	mig := NewMigrator(&next, a.opts.Version)
	plan, err := mig.Plan(ctx, a.pool)
	if err != nil {
		return nil, fmt.Errorf("check the database schema: %w", err)
	}
	res := &ReloadResult{Skipped: plan.Destructive()}
	if !plan.Empty() {
		applied, err := mig.Apply(ctx, a.pool, &schema.ApplyOpts{SkipDestructive: true, Progress: progress})
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		res.Applied = applied.Steps
	}
	a.cur.Store(m)
	a.webhooks.Use(m.webhooks)
	a.hub.SetModel(m.engine, m.rules)
	return res, nil
}
