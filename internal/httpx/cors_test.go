package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	app := "https://app.example.com"
	exact := CORSConfig{AllowedOrigins: []string{app, "http://localhost:5173/"}, AllowCredentials: true, MaxAge: 10 * time.Minute}
	for _, tc := range []struct {
		name      string
		cfg       CORSConfig
		method    string
		header    http.Header
		status    int
		reached   bool              // the next handler ran
		want      map[string]string // header: value ("" means absent)
		wantAllow []string          // in Access-Control-Allow-Headers
	}{
		{name: "no origins configured", cfg: CORSConfig{}, method: "GET", header: http.Header{"Origin": {app}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": ""}},
		{name: "no origins: preflight reaches next", cfg: CORSConfig{}, method: "OPTIONS", header: http.Header{"Origin": {app}, "Access-Control-Request-Method": {"POST"}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "same-origin request", cfg: exact, method: "GET", status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
		{name: "allowed origin", cfg: exact, method: "GET", header: http.Header{"Origin": {app}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "true", "Vary": "Origin", "Access-Control-Expose-Headers": corsExposeHeaders}},
		{name: "configured with a trailing slash", cfg: exact, method: "GET", header: http.Header{"Origin": {"http://localhost:5173"}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "http://localhost:5173"}},
		{name: "other port is another origin", cfg: exact, method: "GET", header: http.Header{"Origin": {"http://localhost:5174"}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": ""}},
		{name: "disallowed origin passes without headers", cfg: exact, method: "POST", header: http.Header{"Origin": {"https://evil.example"}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Expose-Headers": ""}},
		{name: "preflight", cfg: exact, method: "OPTIONS", header: http.Header{"Origin": {app}, "Access-Control-Request-Method": {"PATCH"}}, status: 204,
			want: map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "true", "Access-Control-Allow-Methods": corsAllowMethods,
				"Access-Control-Max-Age": "600", "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
			wantAllow: corsBaseHeaders},
		{name: "preflight echoes requested headers", cfg: exact, method: "OPTIONS", header: http.Header{"Origin": {app}, "Access-Control-Request-Method": {"PUT"},
			"Access-Control-Request-Headers": {"x-custom, content-type", "X-Other"}}, status: 204,
			wantAllow: append([]string{"x-custom", "X-Other"}, corsBaseHeaders...)},
		{name: "preflight with an invalid requested header", cfg: exact, method: "OPTIONS", header: http.Header{"Origin": {app}, "Access-Control-Request-Method": {"PUT"},
			"Access-Control-Request-Headers": {"x-ok, bad header"}}, status: 204,
			wantAllow: corsBaseHeaders},
		{name: "preflight from a disallowed origin", cfg: exact, method: "OPTIONS", header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"DELETE"}}, status: 403,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Content-Type": ContentTypeProblem}},
		{name: "plain OPTIONS is not a preflight", cfg: exact, method: "OPTIONS", header: http.Header{"Origin": {app}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Methods": ""}},
		{name: "wildcard", cfg: CORSConfig{AllowedOrigins: []string{"*"}}, method: "GET", header: http.Header{"Origin": {"https://any.example"}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "", "Vary": ""}},
		{name: "wildcard preflight without max age", cfg: CORSConfig{AllowedOrigins: []string{"*"}}, method: "OPTIONS", header: http.Header{"Origin": {"null"}, "Access-Control-Request-Method": {"GET"}}, status: 204,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Max-Age": ""}},
		{name: "wildcard ignored with credentials", cfg: CORSConfig{AllowedOrigins: []string{"*", app}, AllowCredentials: true}, method: "GET", header: http.Header{"Origin": {"https://any.example"}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "wildcard with credentials keeps exact origins", cfg: CORSConfig{AllowedOrigins: []string{"*", app}, AllowCredentials: true}, method: "GET", header: http.Header{"Origin": {app}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "true"}},
		{name: "only a wildcard with credentials: no CORS", cfg: CORSConfig{AllowedOrigins: []string{"*"}, AllowCredentials: true}, method: "OPTIONS", header: http.Header{"Origin": {app}, "Access-Control-Request-Method": {"GET"}}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reached := false
			h := CORS(tc.cfg)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
			req := httptest.NewRequest(tc.method, "/api/x", nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || reached != tc.reached {
				t.Errorf("status %d, reached %v; want %d, %v", rec.Code, reached, tc.status, tc.reached)
			}
			for k, v := range tc.want {
				if got := strings.Join(rec.Header().Values(k), ", "); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tc.wantAllow != nil {
				got := map[string]bool{}
				for _, n := range strings.Split(rec.Header().Get("Access-Control-Allow-Headers"), ", ") {
					got[n] = true
				}
				for _, n := range tc.wantAllow {
					if !got[n] {
						t.Errorf("Access-Control-Allow-Headers %q lacks %q", rec.Header().Get("Access-Control-Allow-Headers"), n)
					}
				}
				if len(got) != len(tc.wantAllow) {
					t.Errorf("Access-Control-Allow-Headers %q, want exactly %q", rec.Header().Get("Access-Control-Allow-Headers"), tc.wantAllow)
				}
			}
		})
	}
}
