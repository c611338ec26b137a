package abe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

// FuzzRecordsAPI sends arbitrary filters, sorts, cursors and bodies to a
// running app on the attack config of testdata/security: whatever they
// hold, the answer is never a 5xx, and an error is problem+json.
func FuzzRecordsAPI(f *testing.F) {
	ctx := context.Background()
	data, err := os.ReadFile("testdata/security/abe.yaml")
	if err != nil {
		f.Fatal(err)
	}
	cfg, err := schema.Parse("testdata/security/abe.yaml", data, []string{"ABE_AUTH_SECRET=" + strings.Repeat("k", 40)})
	if err != nil {
		f.Fatal(err)
	}
	cfg.Server.RateLimit.Disabled = true
	cfg.Database.URL = migratedURL(f, cfg)
	app, err := abe.New(ctx, cfg, &abe.Options{Migrate: true, Dev: true})
	if err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	f.Cleanup(func() { srv.Close(); app.Close() })
	user, err := app.Auth().CreateUser(ctx, auth.CreateUserOpts{Email: "fuzz@x.test", Password: "long enough pass phrase 9", Verified: true})
	if err != nil {
		f.Fatal(err)
	}
	call := func(method, path, body, token string) (int, string, []byte, error) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, "", nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), b, err
	}
	_, _, b, err := call("POST", "/api/auth/login", `{"email":"fuzz@x.test","password":"long enough pass phrase 9"}`, "")
	if err != nil {
		f.Fatal(err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &login); err != nil || login.AccessToken == "" {
		f.Fatalf("login: %v %s", err, b)
	}
	for i := range 3 {
		body, _ := json.Marshal(map[string]any{"title": strings.Repeat("t", i+1), "author": user.ID, "secret": "s", "salary": i * 1000, "score": 1.5})
		if status, _, b, err := call("POST", "/api/collections/posts/records", string(body), login.AccessToken); err != nil || status != 201 {
			f.Fatalf("seed: %d %v %s", status, err, b)
		}
	}

	for _, s := range []struct{ filter, sort, cursor, body string }{
		{"salary >= 123456.5", "-secret", "", `{"title":"a","author":"` + user.ID + `"}`},
		{"salary < 1e300 || salary > 9.3e18", "salary", "eyJzIjoiLXNhbGFyeSxpZCIsInYiOlsxLCIwIl19", `{"title":"\u0000"}`},
		{"salary < double('NaN')", "-score,title", "", `{"title":"x","author":"` + user.ID + `","meta":{"\u0000k":"v"}}`},
		{"get('notes', note).body.startsWith('a')", "", "bm90IGpzb24", `{"title":"x","author":"` + user.ID + `","note":"01a235c4-3611-73ef-915f-63bcc1763eaa"}`},
		{"exists('vault', '01a235c4-3611-73ef-915f-63bcc1763eaa') && title == '\\x00'", "title", "", `{"title":1e400}`},
		{"salary * 9223372036854775807 > 0 && -salary < 0 && score * 1e300 * 1e300 > 0.0", "-created_at", "", `{"ops":[]}`},
		{"get('users', author).name == 'x' || get('users', author).email == 'x'", "pinned", "", `[1,2]`},
	} {
		f.Add(s.filter, s.sort, s.cursor, s.body)
	}
	f.Fuzz(func(t *testing.T, filter, sort, cursor, body string) {
		q := url.Values{"filter": {filter}, "sort": {sort}, "cursor": {cursor}, "count": {"true"}, "expand": {"note,refs"}, "limit": {"2"}}
		check := func(method, path, body, token string) {
			status, ctype, b, err := call(method, path, body, token)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if status >= 500 {
				t.Fatalf("%s %s %q: %d %s", method, path, body, status, b)
			}
			if status >= 400 && !strings.HasPrefix(ctype, "application/problem+json") {
				t.Fatalf("%s %s %q: %d as %s", method, path, body, status, ctype)
			}
		}
		for _, token := range []string{"", login.AccessToken} {
			check("GET", "/api/collections/posts/records?"+q.Encode(), "", token)
		}
		check("POST", "/api/collections/posts/records", body, login.AccessToken)
		var buf bytes.Buffer
		if json.Valid([]byte(body)) {
			buf.WriteString(`{"ops":[{"collection":"posts","action":"create","data":` + body + `}]}`)
			check("POST", "/api/batch", buf.String(), login.AccessToken)
		}
	})
}
