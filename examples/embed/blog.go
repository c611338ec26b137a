package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

// blog is what this program adds to abe: its hooks, its route and its job.
type blog struct {
	app *abe.App
	// now is the clock of the office-hours rule and the publishing job;
	// tests set it.
	now func() time.Time
	// office is the time zone of the office hours.
	office *time.Location
}

// newBlog starts abe on cfg and registers the blog's hooks, route and job.
func newBlog(ctx context.Context, cfg *schema.Config, opts *abe.Options, now func() time.Time, office *time.Location) (*blog, error) {
	b := &blog{now: now, office: office}
	// Routes are mounted while New builds the router; they reach the app
	// through b at request time, once New has returned.
	opts.Routes = b.routes
	app, err := abe.New(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	b.app = app

	app.OnBeforeCreate("posts", b.slug)
	app.OnBeforeUpdate("posts", b.slug)
	for _, on := range []func(string, abe.RecordHook){app.OnBeforeCreate, app.OnBeforeUpdate, app.OnBeforeDelete} {
		on(abe.AllCollections, b.officeHours)
	}
	// The audit row needs the record's id, which a create has only once
	// its row is written: the written hook runs then, still inside the
	// write's transaction.
	app.Engine().OnWritten(b.audit)
	if err := app.Every("publish", time.Minute, b.publishDue); err != nil {
		app.Close()
		return nil, err
	}
	return b, nil
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// slugOf is title as a URL path element: "Hello, World!" is "hello-world".
func slugOf(title string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(title), "-"), "-")
}

// slug sets a post's slug from its title when a create leaves it out or a
// write changes the title. It runs before validation, so a required slug
// is there when the validator looks, and a title with no letters (an
// empty slug) is the client's 422.
func (b *blog) slug(_ context.Context, ev *abe.RecordEvent) error {
	title, ok := ev.After["title"].(string)
	if !ok {
		return nil // no title: validation answers
	}
	switch {
	case ev.Op == "create" && ev.After["slug"] == nil, ev.Before != nil && ev.Before["title"] != title:
		ev.After["slug"] = slugOf(title)
	}
	return nil
}

// officeHours refuses the writes of people outside Monday to Friday, 9:00
// to 17:00 in the office's time zone. Writes of the system (this
// program's job, its audit rows) go on at any hour.
func (b *blog) officeHours(_ context.Context, ev *abe.RecordEvent) error {
	if ev.Principal == nil && ev.System {
		return nil
	}
	t := b.now().In(b.office)
	if t.Weekday() == time.Saturday || t.Weekday() == time.Sunday || t.Hour() < 9 || t.Hour() >= 17 {
		return &abe.HookError{Status: http.StatusLocked, Code: "office_closed",
			Message: "writes are accepted Monday to Friday from 9:00 to 17:00 (" + b.office.String() + "); it is " + t.Format("Monday 15:04")}
	}
	return nil
}

// audit writes a row of audit_log for each write of a post, as the
// system, in the write's transaction: the post and its audit row commit
// together, or neither does.
func (b *blog) audit(ctx context.Context, ev *abe.RecordEvent) error {
	if ev.Collection != "posts" {
		return nil // not the audit rows themselves
	}
	actor := ""
	if ev.Principal != nil {
		actor = ev.Principal.UserID
	}
	_, err := ev.AsSystem().Create(ctx, "audit_log", map[string]any{
		"action": ev.Op, "collection": ev.Collection, "record_id": ev.ID, "actor": actor,
	})
	return err
}

// routes adds GET /api/posts/by-slug/{slug}: the post as its caller may
// read it (a published post, or one of their own), else 404.
func (b *blog) routes(r chi.Router) {
	r.Get("/api/posts/by-slug/{slug}", func(w http.ResponseWriter, r *http.Request) {
		slug := chi.URLParam(r, "slug")
		// Only slugs this program makes; it also keeps the filter's string
		// literal well formed (the filter binds it as a parameter).
		if slug == "" || slug != slugOf(slug) {
			b.app.WriteError(w, r, abe.Refuse(http.StatusNotFound, "no such post"))
			return
		}
		posts, err := b.app.Records(r).List(r.Context(), "posts", abe.ListQuery{Filter: fmt.Sprintf("slug == %q", slug), Limit: 1})
		if err != nil {
			b.app.WriteError(w, r, err)
			return
		}
		if len(posts) == 0 {
			b.app.WriteError(w, r, abe.Refuse(http.StatusNotFound, "no such post"))
			return
		}
		mine := false
		if p := auth.PrincipalFrom(r.Context()); p != nil {
			mine = posts[0]["owner"] == p.UserID
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"post": posts[0], "mine": mine}) //nolint:errcheck // the client went away
	})
}

// publishDue publishes the posts whose publish_at has passed, as the
// system (the update rule forbids people to change published). It runs
// every minute through the job queue, on one node at a time.
func (b *blog) publishDue(ctx context.Context) error {
	sys := b.app.System()
	filter := fmt.Sprintf("published == false && publish_at <= timestamp(%q)", b.now().UTC().Format(time.RFC3339Nano))
	for {
		due, err := sys.List(ctx, "posts", abe.ListQuery{Filter: filter, Sort: "publish_at", Limit: 100})
		if err != nil {
			return fmt.Errorf("list due posts: %w", err)
		}
		var errs []error
		for _, p := range due {
			// The version makes it conditional: a post its author changed
			// meanwhile waits for the next run.
			if _, err := sys.Update(ctx, "posts", p.ID(), map[string]any{"published": true, "version": p.Version()}); err != nil {
				errs = append(errs, fmt.Errorf("publish %s: %w", p.ID(), err))
			}
		}
		if len(due) < 100 || len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
}
