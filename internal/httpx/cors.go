package httpx

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CORSConfig says which browser origins may call the API.
type CORSConfig struct {
	// AllowedOrigins lists exact origins, scheme://host[:port]. "*" allows
	// any origin, but only when AllowCredentials is false: a wildcard with
	// credentials would let every site act as the signed-in user.
	AllowedOrigins []string
	// AllowCredentials lets browsers send cookies and read answers to
	// credentialed requests.
	AllowCredentials bool
	// MaxAge is how long browsers may cache a preflight answer.
	MaxAge time.Duration
}

const (
	corsAllowMethods  = "GET, HEAD, POST, PUT, PATCH, DELETE"
	corsExposeHeaders = "ETag, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Request-Id, Location"
)

// corsBaseHeaders are allowed in every preflight, requested or not.
var corsBaseHeaders = []string{"Authorization", "Content-Type", "If-Match", "If-None-Match", "X-Request-Id"}

// CORS returns middleware that answers preflights and adds CORS headers to
// answers for allowed origins. Requests from other origins pass without
// CORS headers, so the browser keeps their answers from the page; their
// preflights are refused with 403. With no AllowedOrigins it does nothing.
func CORS(cfg CORSConfig) func(http.Handler) http.Handler {
	allowed := map[string]bool{}
	wildcard := false
	for _, o := range cfg.AllowedOrigins {
		// Browsers send origins lower-cased and without a path; a trailing
		// slash in the configuration is a common slip.
		o = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
		switch {
		case o == "*" && !cfg.AllowCredentials:
			wildcard = true
		case o != "" && o != "*":
			allowed[o] = true
		}
	}
	maxAge := ""
	if cfg.MaxAge > 0 {
		maxAge = strconv.FormatInt(int64(cfg.MaxAge/time.Second), 10)
	}
	return func(next http.Handler) http.Handler {
		if !wildcard && len(allowed) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			if !wildcard {
				// The answer depends on Origin, so caches must key on it,
				// also for requests without one.
				h.Add("Vary", "Origin")
			}
			origin := r.Header.Get("Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			ok := wildcard || allowed[origin]
			preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
			if !preflight {
				if ok {
					setAllowOrigin(h, origin, wildcard, cfg.AllowCredentials)
					h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
				}
				next.ServeHTTP(w, r)
				return
			}
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !ok {
				WriteProblem(w, r, Problem{Status: http.StatusForbidden, Code: CodeOriginNotAllowed, Detail: "this origin may not call the API from a browser"})
				return
			}
			setAllowOrigin(h, origin, wildcard, cfg.AllowCredentials)
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Values("Access-Control-Request-Headers")))
			if maxAge != "" {
				h.Set("Access-Control-Max-Age", maxAge)
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}
}

func setAllowOrigin(h http.Header, origin string, wildcard, credentials bool) {
	if wildcard {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// allowHeaders returns the base headers plus the requested ones, which are
// echoed only when every one is a valid token, so nothing odd is reflected.
func allowHeaders(requested []string) string {
	out := append([]string(nil), corsBaseHeaders...)
	seen := map[string]bool{}
	for _, b := range corsBaseHeaders {
		seen[strings.ToLower(b)] = true
	}
	var extra []string
	for _, line := range requested {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !isToken(name) {
				return strings.Join(out, ", ")
			}
			if !seen[strings.ToLower(name)] {
				seen[strings.ToLower(name)] = true
				extra = append(extra, name)
			}
		}
	}
	return strings.Join(append(out, extra...), ", ")
}

// isToken tells whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
