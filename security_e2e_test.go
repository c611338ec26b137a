package abe_test

// The tests of issue #13: what a caller gets from a list, a count, a
// cursor, a change log or a realtime subscription must be a function of
// what they may read. The metamorphic tests run the same requests before
// and after every hidden value changes (through SQL, so nothing the
// caller may read moves) and want the same bytes.

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

const (
	admin      = "admin@x.test"
	postsPath  = "/api/collections/posts/records"
	notesPath  = "/api/collections/notes/records"
	missingID  = "018f0000-0000-7000-8000-00000000abcd"
	zeroCursor = "00000000-0000-7000-8000-000000000000"
)

func securityConfig(t *testing.T) *schema.Config {
	t.Helper()
	data, err := os.ReadFile("testdata/security/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Parse("testdata/security/abe.yaml", data, []string{"ABE_AUTH_SECRET=" + strings.Repeat("k", 40)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// securityWorld is a world of the attack config, with an admin account.
func securityWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, securityConfig(t))
	u, err := w.app.Auth().CreateUser(context.Background(), auth.CreateUserOpts{Email: admin, Password: "long enough pass phrase 9", Roles: []string{"admin"}, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	w.ids[admin] = u.ID
	w.tokens[admin] = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": admin, "password": "long enough pass phrase 9"}, 200).str("access_token")
	return w
}

// seed is what seedSecrets made: ann's and carol's private notes, the
// posts pointing at them, and the admin's vault.
type seed struct {
	notes, posts, vault []string
	carolNote           string
	doomed              string // a private note nothing points at, which changeHidden deletes
}

// seedSecrets makes 20 posts by ann (and 3 by carol) whose secret,
// salary, note and refs vary, so that every predicate splits them.
func seedSecrets(t *testing.T, w *world) *seed {
	t.Helper()
	s := &seed{}
	for _, body := range []string{"alpha", "bravo 0", "charlie", "delta TOP", ""} {
		s.notes = append(s.notes, w.mustDo(ann, "POST", notesPath, map[string]any{"owner": w.ids[ann], "body": body}, 201).str("id"))
	}
	s.carolNote = w.mustDo(carol, "POST", notesPath, map[string]any{"owner": w.ids[carol], "body": "carol private"}, 201).str("id")
	s.doomed = w.mustDo(carol, "POST", notesPath, map[string]any{"owner": w.ids[carol], "body": "doomed"}, 201).str("id")
	for i := range 20 {
		p := map[string]any{"title": fmt.Sprintf("post %02d", i), "author": w.ids[ann]}
		switch i % 4 {
		case 0:
			p["secret"] = fmt.Sprintf("TOP-%d", i)
		case 1:
			p["secret"] = fmt.Sprintf("low %d0", i)
		case 3:
			p["secret"] = fmt.Sprintf("M%d", i)
		}
		if i%5 != 4 {
			p["salary"] = (i*137)%1000 - 100
		}
		if i%6 != 5 {
			p["score"] = float64(i) * 0.75
		}
		if i%7 != 3 {
			p["note"] = s.notes[i%5]
		}
		if i%3 == 0 {
			p["refs"] = []string{s.notes[i%5], s.notes[(i+2)%5]}
		}
		s.posts = append(s.posts, w.mustDo(ann, "POST", postsPath, p, 201).str("id"))
	}
	for i := range 3 {
		p := map[string]any{"title": fmt.Sprintf("carol %d", i), "author": w.ids[carol], "note": s.carolNote, "secret": "TOP-c", "salary": 5 + i}
		s.posts = append(s.posts, w.mustDo(carol, "POST", postsPath, p, 201).str("id"))
	}
	for _, code := range []string{"0123", "4567", "0999"} {
		s.vault = append(s.vault, w.mustDo(admin, "POST", "/api/collections/vault/records", map[string]any{"code": code}, 201).str("id"))
	}
	return s
}

// changeHidden rewrites every value bob and anonymous may not read:
// secrets and salaries, the bodies of the private notes, the vault's
// codes and the other accounts' emails, and deletes a private note.
// Triggers are off, so versions, updated_at and the change log stay as
// they were.
func changeHidden(t *testing.T, w *world, s *seed) {
	t.Helper()
	ctx := context.Background()
	snapshot := func() string {
		var out string
		err := w.app.Pool().QueryRow(ctx, `SELECT
			(SELECT string_agg(coalesce(secret, '-') || '/' || coalesce(salary::text, '-') || '/' || version || updated_at::text, ',' ORDER BY id) FROM public.posts) || '|' ||
			(SELECT string_agg(coalesce(body, '-'), ',' ORDER BY id) FROM public.notes WHERE id <> '`+s.doomed+`') || '|' ||
			(SELECT string_agg(code, ',' ORDER BY id) FROM public.vault) || '|' ||
			(SELECT string_agg(email, ',' ORDER BY id) FROM abe.users)`).Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := snapshot()
	tx, err := w.app.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after commit
	for _, q := range []string{
		`SET LOCAL session_replication_role = replica`,
		`UPDATE public.posts SET
			secret = CASE WHEN secret IS NULL THEN 'TOP-' || left(md5(id::text), 6) WHEN secret LIKE 'TOP%' THEN NULL ELSE 'a' || reverse(secret) END,
			salary = CASE WHEN salary IS NULL THEN 4242 WHEN salary % 3 = 0 THEN NULL ELSE 777 - salary * 3 END`,
		`UPDATE public.notes SET body = CASE WHEN body IS NULL THEN 'added' ELSE 'b' || reverse(body) || 'x' END`,
		`UPDATE public.vault SET code = '9' || reverse(code)`,
		`DELETE FROM public.notes WHERE id = '` + s.doomed + `'`,
		`UPDATE abe.users SET email = 'z' || email WHERE id <> '` + w.ids[bob] + `'`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	after := snapshot()
	// Every hidden value moved; versions and updated_at did not.
	b, a := strings.Split(before, "|"), strings.Split(after, "|")
	for i := range b {
		bs, as := strings.Split(b[i], ","), strings.Split(a[i], ",")
		for j := range bs {
			if bs[j] == as[j] && !(i == 3 && strings.HasPrefix(bs[j], bob)) {
				t.Fatalf("hidden value %d/%d did not change: %q", i, j, bs[j])
			}
			if i == 0 && strings.SplitN(bs[j], "/", 3)[2] != strings.SplitN(as[j], "/", 3)[2] {
				t.Fatalf("version or updated_at moved: %q -> %q", bs[j], as[j])
			}
		}
	}
}

// answer is what one request got, with the request id taken out.
type answer struct {
	label  string
	status int
	body   string
}

var requestID = regexp.MustCompile(`,?"request_id":"[^"]*"`)

func (w *world) answer(who, label, method, path string, body any) answer {
	w.t.Helper()
	r := w.do(who, method, path, body, nil)
	return answer{label: who + " " + label, status: r.status, body: requestID.ReplaceAllString(r.raw, "")}
}

// sameAnswers fails with the first few requests whose answers differ
// (a walk through pages may also take more or fewer pages).
func sameAnswers(t *testing.T, what string, before, after []answer) {
	t.Helper()
	byLabel := map[string]answer{}
	for _, a := range after {
		byLabel[a.label] = a
	}
	// Show a few, at most two of each kind (filters, sorts, cursors...).
	var shown []string
	n, kinds := 0, map[string]int{}
	diff := func(label, b, a string) {
		n++
		kind := strings.Fields(label + " ")[0]
		if kind == bob {
			kind = strings.Fields(label)[1]
		}
		kind, _, _ = strings.Cut(kind, "=")
		if kinds[kind]++; kinds[kind] <= 2 && len(shown) < 6 {
			shown = append(shown, fmt.Sprintf("%s\n    before: %s\n    after:  %s", label, b, a))
		}
	}
	for _, b := range before {
		a, ok := byLabel[b.label]
		delete(byLabel, b.label)
		if !ok {
			diff(b.label, fmt.Sprint(b.status, " ", gist(b.body)), "none")
		} else if b.status != a.status || b.body != a.body {
			diff(b.label, fmt.Sprint(b.status, " ", gist(b.body)), fmt.Sprint(a.status, " ", gist(a.body)))
		}
	}
	for _, a := range after {
		if _, extra := byLabel[a.label]; extra {
			diff(a.label, "none", fmt.Sprint(a.status, " ", gist(a.body)))
		}
	}
	if n > 0 {
		t.Errorf("%s: %d of %d answers depend on hidden data (by kind: %v), such as:\n  %s", what, n, len(before), kinds, strings.Join(shown, "\n  "))
	}
}

// gist shortens a list answer to its titles, total and decoded cursor.
func gist(body string) string {
	var l struct {
		Items []map[string]any `json:"items"`
		Total *int             `json:"total"`
		Next  *string          `json:"next_cursor"`
		Since *int64           `json:"next_since"`
	}
	if json.Unmarshal([]byte(body), &l) != nil || l.Items == nil {
		return fmt.Sprintf("%.200s", body)
	}
	var titles []string
	for _, it := range l.Items {
		titles = append(titles, fmt.Sprint(it["title"]))
	}
	out := fmt.Sprintf("%q", titles)
	if l.Total != nil {
		out += fmt.Sprintf(" total=%d", *l.Total)
	}
	if l.Since != nil {
		out += fmt.Sprintf(" next_since=%d", *l.Since)
	}
	if l.Next != nil {
		c, _ := base64.RawURLEncoding.DecodeString(*l.Next) //nolint:errcheck // shown as is
		out += " next_cursor=" + string(c)
	}
	return out
}

// hiddenFilters are filters over what bob and anonymous may not read,
// with a few over visible fields to keep the generator honest.
func hiddenFilters(s *seed) []string {
	atoms := []string{
		"secret == 'TOP-0'", "secret != 'TOP-4'", "secret < 'M'", "secret >= 'M'", "secret > 'low'",
		"secret.startsWith('TOP')", "secret.contains('0')", "secret.endsWith('7')", "secret in ['TOP-8', 'M3', 'x']",
		"size(secret) > 4", "secret == null", "secret != null", "has(secret)", "secret + 'x' == 'TOP-0x'",
		"salary == 37", "salary != 37", "salary < 300", "salary >= 300", "salary > -50", "salary <= 0",
		"salary in [37, 174, 4242]", "salary == null", "salary != null", "salary + 1 > 5", "salary * 2 < 600",
		"salary % 2 == 0", "salary - 100 >= 0", "salary / 3 == 12", "salary > 1e300", "salary < 1e19", "salary >= 123.5",
		"salary < -0.5", "salary > 9.3e18",
		"get('notes', note).body == 'alpha'", "get('notes', note).body.startsWith('b')", "get('notes', note).body.contains('TOP')",
		"size(get('notes', note).body) > 4", "get('notes', note).body == null", "get('notes', note).owner == author",
		"exists('notes', note)", "exists('notes', '" + s.carolNote + "')", "exists('notes', '" + s.doomed + "')", "get('notes', '" + s.carolNote + "').body == 'carol private'",
		"get('users', author).email == 'ann@x.test'", "get('users', author).email.startsWith('c')", "get('users', author).name == ''",
		"get('vault', '" + s.vault[0] + "').code.startsWith('0')", "get('vault', '" + s.vault[1] + "').code == '4567'",
		"exists('vault', '" + s.vault[2] + "')",
		"title.startsWith('post 1')", "score > 4.5", "note == null", "pinned == false",
	}
	out := slices.Clone(atoms)
	for i, a := range atoms {
		out = append(out, "!("+a+")")
		b := atoms[(i*7+3)%len(atoms)]
		out = append(out, a+" && "+b, "("+a+") || !("+b+")")
	}
	return out
}

var hiddenSorts = []string{
	"title", "-score", "secret", "-secret", "salary", "-salary", "pinned,-secret", "-salary,title",
	"note,secret", "secret,salary", "author,-salary", "-created_at",
}

// cursorOf makes a cursor the way the server does (engine/list.go).
func cursorOf(sort string, values ...any) string {
	b, _ := json.Marshal(map[string]any{"s": sort, "v": values}) //nolint:errcheck // plain values
	return base64.RawURLEncoding.EncodeToString(b)
}

// listAnswers runs every list path the generators make, as who.
func listAnswers(w *world, who string, s *seed) []answer {
	var out []answer
	get := func(label string, q url.Values) answer {
		a := w.answer(who, label, "GET", postsPath+"?"+q.Encode(), nil)
		out = append(out, a)
		return a
	}
	// walk follows next_cursor through every page.
	walk := func(label string, q url.Values) {
		for page := 0; page < 25; page++ {
			a := get(fmt.Sprintf("%s page %d", label, page), q)
			var body struct {
				Next *string `json:"next_cursor"`
			}
			if json.Unmarshal([]byte(a.body), &body) != nil || body.Next == nil {
				return
			}
			q.Set("cursor", *body.Next)
		}
	}
	for i, f := range hiddenFilters(s) {
		get("filter="+f, url.Values{"filter": {f}})
		sort := hiddenSorts[i%len(hiddenSorts)]
		q := url.Values{"filter": {f}, "count": {"true"}, "limit": {"4"}, "sort": {sort}}
		if i%5 == 0 {
			q.Set("expand", "note,author,refs")
		}
		walk("filter="+f+" count sort="+sort, q)
	}
	for _, sort := range hiddenSorts {
		for _, limit := range []string{"1", "3"} {
			walk("sort="+sort+" limit="+limit, url.Values{"sort": {sort}, "limit": {limit}, "count": {"true"}})
		}
		walk("sort="+sort+" fields", url.Values{"sort": {sort}, "limit": {"7"}, "fields": {"title,secret,salary,note"}, "expand": {"note"}})
	}
	// Cursors the attacker makes: where would a guessed value fall?
	for _, c := range []struct {
		sort string
		v    any
	}{{"secret", "M"}, {"secret", "TOP-5"}, {"-secret", "low"}, {"salary", 300}, {"-salary", 0}, {"salary", nil}} {
		get(fmt.Sprintf("sort=%s crafted cursor %v", c.sort, c.v), url.Values{"sort": {c.sort}, "limit": {"2"}, "cursor": {cursorOf(c.sort+",id", c.v, zeroCursor)}})
	}
	for _, id := range s.posts[:4] {
		out = append(out, w.answer(who, "one "+id, "GET", postsPath+"/"+id+"?expand=note,author,refs", nil))
	}
	return out
}

func TestSecurityListsAreBlindToHiddenData(t *testing.T) {
	t.Parallel()
	w := securityWorld(t)
	s := seedSecrets(t, w)
	before := map[string][]answer{}
	for _, who := range []string{"", bob} {
		before[who] = listAnswers(w, who, s)
	}
	changeHidden(t, w, s)
	for _, who := range []string{"", bob} {
		sameAnswers(t, fmt.Sprintf("lists as %q (%d requests)", who, len(before[who])), before[who], listAnswers(w, who, s))
	}
}

// realtimeFilters are subscriptions whose filters read hidden data.
func realtimeFilters(s *seed) []string {
	return []string{
		"secret.startsWith('TOP')", "secret == null", "salary > 200", "salary % 2 == 0 || secret.contains('1')",
		"get('notes', note).body.startsWith('a')", "exists('notes', note)", "exists('notes', '" + s.doomed + "')", "get('users', author).email.startsWith('ann')",
		"get('vault', '" + s.vault[0] + "').code.startsWith('0')", "title.startsWith('post')",
	}
}

var (
	eventNoise = regexp.MustCompile(`"(seq|version|updated_at)":("[^"]*"|\d+)`)
	roundMark  = regexp.MustCompile(` r[12]"`)
)

// transcript is what one subscription heard during a round of writes,
// with what differs between rounds anyway (positions, versions, times,
// the round in the title) taken out. It ends with the marker's event that
// carries the title given (an earlier event of the marker, made before
// the hub caught up, does not count).
func transcript(t *testing.T, c *wsClient, marker, title string) []string {
	t.Helper()
	var out []string
	for {
		m, err := c.next(waitFor)
		if err != nil {
			t.Fatalf("waiting for the marker: %v (heard %v)", err, out)
		}
		if rec, _ := m["record"].(map[string]any); m["sub"] == "m" && m["id"] == marker && rec["title"] == title {
			return out
		}
		if m["id"] == marker {
			continue // the filtered subscription may hear of the marker too, in either order
		}
		b, _ := json.Marshal(m) //nolint:errcheck // decoded JSON
		out = append(out, roundMark.ReplaceAllString(eventNoise.ReplaceAllString(string(b), `"$1":_`), ` rN"`))
	}
}

func TestSecurityRealtimeFiltersAreBlind(t *testing.T) {
	t.Parallel()
	w := securityWorld(t)
	s := seedSecrets(t, w)
	marker := w.mustDo(ann, "POST", postsPath, map[string]any{"title": "marker", "author": w.ids[ann]}, 201).str("id")
	type sub struct {
		label string
		c     *wsClient
		heard [2][]string
	}
	var subs []*sub
	for _, who := range []string{"", bob} {
		for _, f := range realtimeFilters(s) {
			c := w.as(who)
			c.send(map[string]any{"type": "subscribe", "id": "f", "topic": "collection:posts", "filter": f})
			first, err := c.next(waitFor)
			if err != nil {
				t.Fatal(err)
			}
			// The marker's subscription; events of the first may come before
			// its ack, and the settling below discards them anyway.
			c.send(map[string]any{"type": "subscribe", "id": "m", "topic": "record:posts:" + marker})
			for m, err := c.next(waitFor); m["type"] != "ack" || m["id"] != "m"; m, err = c.next(waitFor) {
				if err != nil {
					t.Fatalf("waiting for the ack of m: %v", err)
				}
			}
			ack, _ := json.Marshal(first) //nolint:errcheck // decoded JSON
			sb := &sub{label: fmt.Sprintf("%q filter %s", who, f), c: c}
			sb.heard[0] = []string{eventNoise.ReplaceAllString(string(ack), `"$1":_`)}
			sb.heard[1] = sb.heard[0]
			subs = append(subs, sb)
		}
	}
	// Settle: what the hub had not sent before the subscriptions came is
	// heard now, before the rounds.
	w.mustDo(ann, "PATCH", postsPath+"/"+marker, map[string]any{"title": "marker settled"}, 200)
	for _, sb := range subs {
		transcript(t, sb.c, marker, "marker settled")
	}
	for round := range 2 {
		if round == 1 {
			changeHidden(t, w, s)
		}
		// One visible write per post and round (never two, which the hub
		// may fold into one event), then the marker.
		for i, id := range s.posts[:12] {
			w.mustDo(ann, "PATCH", postsPath+"/"+id, map[string]any{"title": fmt.Sprintf("post %02d r%d", i, round+1)}, 200)
		}
		title := fmt.Sprintf("marker %d", round)
		w.mustDo(ann, "PATCH", postsPath+"/"+marker, map[string]any{"title": title}, 200)
		for _, sb := range subs {
			sb.heard[round] = append(sb.heard[round], transcript(t, sb.c, marker, title)...)
		}
	}
	var leaks []string
	for _, sb := range subs {
		if !slices.Equal(sb.heard[0], sb.heard[1]) {
			leaks = append(leaks, sb.label)
			if len(leaks) <= 3 {
				t.Errorf("%s hears hidden data:\n    before: %.400s\n    after:  %.400s", sb.label, strings.Join(sb.heard[0], " "), strings.Join(sb.heard[1], " "))
			}
		}
	}
	if len(leaks) > 0 {
		t.Errorf("%d of %d subscriptions depend on hidden data:\n  %s", len(leaks), len(subs), strings.Join(leaks, "\n  "))
	}
}

var anyID = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// sameRefusal wants pointing at the unreadable record and at a missing id
// answered alike (the ids themselves aside).
func sameRefusal(t *testing.T, what string, hidden, missing answer) {
	t.Helper()
	h, m := anyID.ReplaceAllString(hidden.body, "<id>"), anyID.ReplaceAllString(missing.body, "<id>")
	if hidden.status != missing.status || h != m {
		t.Errorf("%s: a private record answers %d %.300s\n    a missing one %d %.300s", what, hidden.status, hidden.body, missing.status, missing.body)
	}
	if missing.status != 422 && missing.status != 400 {
		t.Errorf("%s: a missing record answers %d %s", what, missing.status, missing.body)
	}
}

func TestSecurityRelationsToUnreadableRecords(t *testing.T) {
	t.Parallel()
	w := securityWorld(t)
	private := w.mustDo(ann, "POST", notesPath, map[string]any{"owner": w.ids[ann], "body": "ann's diary"}, 201).str("id")
	mine := w.mustDo(bob, "POST", postsPath, map[string]any{"title": "bob's", "author": w.ids[bob]}, 201).str("id")
	// Bodies are JSON with BOB, MINE and ID (the note pointed at) to fill in.
	for _, tc := range []struct{ what, method, path, body string }{
		{"create with note", "POST", postsPath, `{"title": "probe", "author": "BOB", "note": "ID"}`},
		{"create with refs", "POST", postsPath, `{"title": "probe", "author": "BOB", "refs": ["ID"]}`},
		{"patch note", "PATCH", postsPath + "/" + mine, `{"note": "ID"}`},
		{"patch ops refs", "PATCH", postsPath + "/" + mine, `{"ops": [{"op": "listInsert", "path": ["refs"], "value": "ID"}]}`},
		{"batch create", "POST", "/api/batch", `{"ops": [{"collection": "posts", "action": "create", "data": {"title": "probe", "author": "BOB", "note": "ID"}}]}`},
		{"batch update", "POST", "/api/batch", `{"ops": [{"collection": "posts", "action": "update", "id": "MINE", "data": {"refs": ["ID"]}}]}`},
	} {
		fill := func(id string) string {
			return strings.NewReplacer("BOB", w.ids[bob], "MINE", mine, "ID", id).Replace(tc.body)
		}
		hidden := w.answer(bob, tc.what, tc.method, tc.path, fill(private))
		missing := w.answer(bob, tc.what, tc.method, tc.path, fill(missingID))
		sameRefusal(t, tc.what, hidden, missing)
	}
	if got := w.mustDo(bob, "GET", postsPath+"/"+mine, nil, 200); got.body["version"] != float64(1) {
		t.Errorf("a refused write changed bob's post: %s", got.raw)
	}
	// A client id that is taken is 409 (ids are the client's), and says
	// nothing of the record holding it.
	r := w.do(bob, "POST", notesPath, map[string]any{"id": private, "owner": w.ids[bob], "body": "mine"}, nil)
	if r.status != 409 || strings.Contains(r.raw, "diary") || strings.Contains(r.raw, w.ids[ann]) || r.body["current"] != nil {
		t.Errorf("a taken id: %d %s", r.status, r.raw)
	}
}

func TestSecurityFieldRulesHoldOnCreate(t *testing.T) {
	t.Parallel()
	w := securityWorld(t)
	if r := w.do(bob, "POST", postsPath, map[string]any{"title": "pin me", "author": w.ids[bob], "pinned": true}, nil); r.status != 403 || !strings.Contains(r.raw, "pinned") {
		t.Errorf("bob creates a pinned post: %d %.200s", r.status, r.raw)
	}
	if n := len(w.mustDo(bob, "GET", postsPath+"?filter="+url.QueryEscape("title.startsWith('pin me')"), nil, 200).items()); n != 0 {
		t.Errorf("the refused create stored %d posts", n)
	}
	w.mustDo(bob, "POST", postsPath, map[string]any{"title": "unpinned", "author": w.ids[bob], "pinned": false}, 201)

	// Deleting one's post and creating it again with the same id is no way
	// around the update rule.
	id := w.mustDo(bob, "POST", postsPath, map[string]any{"title": "mine", "author": w.ids[bob]}, 201).str("id")
	recreate := func(id, author string) map[string]any {
		return map[string]any{"ops": []any{
			map[string]any{"collection": "posts", "action": "delete", "id": id},
			map[string]any{"collection": "posts", "action": "create", "data": map[string]any{"id": id, "title": "mine", "author": author, "pinned": true}},
		}}
	}
	if r := w.do(bob, "POST", "/api/batch", recreate(id, w.ids[bob]), nil); r.status != 403 {
		t.Errorf("batch delete + create with pinned: %d %s", r.status, r.raw)
	}
	if got := w.mustDo(bob, "GET", postsPath+"/"+id, nil, 200); got.body["pinned"] != false || got.body["version"] != float64(1) {
		t.Errorf("after the refused batch: %s", got.raw)
	}
	// The moderator may.
	w.mustDo(mod, "POST", postsPath, map[string]any{"title": "pinned", "author": w.ids[mod], "pinned": true}, 201)
	modPost := w.mustDo(mod, "POST", postsPath, map[string]any{"title": "mod's", "author": w.ids[mod]}, 201).str("id")
	w.mustDo(mod, "POST", "/api/batch", recreate(modPost, w.ids[mod]), 200)
	if got := w.mustDo(mod, "GET", postsPath+"/"+modPost, nil, 200); got.body["pinned"] != true {
		t.Errorf("the moderator's batch: %s", got.raw)
	}
}

func TestSecurityChangeLogIsBlind(t *testing.T) {
	t.Parallel()
	w := securityWorld(t)
	w.mustDo(ann, "POST", notesPath, map[string]any{"owner": w.ids[ann], "body": "first"}, 201)
	paths := []string{"/api/collections/notes/changes?since=0", "/api/collections/notes/changes?since=0&limit=1", "/api/collections/vault/changes?since=0"}
	look := func() []answer {
		var out []answer
		for _, who := range []string{"", bob} {
			for _, p := range paths {
				out = append(out, w.answer(who, p, "GET", p, nil))
			}
		}
		return out
	}
	before := look()
	for i := range 3 {
		id := w.mustDo(ann, "POST", notesPath, map[string]any{"owner": w.ids[ann], "body": fmt.Sprint("note ", i)}, 201).str("id")
		w.mustDo(ann, "PATCH", notesPath+"/"+id, map[string]any{"body": "edited"}, 200)
		if i == 0 {
			w.mustDo(ann, "DELETE", notesPath+"/"+id, nil, 204)
		}
	}
	w.mustDo(admin, "POST", "/api/collections/vault/records", map[string]any{"code": "1"}, 201)
	sameAnswers(t, "change logs of writes the caller cannot read", before, look())
	if got := w.mustDo(ann, "GET", paths[0], nil, 200).items(); len(got) != 4 {
		t.Errorf("ann sees %d changes of her notes, want 4: %v", len(got), got)
	}
}

// forgedToken signs, with the config's secret as auth does
// (auth/keys.go), an access token whose subject is not a UUID.
func forgedToken(t *testing.T, secret string) string {
	t.Helper()
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "abe access token signing", 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("abe key id"))
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "abe", "sub": "not-a-uuid", "jti": uuid.NewString(), "sid": uuid.NewString(),
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "email": "x@x.test", "email_verified": true, "roles": []string{},
	})
	tok.Header["kid"] = "hs-" + hex.EncodeToString(mac.Sum(nil))[:12]
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecurityHostileInputNever5xx(t *testing.T) {
	t.Parallel()
	cfg := securityConfig(t)
	w := securityWorld(t)
	w.tokens["forged"] = forgedToken(t, cfg.Auth.Secret)
	salaries := map[string]int64{}
	var mine string
	for i, n := range []int64{123456, 123457, 1, 1<<53 - 1, -5} {
		mine = w.mustDo(ann, "POST", postsPath, map[string]any{"title": fmt.Sprint("h", i), "author": w.ids[ann], "salary": n, "score": 1.5 + float64(i)}, 201).str("id")
		salaries[mine] = n
	}

	// Filters with odd numbers: either 4xx, or the records CEL selects.
	all := func(int64) bool { return true }
	none := func(int64) bool { return false }
	for _, tc := range []struct {
		filter string
		cel    func(int64) bool // nil: CEL refuses the filter, 400
		strict bool             // a 4xx is not good enough
	}{
		{"salary >= 123456.5", func(n int64) bool { return n >= 123457 }, true},
		{"salary < 123456.5", func(n int64) bool { return n <= 123456 }, true},
		{"salary < 1e300", all, false}, {"salary > 1e19", none, false}, {"salary >= 9.3e18", none, false},
		{"salary < 9.3e18", all, false}, {"salary > -1e300", all, false}, {"salary < 1.0/0.0", all, false},
		{"salary < double('NaN')", none, false}, {"salary > double('NaN')", none, false}, {"salary >= double('NaN')", none, false},
		{"!(salary < double('NaN'))", all, false},
		{"score < double('NaN')", none, false}, {"score == double('NaN')", none, false}, {"score != double('NaN')", all, false},
		{"salary != double('NaN')", nil, false},
		{"salary + 1 > 5", func(n int64) bool { return n > 4 }, false},
		// CEL: an overflow is an error, which selects nothing.
		{"salary * 1000000 > 5", func(n int64) bool { return n > 0 && n <= 9223372036854 }, false},
		{"-salary * 2048 < 0", func(n int64) bool { return n > 0 && n < 1<<53-1 }, false},
		{"title == '\\x00'", none, false}, {"title == '\x00'", none, false}, {"title.startsWith('a\\u0000')", none, false},
	} {
		r := w.do(ann, "GET", postsPath+"?filter="+url.QueryEscape(tc.filter), nil, nil)
		switch {
		case r.status >= 500:
			t.Errorf("filter %q: %d %.200s", tc.filter, r.status, r.raw)
		case r.status >= 400:
			if tc.strict || !strings.Contains(r.header.Get("Content-Type"), "problem+json") {
				t.Errorf("filter %q: %d %s %.200s", tc.filter, r.status, r.header.Get("Content-Type"), r.raw)
			}
		case tc.cel == nil:
			t.Errorf("filter %q does not type-check in CEL, yet answers %d %.200s", tc.filter, r.status, r.raw)
		default:
			var got, want []string
			for _, it := range r.items() {
				got = append(got, it["id"].(string))
			}
			for id, n := range salaries {
				if tc.cel(n) {
					want = append(want, id)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("filter %q selects %d posts, CEL %d", tc.filter, len(got), len(want))
			}
		}
	}

	nul := "a\x00b"
	for _, tc := range []struct {
		who, method, path string
		body              any
	}{
		{ann, "POST", postsPath, map[string]any{"title": nul, "author": w.ids[ann]}},
		{ann, "PATCH", postsPath + "/" + mine, map[string]any{"title": nul}},
		{ann, "PATCH", postsPath + "/" + mine, map[string]any{"meta": map[string]any{nul: 1}}},
		{ann, "PATCH", postsPath + "/" + mine, map[string]any{"meta": map[string]any{"k": nul}}},
		{ann, "POST", postsPath, map[string]any{"title": "t", "author": w.ids[ann], "meta": []any{nul}}},
		{ann, "PATCH", postsPath + "/" + mine, map[string]any{"ops": []any{map[string]any{"op": "set", "path": []string{"meta", nul}, "value": 1}}}},
		{ann, "POST", "/api/batch", map[string]any{"ops": []any{map[string]any{"collection": "posts", "action": "create", "data": map[string]any{"title": nul, "author": w.ids[ann]}}}}},
		{ann, "GET", postsPath + "?sort=title&cursor=" + cursorOf("title,id", nul, zeroCursor), nil},
		{ann, "GET", postsPath + "?sort=-secret&cursor=" + cursorOf("-secret,id", nul, zeroCursor), nil},
		{ann, "GET", postsPath + "?sort=salary&cursor=" + cursorOf("salary,id", 1e300, zeroCursor), nil},
		{ann, "GET", postsPath + "?sort=score&cursor=" + cursorOf("score,id", "NaN", zeroCursor), nil},
		{ann, "GET", postsPath + "?filter=" + url.QueryEscape("note == 'x\x00'"), nil},
		{ann, "GET", postsPath + "?fields=title%00", nil},
		{"forged", "GET", "/api/auth/me", nil},
		{"forged", "GET", notesPath, nil},
		{"forged", "GET", postsPath + "?filter=" + url.QueryEscape("author == auth.id"), nil},
		{"forged", "GET", postsPath + "/" + mine, nil},
		{"forged", "POST", notesPath, map[string]any{"owner": w.ids[ann], "body": "x"}},
		{"forged", "GET", "/api/collections/notes/changes?since=0", nil},
	} {
		r := w.do(tc.who, tc.method, tc.path, tc.body, nil)
		if r.status >= 500 || (r.status >= 400 && !strings.Contains(r.header.Get("Content-Type"), "problem+json")) {
			t.Errorf("%s %s %.120q as %s: %d %.200s", tc.method, tc.path, fmt.Sprint(tc.body), tc.who, r.status, r.raw)
		}
	}
}
