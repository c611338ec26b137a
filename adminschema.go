package abe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/internal/pg"
	"github.com/abe-stack/abe/schema"
)

// GET /api/admin/schema: the collections in force as abe.yaml declares
// them, and what `abe migrate plan` would print for the running database.
// It reads the model in force, so it follows a reload (abe dev).

// WritePlan prints plan as `abe migrate plan` does: a numbered line per
// step with its SQL (system migrations' only when verbose), and how to
// apply the destructive steps.
func WritePlan(w io.Writer, plan *schema.Plan, verbose bool) {
	plan.Format(w, verbose)
	if d := plan.Destructive(); len(d) > 0 {
		fmt.Fprintf(w, "\n%d destructive step(s): apply them with `abe migrate apply --allow-destructive`\n", len(d))
	}
}

type schemaAnswer struct {
	ConfigPath  string           `json:"config_path"`
	Collections []collectionView `json:"collections"`
	Plan        planView         `json:"plan"`
}

type planView struct {
	InSync bool `json:"in_sync"`
	// Text is what `abe migrate plan` prints.
	Text  string        `json:"text"`
	Steps []schema.Step `json:"steps"`
	// Statements are the steps' SQL, in order.
	Statements []string `json:"statements"`
	// Error says why there is no plan (in_sync is false then).
	Error string `json:"error,omitempty"`
}

type collectionView struct {
	Name        string  `json:"name"`
	RenamedFrom string  `json:"renamed_from,omitempty"`
	Realtime    bool    `json:"realtime"`
	Line        int     `json:"line,omitempty"`
	Fields      []field `json:"fields"`
	Indexes     []index `json:"indexes"`
	// Rules are the CEL expressions by operation; null denies everyone
	// but holders of "*".
	Rules      map[string]*string    `json:"rules"`
	FieldRules map[string]fieldRules `json:"field_rules"`
	Files      []fileField           `json:"files"`
}

type field struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Required    bool     `json:"required,omitempty"`
	Unique      bool     `json:"unique,omitempty"`
	Many        bool     `json:"many,omitempty"`
	Nullable    bool     `json:"nullable,omitempty"`
	Default     any      `json:"default,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	Pattern     string   `json:"pattern,omitempty"`
	Values      []string `json:"values,omitempty"`
	Collection  string   `json:"collection,omitempty"`
	OnDelete    string   `json:"on_delete,omitempty"`
	RenamedFrom string   `json:"renamed_from,omitempty"`
	MaxSize     int64    `json:"max_size,omitempty"`
	MIMETypes   []string `json:"mime_types,omitempty"`
}

type index struct {
	Name   string   `json:"name,omitempty"`
	Fields []string `json:"fields"`
	Unique bool     `json:"unique,omitempty"`
}

type fieldRules struct {
	Read   *string `json:"read"`
	Update *string `json:"update"`
}

// fileField is a file field with the limits in force (storage.max_size
// when the field sets none).
type fileField struct {
	Field     string   `json:"field"`
	Many      bool     `json:"many"`
	MaxSize   int64    `json:"max_size"`
	MIMETypes []string `json:"mime_types"`
}

func ruleText(r *schema.Rule) *string {
	if r == nil {
		return nil
	}
	return &r.Expr
}

func viewOf(c *schema.Collection, maxSize int64) collectionView {
	v := collectionView{Name: c.Name, RenamedFrom: c.RenamedFrom, Realtime: c.Realtime, Line: c.Pos.Line,
		Fields: []field{}, Indexes: []index{}, FieldRules: map[string]fieldRules{}, Files: []fileField{},
		Rules: map[string]*string{"list": ruleText(c.Rules.List), "read": ruleText(c.Rules.Read), "create": ruleText(c.Rules.Create),
			"update": ruleText(c.Rules.Update), "delete": ruleText(c.Rules.Delete)}}
	for _, f := range c.Fields {
		v.Fields = append(v.Fields, field{Name: f.Name, Type: string(f.Type), Required: f.Required, Unique: f.Unique, Many: f.Many,
			Nullable: f.Nullable, Default: f.Default, Min: f.Min, Max: f.Max, Pattern: f.Pattern, Values: f.Values,
			Collection: f.Collection, OnDelete: f.OnDelete, RenamedFrom: f.RenamedFrom, MaxSize: f.MaxSize, MIMETypes: f.MIMETypes})
		if f.Rules.Read != nil || f.Rules.Update != nil {
			v.FieldRules[f.Name] = fieldRules{Read: ruleText(f.Rules.Read), Update: ruleText(f.Rules.Update)}
		}
		if f.Type == schema.File {
			ff := fileField{Field: f.Name, Many: f.Many, MaxSize: f.MaxSize, MIMETypes: f.MIMETypes}
			if ff.MaxSize == 0 {
				ff.MaxSize = maxSize
			}
			if ff.MIMETypes == nil {
				ff.MIMETypes = []string{}
			}
			v.Files = append(v.Files, ff)
		}
	}
	for _, ix := range c.Indexes {
		v.Indexes = append(v.Indexes, index{Name: ix.Name, Fields: ix.Fields, Unique: ix.Unique})
	}
	return v
}

// planOf plans the migration of the running database to cfg. A plan
// that cannot be made (the database is down, live objects conflict) is
// out of sync, with the reason.
func (a *App) planOf(ctx context.Context, cfg *schema.Config) planView {
	v := planView{Steps: []schema.Step{}, Statements: []string{}}
	plan, err := NewMigrator(cfg, a.opts.Version).Plan(ctx, a.pool)
	if err != nil {
		a.log.Warn("admin schema: planning the migration failed", slog.String("error", err.Error()))
		v.Error = pg.Explain(err)
		return v
	}
	v.InSync = plan.Empty()
	var text strings.Builder
	WritePlan(&text, plan, false)
	v.Text = text.String()
	for _, s := range plan.Steps {
		v.Steps = append(v.Steps, s)
		v.Statements = append(v.Statements, s.SQL...)
	}
	return v
}

func (a *App) handleSchema(w http.ResponseWriter, r *http.Request) {
	cfg := a.cur.Load().cfg
	ans := schemaAnswer{ConfigPath: cfg.File, Collections: []collectionView{}, Plan: a.planOf(r.Context(), cfg)}
	for _, c := range cfg.Collections {
		ans.Collections = append(ans.Collections, viewOf(c, int64(cfg.Storage.MaxSize)))
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, ans)
}
