package abe_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/engine/tstypes"
	"github.com/abe-stack/abe/schema"
)

// TestBlogExampleRules runs the rules of examples/blog/abe.yaml against a
// real server and Postgres: drafts seen by their author and moderators
// only, publishing and hiding for moderators only (on create too), the
// author's email shown to the author and admins only, and the moderator
// and admin roles counting only after a two-factor sign-in.
func TestBlogExampleRules(t *testing.T) {
	t.Parallel()
	cfg, err := schema.Load("examples/blog/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Secret = strings.Repeat("b", 40)
	cfg.Hosting.Dir = "" // the API alone: web/dist is built by the browser test
	clk := &testClock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	w := newWorldWith(t, cfg, &abe.Options{Now: clk.Now})
	const admin = "admin@x.test"
	created, err := w.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: admin, Password: "long enough pass phrase 9", Roles: []string{"admin"}, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	w.ids[admin] = created.ID
	w.tokens[admin] = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": admin, "password": "long enough pass phrase 9"}, 200).str("access_token")

	posts, comments := "/api/collections/posts/records", "/api/collections/comments/records"
	newPost := func(who string, extra map[string]any) map[string]any {
		p := map[string]any{"title": "A post by " + strings.Split(who, "@")[0], "body": "text", "author": w.ids[who], "author_email": who}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	hidesEmail := func(r reply, email string) {
		t.Helper()
		if strings.Contains(r.raw, email) {
			t.Fatalf("the answer shows %s: %s", email, r.raw)
		}
	}
	listIDs := func(who, path string) []string {
		t.Helper()
		r := w.mustDo(who, "GET", path, nil, 200)
		var ids []string
		for _, it := range r.items() {
			ids = append(ids, it["id"].(string))
		}
		return ids
	}

	// A user writes drafts; publishing is refused, on create and on update.
	draft := w.mustDo(ann, "POST", posts, newPost(ann, nil), 201)
	if draft.str("status") != "draft" || draft.str("author_email") != ann {
		t.Fatalf("a new post: %s", draft.raw)
	}
	id := draft.str("id")
	if r := w.mustDo(ann, "POST", posts, newPost(ann, map[string]any{"status": "published"}), 403); !strings.Contains(r.raw, `"status"`) {
		t.Fatalf("a published create names no field: %s", r.raw)
	}
	w.mustDo(ann, "PATCH", posts+"/"+id, map[string]any{"status": "published"}, 403)
	w.mustDo(ann, "POST", posts, newPost(ann, map[string]any{"author_email": bob}), 403)  // someone else's email
	w.mustDo(ann, "POST", posts, newPost(ann, map[string]any{"author": w.ids[bob]}), 403) // someone else's name
	w.mustDo(ann, "PATCH", posts+"/"+id, map[string]any{"author_email": "x@x.test"}, 403) // the email stays
	w.mustDo(ann, "PATCH", posts+"/"+id, map[string]any{"title": "Renamed"}, 200)         // the author edits
	w.mustDo(bob, "PATCH", posts+"/"+id, map[string]any{"title": "Bob was here"}, 404)    // others cannot see it

	// Another user, and a moderator who signed in with a password alone,
	// see no draft of ann's.
	for _, who := range []string{bob, mod} {
		if ids := listIDs(who, posts); len(ids) != 0 {
			t.Fatalf("%s lists %v", who, ids)
		}
		w.mustDo(who, "GET", posts+"/"+id, nil, 404)
	}
	w.mustDo(mod, "PATCH", posts+"/"+id, map[string]any{"status": "published"}, 404)

	// Two-factor sign-in makes the roles count.
	signInWithCode := func(who string) {
		t.Helper()
		setup := w.mustDo(who, "POST", "/api/auth/mfa/totp/setup", nil, 200)
		code := func() string {
			c, err := totp.GenerateCodeCustom(setup.str("secret"), clk.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		w.mustDo(who, "POST", "/api/auth/mfa/totp/enable", map[string]string{"code": code()}, 200)
		clk.Advance(30 * time.Second)
		ch := w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": who, "password": "long enough pass phrase 9"}, 200)
		w.tokens[who] = w.mustDo("", "POST", "/api/auth/mfa/verify", map[string]string{"mfa_token": ch.str("mfa_token"), "code": code()}, 200).str("access_token")
	}
	signInWithCode(mod)
	if ids := listIDs(mod, posts); len(ids) != 1 || ids[0] != id {
		t.Fatalf("the moderator lists %v, want the draft", ids)
	}
	hidesEmail(w.mustDo(mod, "GET", posts+"/"+id, nil, 200), ann)
	w.mustDo(mod, "PATCH", posts+"/"+id, map[string]any{"title": "A moderator's title"}, 403) // status only
	stale := w.do(mod, "PATCH", posts+"/"+id, map[string]any{"status": "published"}, map[string]string{"If-Match": `"1"`})
	if stale.status != 409 {
		t.Fatalf("a stale publish: %d %s", stale.status, stale.raw)
	}
	hidesEmail(stale, ann)
	published := w.mustDo(mod, "PATCH", posts+"/"+id, map[string]any{"status": "published"}, 200)
	hidesEmail(published, ann)
	modPost := w.mustDo(mod, "POST", posts, newPost(mod, map[string]any{"status": "published"}), 201).str("id")

	// Published: everyone reads it, nobody but the author and admins its email.
	for _, who := range []string{bob, carol, ""} {
		r := w.mustDo(who, "GET", posts+"?sort=-created_at", nil, 200)
		if len(r.items()) != 2 {
			t.Fatalf("%q lists %s", who, r.raw)
		}
		hidesEmail(r, ann)
		hidesEmail(r, mod)
	}
	for _, f := range []string{"author_email == 'ann@x.test'", "author_email.startsWith('a')"} {
		if ids := listIDs(bob, posts+"?filter="+url.QueryEscape(f)); len(ids) != 0 {
			t.Fatalf("bob finds %v by %s", ids, f)
		}
	}
	hidesEmail(w.mustDo(bob, "GET", posts+"/"+id+"?expand=author", nil, 200), ann)
	if r := w.mustDo(admin, "GET", posts+"/"+id, nil, 200); r.str("author_email") != "" {
		t.Fatalf("an admin without a two-factor sign-in reads the email: %s", r.raw)
	}
	signInWithCode(admin)
	if r := w.mustDo(admin, "GET", posts+"/"+id, nil, 200); r.str("author_email") != ann {
		t.Fatalf("the admin reads %s", r.raw)
	}
	w.mustDo(ann, "PATCH", posts+"/"+id, map[string]any{"status": "draft"}, 403) // not back to draft either

	// Comments: on published posts only; hidden by moderators, whose text
	// then only its author and moderators read.
	c := w.mustDo(bob, "POST", comments, map[string]any{"post": id, "author": w.ids[bob], "body": "spam spam"}, 201).str("id")
	w.mustDo(bob, "POST", comments, map[string]any{"post": modPost, "author": w.ids[carol], "body": "as carol"}, 403)
	draft2 := w.mustDo(ann, "POST", posts, newPost(ann, nil), 201).str("id")
	w.mustDo(ann, "POST", comments, map[string]any{"post": draft2, "author": w.ids[ann], "body": "on a draft"}, 403)
	w.mustDo(bob, "POST", comments, map[string]any{"post": draft2, "author": w.ids[bob], "body": "on a draft"}, 403) // a post bob cannot see: as for a missing one
	w.mustDo(ann, "PATCH", comments+"/"+c, map[string]any{"hidden": true}, 403)
	w.mustDo(bob, "PATCH", comments+"/"+c, map[string]any{"hidden": true}, 403)
	w.mustDo(bob, "POST", comments, map[string]any{"post": id, "author": w.ids[bob], "body": "pre-hidden", "hidden": true}, 403)
	w.mustDo(mod, "PATCH", comments+"/"+c, map[string]any{"body": "edited by a moderator"}, 403)
	w.mustDo(mod, "PATCH", comments+"/"+c, map[string]any{"hidden": true}, 200)
	for who, sees := range map[string]bool{carol: false, ann: false, "": false, bob: true, mod: true} {
		r := w.mustDo(who, "GET", comments+"?filter="+url.QueryEscape("post == '"+id+"'"), nil, 200)
		items := r.items()
		if len(items) != 1 || items[0]["hidden"] != true {
			t.Fatalf("%q lists %s", who, r.raw)
		}
		if _, has := items[0]["body"]; has != sees || strings.Contains(r.raw, "spam") != sees {
			t.Fatalf("%q sees the hidden text: %v, want %v: %s", who, has, sees, r.raw)
		}
	}
	if ids := listIDs(carol, comments+"?filter="+url.QueryEscape("body.startsWith('spam')")); len(ids) != 0 {
		t.Fatalf("carol finds the hidden comment by its text: %v", ids)
	}
	w.mustDo(ann, "DELETE", comments+"/"+c, nil, 403)
	w.mustDo(mod, "DELETE", comments+"/"+c, nil, 204)
	w.mustDo(bob, "DELETE", posts+"/"+id, nil, 403)
	w.mustDo(mod, "DELETE", posts+"/"+modPost, nil, 204)
}

// TestExampleTypesAreFresh: each example web app's generated types are
// those of its abe.yaml (regenerate with the command in the message).
func TestExampleTypesAreFresh(t *testing.T) {
	t.Parallel()
	for _, ex := range []string{"blog", "todo"} {
		cfg, err := schema.Load("examples/" + ex + "/abe.yaml")
		if err != nil {
			t.Fatal(err)
		}
		want, err := tstypes.Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := "examples/" + ex + "/web/src/abe-types.ts"
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s is stale: abe gen types --lang ts -c examples/%s/abe.yaml -o %s", path, ex, path)
		}
	}
}
