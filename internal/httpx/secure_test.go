package httpx

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"X-Content-Type-Options":     "nosniff",
		"Referrer-Policy":            "no-referrer",
		"X-Frame-Options":            "DENY",
		"Content-Security-Policy":    "default-src 'none'; frame-ancestors 'none'",
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	const hsts = "max-age=63072000; includeSubDomains"
	for _, tc := range []struct {
		name    string
		remote  string
		tls     bool
		header  http.Header
		handler http.HandlerFunc
		csp     string
		hsts    string
	}{
		{name: "plain http", remote: "203.0.113.5:1", csp: apiCSP},
		{name: "tls", remote: "203.0.113.5:1", tls: true, csp: apiCSP, hsts: hsts},
		{name: "https at a trusted proxy", remote: "10.0.0.1:1", header: http.Header{"X-Forwarded-Proto": {"https"}}, csp: apiCSP, hsts: hsts},
		{name: "https claimed by an untrusted peer", remote: "203.0.113.5:1", header: http.Header{"X-Forwarded-Proto": {"https"}}, csp: apiCSP},
		{name: "a page replaces the policy", remote: "203.0.113.5:1", csp: PageCSP("abc"),
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Security-Policy", PageCSP("abc"))
			}},
		{name: "headers survive an error answer", remote: "203.0.113.5:1", csp: apiCSP,
			handler: func(w http.ResponseWriter, r *http.Request) { Error(w, r, http.StatusNotFound, "no") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next := tc.handler
			if next == nil {
				next = func(http.ResponseWriter, *http.Request) {}
			}
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.remote
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			ClientIP(testProxies)(SecurityHeaders(next)).ServeHTTP(rec, req)
			want := map[string]string{"Strict-Transport-Security": tc.hsts}
			for k, v := range base {
				want[k] = v
			}
			want["Content-Security-Policy"] = tc.csp
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPageCSP(t *testing.T) {
	t.Parallel()
	for nonce, want := range map[string]string{
		"r4nd0m+/=":        "default-src 'none'; style-src 'nonce-r4nd0m+/='; script-src 'nonce-r4nd0m+/='; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"x'; script-src *": "default-src 'none'; style-src 'nonce-xscript-src'; script-src 'nonce-xscript-src'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	} {
		if got := PageCSP(nonce); got != want {
			t.Errorf("PageCSP(%q) = %q, want %q", nonce, got, want)
		}
	}
}
