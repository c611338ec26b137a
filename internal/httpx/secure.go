package httpx

import (
	"net/http"
	"strings"
)

// AdminCSP is the Content-Security-Policy of the admin console, a
// single-page app served from abe's own origin.
const AdminCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// apiCSP forbids everything: API answers are data, never pages, so nothing
// in them may run or load should a browser render one.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// SecurityHeaders sets defensive headers on every answer, and HSTS on those
// over HTTPS (see IsHTTPS; ClientIP must run first for proxied requests).
// They are set before next runs, so a handler serving a page replaces the
// policy with w.Header().Set("Content-Security-Policy", ...).
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// As h.Set would, with the keys already canonical and one
		// allocation for the five values instead of one each (every
		// request pays them). Each value's slice has its own capacity,
		// so a handler's Add to one cannot touch the next.
		v := [...]string{"nosniff", "no-referrer", "DENY", apiCSP, "same-origin"}
		vals := v[:]
		h["X-Content-Type-Options"] = vals[0:1:1]
		h["Referrer-Policy"] = vals[1:2:2]
		h["X-Frame-Options"] = vals[2:3:3]
		h["Content-Security-Policy"] = vals[3:4:4]
		h["Cross-Origin-Opener-Policy"] = vals[4:5:5]
		if IsHTTPS(r) {
			// Only over HTTPS: browsers ignore it over HTTP, and a plain
			// HTTP development server must stay reachable.
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// PageCSP returns a strict policy for a small server-rendered page whose
// only style and script are inline elements carrying nonce. The nonce
// should be fresh random base64 per answer; other characters are dropped so
// a bad one cannot widen the policy.
func PageCSP(nonce string) string {
	nonce = strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-' || c == '_' {
			return c
		}
		return -1
	}, nonce)
	return "default-src 'none'; style-src 'nonce-" + nonce + "'; script-src 'nonce-" + nonce + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}
