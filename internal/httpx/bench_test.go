package httpx

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkStack: a GET through the middleware abe puts in front of every
// API route (metrics, request id, client address, security headers,
// logging at warn, recovery, rate limiting with the memory store) to a
// handler that sets two headers and writes a small body: what the stack
// itself costs a request, and its allocations.
func BenchmarkStack(b *testing.B) {
	m := NewHTTPMetrics(prometheus.NewRegistry())
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := chi.NewRouter()
	r.Use(m.Middleware, WithRequestID, ClientIP(nil), SecurityHeaders, Logger(log), Recover(log),
		RateLimit(RateLimitConfig{
			Store:   NewMemoryRates(1000, time.Now),
			Default: RateClass{Name: "default", Requests: 1000000, Window: time.Second},
		}))
	body := []byte(`{"id":"018f0000-0000-7000-8000-000000000001","title":"a todo"}`)
	r.Get("/api/collections/{collection}/records/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"1"`)
		_, _ = w.Write(body) //nolint:errcheck // a recorder
	})
	req := httptest.NewRequest("GET", "/api/collections/todos/records/018f0000-0000-7000-8000-000000000001", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
