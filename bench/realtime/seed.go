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

	"github.com/abe-stack/abe/bench/internal/benchkit"
)

// password is every seeded account's; it passes the password policy.
const password = "bench-realtime-Correct-Horse-7"

// lab is a run's setting: the abe binary, the database, the accounts and
// the abe processes started so far.
type lab struct {
	o     options
	bin   string
	tmp   string
	db    *benchkit.Database
	nodes []*node
	// users[0] owns the project and makes every write; the others are
	// its members and subscribe.
	users   []benchUser
	project string
	commits *commits
}

type benchUser struct {
	id, email, token string
}

// owner is the account that writes.
func (l *lab) owner() benchUser { return l.users[0] }

// subscriberToken is the token of the i-th socket: the members in turn.
func (l *lab) subscriberToken(i int) string { return l.users[1+i%(len(l.users)-1)].token }

// prepare migrates the database, creates the accounts and the project
// the todos go in, and logs every account in. The logins happen on an
// abe process of their own, stopped before anything is measured: each
// is an Argon2id hash of 19 MiB, which would otherwise stay in the
// measured process's memory.
func (l *lab) prepare(ctx context.Context) error {
	cfg, _, err := l.writeConfig("migrate", "memory")
	if err != nil {
		return err
	}
	if err := l.abeCommand(ctx, "migrate", "apply", "--config", cfg); err != nil {
		return err
	}
	login, err := l.startNode(ctx, "login", "memory")
	if err != nil {
		return err
	}
	defer login.stop()
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	owner := benchUser{email: "owner@bench.test"}
	var answer tokenAnswer
	if err := postJSON(ctx, client, login.url+"/api/auth/register", "", map[string]string{"email": owner.email, "password": password}, &answer); err != nil {
		return fmt.Errorf("register the writing account: %w", err)
	}
	owner.id, owner.token = answer.User.ID, answer.AccessToken

	conn, err := pgx.Connect(ctx, l.db.URL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", l.db.Name, err)
	}
	defer conn.Close(ctx)
	// The members share the owner's password hash: hashing costs 20 ms
	// apiece and a login only needs the password to verify.
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"members", `INSERT INTO abe.users (email, password_hash, email_verified)
			SELECT 'member' || i || '@bench.test', (SELECT password_hash FROM abe.users WHERE id = $1), true
			FROM generate_series(1, $2::int) i`, []any{owner.id, l.o.users - 1}},
		{"default roles", `INSERT INTO abe.user_roles (user_id, role, granted_at)
			SELECT u.id, r.name, now() FROM abe.users u CROSS JOIN abe.roles r
			WHERE r.is_default AND u.id <> $1`, []any{owner.id}},
	}
	for _, s := range steps {
		if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("seed %s: %w", s.what, err)
		}
	}
	err = conn.QueryRow(ctx, `INSERT INTO public.projects (name, owner, members)
		SELECT 'bench', $1, array_agg(id ORDER BY email) FROM abe.users WHERE id <> $1
		RETURNING id::text`, owner.id).Scan(&l.project)
	if err != nil {
		return fmt.Errorf("seed the project: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT id::text, email FROM abe.users WHERE id <> $1 ORDER BY email`, owner.id)
	if err != nil {
		return fmt.Errorf("read the members: %w", err)
	}
	members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (benchUser, error) {
		var u benchUser
		err := row.Scan(&u.id, &u.email)
		return u, err
	})
	if err != nil {
		return fmt.Errorf("read the members: %w", err)
	}
	l.users = append([]benchUser{owner}, members...)
	start := time.Now()
	if err := logIn(ctx, client, login.url, l.users[1:]); err != nil {
		return err
	}
	fmt.Fprintf(l.o.out, "%d accounts (1 writer, %d members of its project) logged in in %s\n",
		len(l.users), len(members), time.Since(start).Round(10*time.Millisecond))
	return nil
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	User        struct {
		ID string `json:"id"`
	} `json:"user"`
}

// logIn gets an access token for each user, a few at a time: each login
// is an Argon2id verification.
func logIn(ctx context.Context, client *http.Client, base string, users []benchUser) error {
	sem := make(chan struct{}, 4)
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var a tokenAnswer
			errs[i] = postJSON(ctx, client, base+"/api/auth/login", "", map[string]string{"email": users[i].email, "password": password}, &a)
			if errs[i] == nil && a.AccessToken == "" {
				errs[i] = fmt.Errorf("log in %s: the answer has no access_token", users[i].email)
			}
			users[i].token = a.AccessToken
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// postJSON posts body as JSON and decodes a 2xx answer into out.
func postJSON(ctx context.Context, client *http.Client, url, token string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s %s", url, resp.Status, answer)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("POST %s: the answer is not what was expected: %w: %s", url, err, answer)
	}
	return nil
}
