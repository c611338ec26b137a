package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/pg/pgtest"
)

// hookHit is one request the receiver got.
type hookHit struct {
	id, ts, sig string
	body        []byte
}

// TestWebhookSurvivesACrash: abe is killed with -9 while a delivery is
// in flight, its job already committed with the write; a restarted abe
// delivers it, with the same webhook-id and body, validly signed.
func TestWebhookSurvivesACrash(t *testing.T) {
	t.Parallel()
	hits := make(chan hookHit, 10)
	var answered atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits <- hookHit{id: r.Header.Get("webhook-id"), ts: r.Header.Get("webhook-timestamp"), sig: r.Header.Get("webhook-signature"), body: body}
		if !answered.Swap(true) {
			// The first attempt never gets its answer: abe dies first.
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "abe.yaml")
	// A rescued job is retried after rescue_after; it must outlast the
	// webhook's timeout (plus the 5 s the worker adds).
	yaml := fmt.Sprintf(`
database:
  url: ${DATABASE_URL}
jobs:
  timeout: 2s
  rescue_after: 7s
webhooks:
  allow: [127.0.0.1]
  backoff: 100ms
  timeout: 1s
collections:
  notes:
    fields:
      title: { type: text, required: true }
    rules: { read: "true", create: "true" }
    webhooks:
      - { name: crash, url: "%s/in", events: [create], secret_env: HOOK_SECRET }
`, srv.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := "a webhook secret of enough length"
	dbURL := pgtest.NewURL(t, nil)
	env := []string{"DATABASE_URL=" + dbURL, "ABE_AUTH_SECRET=" + strings.Repeat("s", 40), "HOOK_SECRET=" + secret}

	// Without its secret, abe refuses to start the workers.
	if out, code := runBin(t, env[:2], "serve", "--config", cfg, "--migrate"); code == 0 || !strings.Contains(out, "HOOK_SECRET") {
		t.Fatalf("serve without the secret: exit %d\n%s", code, out)
	}

	a := startBin(t, env, "serve", "--config", cfg, "--migrate")
	code, body := post(t, a.url+"/api/collections/notes/records", `{"title":"survive"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var rec struct{ ID string }
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		t.Fatal(err)
	}
	var hit hookHit
	select {
	case hit = <-hits:
	case <-time.After(time.Minute):
		t.Fatalf("the delivery never reached the receiver:\n%s", a.output.all.String())
	}
	// Mid-delivery, the node dies without a chance to clean up.
	job := killMidJob(t, a, dbURL, `kind = 'webhook.deliver' AND args->>'id' = $1`, rec.ID)
	job.awaitRescuable(7 * time.Second)
	b := startBin(t, env, "serve", "--config", cfg)
	var again hookHit
	select {
	case again = <-hits:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the delivery did not run again after the restart:\n%s", b.output.all.String())
	}
	if again.id != hit.id || string(again.body) != string(hit.body) || !strings.Contains(string(again.body), rec.ID) {
		t.Fatalf("the restarted delivery differs: %q %s, first %q %s", again.id, again.body, hit.id, hit.body)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s.%s.%s", again.id, again.ts, again.body)
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); again.sig != want {
		t.Fatalf("signature %q, want %q", again.sig, want)
	}
	job.awaitCompleted(2)
	// abe jobs lists it, as it lists the dead letters.
	out, code := runBin(t, env, "jobs", "list", "--kind", "webhook.deliver", "--config", cfg)
	if code != 0 || !strings.Contains(out, "webhook.deliver") || !strings.Contains(out, "completed") || !strings.Contains(out, "2/") {
		t.Fatalf("abe jobs list: exit %d\n%s", code, out)
	}
}
