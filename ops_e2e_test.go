package abe_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/mail/smtptest"
	"github.com/abe-stack/abe/schema"
)

// scrape reads /metrics with the given Authorization header value.
func (w *world) scrape(authz string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest("GET", w.srv.URL+"/metrics", nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// TestMetrics: /metrics reports requests by route pattern (not by raw
// path), the database pool, realtime and security events, after real
// traffic.
func TestMetrics(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann]}, 201).str("id")
	w.mustDo(ann, "GET", "/api/collections/projects/records/"+pid, nil, 200)
	w.mustDo(ann, "GET", "/api/collections/projects/records/01a2b3c4-0000-7000-8000-000000000000", nil, 404)
	w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": ann, "password": "not the password at all"}, 401)
	w.mustDo("", "GET", "/no/such/route/"+pid, nil, 404)
	ws := w.as(ann)
	ws.subscribe("s", "collection:todos", "")

	code, body := w.scrape("")
	if code != 200 {
		t.Fatalf("metrics: %d %s", code, body)
	}
	for _, want := range []string{
		`abe_http_requests_total{method="GET",route="/api/collections/{collection}/records/{id}",status="200"} 1`,
		`abe_http_requests_total{method="GET",route="/api/collections/{collection}/records/{id}",status="404"} 1`,
		`abe_http_requests_total{method="POST",route="/api/collections/{collection}/records",status="201"} 1`,
		`abe_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`abe_http_request_duration_seconds_bucket{method="GET",route="/api/collections/{collection}/records/{id}",status="2xx",le="+Inf"} 1`,
		`abe_auth_events_total{type="login_failed"} 1`,
		`abe_realtime_connections 1`,
		`abe_realtime_subscriptions 1`,
		`abe_db_pool_max_connections `,
		`abe_db_pool_acquires_total `,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, pid) {
		t.Error("a record id made it into a metric label")
	}
}

// TestMetricsGuard: with a token, a scrape needs it; with an allow list,
// an allowed address needs none; disabled, there is no /metrics.
func TestMetricsGuard(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("m", 24)
	t.Run("token", func(t *testing.T) {
		t.Parallel()
		cfg := loadExample(t)
		cfg.Server.Metrics.Token = token
		w := newWorld(t, cfg)
		if code, _ := w.scrape(""); code != 401 {
			t.Errorf("no token: %d", code)
		}
		if code, _ := w.scrape("Bearer " + strings.Repeat("x", 24)); code != 401 {
			t.Errorf("a wrong token: %d", code)
		}
		if code, body := w.scrape("Bearer " + token); code != 200 || !strings.Contains(body, "abe_http_requests_total") {
			t.Errorf("the token: %d", code)
		}
	})
	t.Run("allow", func(t *testing.T) {
		t.Parallel()
		cfg := loadExample(t)
		cfg.Server.Metrics.Allow = []string{"10.0.0.0/8"}
		w := newWorld(t, cfg)
		if code, _ := w.scrape(""); code != 403 {
			t.Errorf("127.0.0.1, not allowed: %d", code)
		}
		cfg = loadExample(t)
		cfg.Server.Metrics = schema.Metrics{Allow: []string{"127.0.0.1"}, Token: token}
		w = newWorld(t, cfg)
		if code, _ := w.scrape(""); code != 200 {
			t.Errorf("127.0.0.1, allowed, no token: %d", code)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		cfg := loadExample(t)
		cfg.Server.Metrics.Disabled = true
		w := newWorld(t, cfg)
		if code, _ := w.scrape(""); code != 404 {
			t.Errorf("disabled: %d", code)
		}
	})
}

// TestReadyzDependencies: every dependency is reported with whether it is
// required; an optional one (the broker) does not make the node unready.
func TestReadyzDependencies(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	r := w.mustDo("", "GET", "/readyz", nil, 200)
	checks := r.body["checks"].(map[string]any)
	db, _ := checks["database"].(map[string]any)
	br, _ := checks["broker_postgres"].(map[string]any)
	if db["required"] != true || db["status"] != "up" || br["required"] != false || br["status"] != "up" {
		t.Fatalf("readyz: %s", r.raw)
	}
}

// TestAuthMailThroughQueueWithFailover: the verification mail of a
// registration is a job; the first provider refuses it, the second
// delivers it, and the job is completed.
func TestAuthMailThroughQueueWithFailover(t *testing.T) {
	t.Parallel()
	down := smtptest.Start(t, &smtptest.Options{RejectAll: true})
	up := smtptest.Start(t, nil)
	cfg := loadExample(t)
	cfg.Mail.Providers = []schema.MailProvider{
		{Type: "smtp", Host: down.Host, Port: down.Port, TLS: "none", Timeout: schema.Duration(5 * time.Second)},
		{Type: "smtp", Host: up.Host, Port: up.Port, TLS: "none", Timeout: schema.Duration(5 * time.Second)},
	}
	w := newWorld(t, cfg)
	w.mustDo("", "POST", "/api/auth/register", map[string]string{"email": "dan@x.test", "password": "long enough pass phrase 9"}, 201)
	got := up.Next(t, time.Minute)
	if len(got.To) != 1 || got.To[0] != "dan@x.test" || !strings.Contains(got.Header.Get("Subject"), "erify") {
		t.Fatalf("delivered to %v: %q", got.To, got.Header.Get("Subject"))
	}
	// The job is recorded as completed once the send returns.
	deadline := time.Now().Add(time.Minute)
	for {
		var state string
		err := w.app.Pool().QueryRow(context.Background(), `SELECT state::text FROM abe.river_job WHERE kind = 'mail.send' ORDER BY id DESC LIMIT 1`).Scan(&state)
		if err == nil && state == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mail job is %q (%v)", state, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the job's row
	}
}
