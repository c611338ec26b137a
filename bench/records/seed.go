package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe"
	"github.com/abe-stack/abe/auth"
	"github.com/abe-stack/abe/schema"
)

// config is the application under test. The database URL comes from the
// environment given to schema.Parse, so the caller's own ABE_* variables
// cannot change what is measured.
const config = `
server:
  # Rate limiting stays on, as in production (memory store, one bucket per
  # user), with budgets far above what the bench sends, so that its work
  # is measured and it refuses nothing.
  rate_limit:
    requests: 1000000
    window: 1s
    auth: { requests: 1000000, window: 1s }
    writes: { requests: 1000000, window: 1s }
database:
  url: ${ABE_BENCH_DATABASE}
auth:
  secret: abe-bench-records-throwaway-signing-key-0123456789
  access_token_ttl: 24h   # a run must not outlive its tokens
collections:
  todos:
    fields:
      owner: { type: relation, collection: users, required: true }
      title: { type: text, required: true, max: 200 }
      done:  { type: bool, default: false }
    indexes:
      - { fields: [owner, created_at] }
    rules:
      list:   "auth != null && record.owner == auth.id"
      read:   "auth != null && record.owner == auth.id"
      create: "auth != null && record.owner == auth.id"
      update: "auth != null && record.owner == auth.id"
      delete: "auth != null && record.owner == auth.id"
`

// password is every seeded account's; it passes the password policy.
const password = "bench-records-Correct-Horse-7"

func loadConfig(dbURL string) (*schema.Config, error) {
	cfg, err := schema.Parse("bench/records (embedded)", []byte(config), []string{"ABE_BENCH_DATABASE=" + dbURL})
	if err != nil {
		return nil, fmt.Errorf("bench configuration: %w", err)
	}
	return cfg, nil
}

// benchUser is an account a connection acts as, with what the load needs
// to know of its records.
type benchUser struct {
	id, email, token string
	// todos are the seeded records; versions tracks each one's version
	// across both servers, so that conditional updates never conflict.
	todos    []string
	versions map[string]int64
}

// seed migrates the database, adds users accounts with perUser todos each,
// and returns the first conns accounts, which the connections act as.
func seed(ctx context.Context, dbURL string, users, perUser, conns int) ([]*benchUser, error) {
	cfg, err := loadConfig(dbURL)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dbURL, err)
	}
	defer pool.Close()
	if _, err := abe.NewMigrator(cfg, "bench").Apply(ctx, pool, nil); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// One hash serves every account: Argon2id costs about 20 ms, and the
	// login only needs the password to verify.
	hash, err := auth.NewHasher(auth.DefaultArgon2).Hash(ctx, password)
	if err != nil {
		return nil, fmt.Errorf("hash the password: %w", err)
	}
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"users", `INSERT INTO abe.users (email, password_hash, email_verified)
			SELECT 'user' || i || '@bench.test', $1, true FROM generate_series(1, $2::int) i`, []any{hash, users}},
		{"default roles", `INSERT INTO abe.user_roles (user_id, role, granted_at)
			SELECT u.id, r.name, now() FROM abe.users u CROSS JOIN abe.roles r WHERE r.is_default`, nil},
		// The records look like a history: created over the past weeks,
		// interleaved between users, so the newest 50 of a user are a
		// real index range and not the end of one insert.
		{"todos", `INSERT INTO public.todos (owner, title, created_at, updated_at)
			SELECT u.id, 'todo ' || g, ts, ts
			FROM abe.users u CROSS JOIN generate_series(1, $1::int) g
			CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (g * 7919 + hashtext(u.id::text) % 7919)::double precision * 60) AS ts) x`, []any{perUser}},
		{"vacuum", `VACUUM ANALYZE`, nil},
	}
	for _, s := range steps {
		if _, err := pool.Exec(ctx, s.sql, s.args...); err != nil {
			return nil, fmt.Errorf("seed %s: %w", s.what, err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT u.id::text, u.email, array_agg(t.id::text ORDER BY t.created_at)
		FROM (SELECT id, email FROM abe.users ORDER BY email LIMIT $1) u JOIN public.todos t ON t.owner = u.id
		GROUP BY u.id, u.email ORDER BY u.email`, conns)
	if err != nil {
		return nil, fmt.Errorf("read the bench users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*benchUser, error) {
		u := &benchUser{versions: map[string]int64{}}
		err := row.Scan(&u.id, &u.email, &u.todos)
		for _, id := range u.todos {
			u.versions[id] = 1
		}
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the bench users: %w", err)
	}
	if len(out) != conns {
		return nil, fmt.Errorf("seeded %d users with todos, need %d (-todos-per-user must be at least 1)", len(out), conns)
	}
	return out, nil
}

// login gets an access token for each user from abe itself, a few at a
// time: each login is an Argon2id verification.
func login(ctx context.Context, base string, users []*benchUser) error {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	sem := make(chan struct{}, 4)
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = u.login(ctx, client, base)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (u *benchUser) login(ctx context.Context, client *http.Client, base string) error {
	body, _ := json.Marshal(map[string]string{"email": u.email, "password": password}) //nolint:errcheck // strings marshal
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/auth/login", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("log in %s: %w", u.email, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("log in %s: %w", u.email, err)
	}
	var answer struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &answer) != nil || answer.AccessToken == "" {
		return fmt.Errorf("log in %s: %s %s", u.email, resp.Status, b)
	}
	u.token = answer.AccessToken
	return nil
}
