package httpx

import (
	"cmp"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// HTTPMetrics counts requests and their latency by method, route and
// status. The route is chi's pattern (/api/collections/{collection}/records),
// never the raw path, so ids in URLs cannot grow the series without bound.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewHTTPMetrics registers the HTTP metrics with reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "abe", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by method, route pattern and status."}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "abe", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route pattern and status class.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"method", "route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "abe", Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being answered (WebSockets included)."}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

// Middleware measures each request. It belongs on the router itself (not
// a sub-router), so that chi's route pattern is complete when it is read.
func (m *HTTPMetrics) Middleware(next http.Handler) http.Handler {
	return m.measure("", next)
}

// Route measures each request under one fixed route name, for handlers
// that stand outside the router (the hosted app's files).
func (m *HTTPMetrics) Route(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return m.measure(name, next) }
}

// measure counts a request under route, or under chi's pattern when route
// is empty.
func (m *HTTPMetrics) measure(fixed string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		ww := wrapWriter(w, r)
		next.ServeHTTP(ww, r)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		route := cmp.Or(fixed, "unmatched")
		if rc := chi.RouteContext(r.Context()); fixed == "" && rc != nil {
			if p := rc.RoutePattern(); p != "" {
				route = p
			}
		}
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		default:
			method = "other" // methods are client input too
		}
		code := strconv.Itoa(status)
		m.requests.WithLabelValues(method, route, code).Inc()
		m.duration.WithLabelValues(method, route, code[:1]+"xx").Observe(time.Since(start).Seconds())
	})
}

// GuardMetrics lets a request through when it carries the bearer token or
// comes from an allowed address (after trusted proxies); with neither
// configured, every request passes. Others get 401 or 403.
func GuardMetrics(token string, allow []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if token == "" && len(allow) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := ClientAddr(r.Context())
			for _, p := range allow {
				if ip.IsValid() && p.Contains(ip) {
					next.ServeHTTP(w, r)
					return
				}
			}
			if token != "" {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1 {
					next.ServeHTTP(w, r)
					return
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				Error(w, r, http.StatusUnauthorized, "the metrics need Authorization: Bearer <server.metrics.token>")
				return
			}
			Error(w, r, http.StatusForbidden, "this address may not read the metrics (server.metrics.allow)")
		})
	}
}
