package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/schema"
)

// abeBin is the abe binary built for tests that need a real process:
// signals, exit codes, the dev cluster.
var abeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "abe-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	abeBin = filepath.Join(dir, "abe")
	if out, err := exec.Command("go", "build", "-o", abeBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build abe: %v\n%s", err, out)
		os.Exit(1)
	}
	pgtest.Main(m, func() { os.RemoveAll(dir) })
}

// run executes abe in-process and returns its output and error.
func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	if err != nil {
		printError(&errOut, err)
	}
	return out.String(), errOut.String(), err
}

// runBin runs the built binary to completion.
func runBin(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(abeBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func assertNoStackTrace(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{"goroutine ", "panic:", ".go:"} {
		if strings.Contains(out, s) {
			t.Errorf("output looks like a stack trace (%q):\n%s", s, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "abe ") {
		t.Fatalf("%q %v", out, err)
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, args := range [][]string{{"init"}, {"validate"}, {"migrate"}, {"migrate", "plan"}, {"migrate", "apply"}, {"migrate", "status"}, {"serve"}, {"dev"}, {"version"}, {"users"}, {"users", "create"}, {"users", "unlock"}, {"users", "mfa-reset"}, {"users", "roles"}, {"users", "roles", "add"}, {"users", "roles", "remove"}, {"roles", "list"}, {"jobs"}, {"jobs", "list"}, {"jobs", "retry"}, {"jobs", "cancel"}} {
		out, _, err := run(t, nil, append(args, "--help")...)
		if err != nil || !strings.Contains(out, "Examples:") || !strings.Contains(out, "abe "+strings.Join(args, " ")) {
			t.Errorf("abe %s --help has no example:\n%s", strings.Join(args, " "), out)
		}
	}
}

func TestInitThenValidate(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, nil, "init", dir)
	if err != nil || !strings.Contains(out, "abe dev") {
		t.Fatalf("init: %q %v", out, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".gitignore")); err != nil || !strings.Contains(string(b), ".abe/") {
		t.Errorf(".gitignore: %q %v", b, err)
	}
	checkEditorSchema(t, filepath.Join(dir, "abe.yaml"))
	if _, _, err := run(t, nil, "init", dir); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("init over an existing file: %v", err)
	}
	if _, _, err := run(t, nil, "init", dir, "--force"); err != nil {
		t.Errorf("init --force: %v", err)
	}
	out, _, err = run(t, nil, "validate", "--config", filepath.Join(dir, "abe.yaml"))
	if err != nil || !strings.Contains(out, "is valid: 1 collection,") {
		t.Fatalf("validate: %q %v", out, err)
	}
}

func TestValidateBadConfigExitCode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "abe.yaml")
	if err := os.WriteFile(bad, []byte("collections:\n  todos:\n    fields:\n      title: { type: txt }\n      p: { type: relation, collection: nope }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runBin(t, nil, "validate", "--config", bad)
	if code == 0 || !strings.Contains(out, "2 problems") || !strings.Contains(out, "abe.yaml:4:22") || !strings.Contains(out, "abe.yaml:5:40") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	assertNoStackTrace(t, out)

	out, code = runBin(t, nil, "validate", "--config", filepath.Join(dir, "missing.yaml"))
	if code == 0 || !strings.Contains(out, "abe init") {
		t.Fatalf("missing file: exit %d:\n%s", code, out)
	}
	out, code = runBin(t, nil, "frobnicate")
	if code == 0 || !strings.Contains(out, "unknown command") {
		t.Fatalf("unknown command: exit %d:\n%s", code, out)
	}
}

func TestMigratePlanApplyStatus(t *testing.T) {
	env := map[string]string{"DATABASE_URL": pgtest.NewURL(t, nil)}
	cfg := "../../examples/todo/abe.yaml"
	out, _, err := run(t, env, "migrate", "plan", "--config", cfg)
	if err != nil || !strings.Contains(out, "create table projects") || !strings.Contains(out, "CREATE TABLE \"public\".\"todos\"") {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	out, _, err = run(t, env, "migrate", "apply", "--config", cfg)
	if err != nil || !strings.Contains(out, "[1/") || !strings.Contains(out, "Applied ") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	// Steps are numbered in the order they run: 1, 2, 3, ...
	next := 1
	for line := range strings.Lines(out) {
		var i, n int
		if _, err := fmt.Sscanf(line, "[%d/%d]", &i, &n); err != nil {
			continue
		}
		if i != next {
			t.Fatalf("apply printed step %d after step %d:\n%s", i, next-1, out)
		}
		next++
	}
	out, _, err = run(t, env, "migrate", "plan", "--config", cfg)
	if err != nil || !strings.Contains(out, "Nothing to do") {
		t.Fatalf("plan after apply: %v\n%s", err, out)
	}
	out, _, err = run(t, env, "migrate", "apply", "--config", cfg)
	if err != nil || !strings.Contains(out, "Nothing to do") {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	out, _, err = run(t, env, "migrate", "status", "--config", cfg)
	if err != nil || !strings.Contains(out, "#1") || !strings.Contains(out, "Up to date") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, limit := range []string{"-1", "0", "1001"} {
		_, stderr, err := run(t, env, "migrate", "status", "--config", cfg, "--limit", limit)
		if err == nil || !strings.Contains(stderr, "--limit must be from 1 to 1000") || strings.Contains(stderr, "SQLSTATE") {
			t.Errorf("status --limit %s: %v\n%s", limit, err, stderr)
		}
	}
}

func TestMigrateUnreachableDatabase(t *testing.T) {
	t.Parallel()
	out, code := runBin(t, []string{"DATABASE_URL=postgres://abe:hunter2@127.0.0.1:1/app"}, "migrate", "plan", "--config", "../../examples/todo/abe.yaml")
	if code == 0 || !strings.Contains(out, "is PostgreSQL running") || strings.Contains(out, "hunter2") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	assertNoStackTrace(t, out)
}

func TestServeRefusals(t *testing.T) {
	t.Parallel()
	cfg := "../../examples/todo/abe.yaml"
	secret := "ABE_AUTH_SECRET=" + strings.Repeat("s", 40)
	empty := pgtest.NewURL(t, nil)
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no secret", []string{"DATABASE_URL=" + empty, "ABE_AUTH_SECRET="}, "auth.secret is empty"},
		{"no database", []string{secret, "DATABASE_URL="}, "database.url is empty"},
		{"drift", []string{secret, "DATABASE_URL=" + empty}, "run `abe migrate apply` first"},
	} {
		out, code := runBin(t, tc.env, "serve", "--config", cfg)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, want %q in:\n%s", tc.name, code, tc.want, out)
		}
		assertNoStackTrace(t, out)
	}
}

// server is a running abe process.
type server struct {
	cmd    *exec.Cmd
	url    string
	output *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	ch  chan string
	all strings.Builder
}

// startBin starts abe with args and waits until it logs that it listens.
func startBin(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(abeBin, args...)
	cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("ABE_SERVER_LISTEN=127.0.0.1:%d", port))...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), output: &lockedBuffer{ch: make(chan string, 1024)}, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.output.ch <- sc.Text()
		}
		close(s.output.ch)
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill() //nolint:errcheck // best effort at cleanup
			<-s.done
		}
	})
	s.waitFor(t, "listening")
	return s
}

// waitFor reads output lines until one contains want.
func (s *server) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line, ok := <-s.output.ch:
			if !ok {
				t.Fatalf("abe exited before printing %q:\n%s", want, s.output.all.String())
			}
			s.output.all.WriteString(line + "\n")
			if strings.Contains(line, want) {
				return
			}
		case <-timeout:
			t.Fatalf("abe did not print %q:\n%s", want, s.output.all.String())
		}
	}
}

// stop sends sig and returns the exit code and the rest of the output.
func (s *server) stop(t *testing.T, sig os.Signal) (int, string) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	for line := range s.output.ch {
		s.output.all.WriteString(line + "\n")
	}
	err := <-s.done
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return code, s.output.all.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestServeMigrateAndSIGTERM(t *testing.T) {
	t.Parallel()
	env := []string{"DATABASE_URL=" + pgtest.NewURL(t, nil), "ABE_AUTH_SECRET=" + strings.Repeat("s", 40)}
	s := startBin(t, env, "serve", "--config", "../../examples/todo/abe.yaml", "--migrate")
	if code, body := get(t, s.url+"/readyz"); code != 200 || !strings.Contains(body, `"database":{"status":"up"`) {
		t.Fatalf("readyz %d %s", code, body)
	}
	// A second server on the same port fails with a clear message.
	port := strings.TrimPrefix(s.url, "http://127.0.0.1:")
	out, code := runBin(t, append(env, "ABE_SERVER_LISTEN=127.0.0.1:"+port), "serve", "--config", "../../examples/todo/abe.yaml")
	if code == 0 || !strings.Contains(out, "already in use") {
		t.Errorf("second server on a used port: exit %d\n%s", code, out)
	}
	assertNoStackTrace(t, out)

	code, out = s.stop(t, syscall.SIGTERM)
	if code != 0 || !strings.Contains(out, `"msg":"stopped"`) {
		t.Fatalf("SIGTERM: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, `"msg":"request"`) || !strings.Contains(out, `"request_id"`) {
		t.Errorf("no JSON request log with a request id:\n%s", out)
	}
}

func TestDevWithDatabaseURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "abe.yaml")
	src, err := os.ReadFile("../../examples/todo/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, src, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startBin(t, []string{"DATABASE_URL=" + pgtest.NewURL(t, nil), "ABE_AUTH_SECRET="}, "dev", "--config", cfg)
	if code, _ := get(t, s.url+"/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".abe", "secret")); err != nil || len(b) < 32 {
		t.Errorf("dev secret: %q %v", b, err)
	}
	if code, out := s.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("Ctrl-C: exit %d\n%s", code, out)
	}
}

// projectDir is a temporary project with the todo example. It is made
// traversable because, as root, the dev cluster runs as another user.
func projectDir(t *testing.T) (dir, cfg string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "abe-dev-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../examples/todo/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "abe.yaml")
	if err := os.WriteFile(cfg, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// postmasterPID reads the pid of the cluster's postmaster.
func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(strings.SplitN(string(b), "\n", 2)[0], &pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// awaitGone waits until no process runs with pid or has dataDir on its
// command line.
func awaitGone(t *testing.T, pid int, dataDir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := []string{}
		if syscall.Kill(pid, 0) == nil {
			left = append(left, fmt.Sprint("postmaster ", pid))
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(dataDir)) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind: %v", left)
		}
		time.Sleep(50 * time.Millisecond) // polling process state: there is no event to await
	}
}

func TestDevLocalCluster(t *testing.T) {
	t.Parallel()
	dir, cfg := projectDir(t)
	env := []string{"DATABASE_URL=", "ABE_DATABASE_URL=", "ABE_AUTH_SECRET="}
	dataDir := filepath.Join(dir, ".abe", "pg")

	s := startBin(t, env, "dev", "--config", cfg)
	if code, body := get(t, s.url+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	pid := postmasterPID(t, dataDir)
	code, out := s.stop(t, os.Interrupt)
	if code != 0 || !strings.Contains(out, "postgres: stopped") {
		t.Fatalf("Ctrl-C: exit %d\n%s", code, out)
	}
	assertNoStackTrace(t, out)
	awaitGone(t, pid, dataDir)

	// The second start reuses the cluster and its migrated database.
	s = startBin(t, env, "dev", "--config", cfg)
	if strings.Contains(s.output.all.String(), "initialising") || strings.Contains(s.output.all.String(), "[1/") {
		t.Errorf("second start initialised or migrated again:\n%s", s.output.all.String())
	}
	// A killed abe leaves no postmaster behind.
	pid = postmasterPID(t, dataDir)
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	awaitGone(t, pid, dataDir)

	// The next start recovers from the crash.
	s = startBin(t, env, "dev", "--config", cfg)
	if code, _ := get(t, s.url+"/readyz"); code != 200 {
		t.Fatalf("readyz after a crash: %d", code)
	}
	if code, out := s.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("Ctrl-C: exit %d\n%s", code, out)
	}
}

func TestUsersCreateAndUnlock(t *testing.T) {
	env := map[string]string{"DATABASE_URL": pgtest.NewURL(t, nil), "ABE_AUTH_SECRET": strings.Repeat("s", 40)}
	cfg := "../../examples/todo/abe.yaml"
	if _, _, err := run(t, env, "users", "create", "--config", cfg, "--email", "a@example.test", "--password", "long enough pass phrase 9"); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("users create on an unmigrated database: %v", err)
	}
	if _, _, err := run(t, env, "migrate", "apply", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, env, "users", "create", "--config", cfg, "--email", "admin@example.test", "--password", "long enough pass phrase 9", "--role", "admin")
	if err != nil || !strings.Contains(out, "roles admin") {
		t.Fatalf("create: %q %v", out, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--email", "admin@example.test", "--password", "long enough pass phrase 9"}, "already exists"},
		{[]string{"--email", "b@example.test", "--password", "password"}, "password"},
		{[]string{"--email", "b@example.test", "--password", "long enough pass phrase 9", "--role", "wizard"}, "unknown role"},
		{[]string{"--email", "b@example.test"}, "--password"},
	} {
		if _, _, err := run(t, env, append([]string{"users", "create", "--config", cfg}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := run(t, env, "users", "create", "--config", cfg, "--email", "mod@example.test", "--password", "long enough pass phrase 9"); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, env, "users", "roles", "add", "--config", cfg, "mod@example.test", "moderator"); err != nil || !strings.Contains(out, "Gave role moderator") {
		t.Fatalf("roles add: %q %v", out, err)
	}
	if out, _, err := run(t, env, "roles", "list", "--config", cfg); err != nil || !strings.Contains(out, "moderator") || !strings.Contains(out, "built-in") {
		t.Fatalf("roles list: %q %v", out, err)
	}
	if out, _, err := run(t, env, "users", "roles", "remove", "--config", cfg, "mod@example.test", "moderator"); err != nil || !strings.Contains(out, "Took role") {
		t.Fatalf("roles remove: %q %v", out, err)
	}
	if _, _, err := run(t, env, "users", "roles", "add", "--config", cfg, "mod@example.test", "wizard"); err == nil {
		t.Fatal("gave an unknown role")
	}
	if out, _, err := run(t, env, "users", "unlock", "--config", cfg, "admin@example.test"); err != nil || !strings.Contains(out, "Unlocked") {
		t.Fatalf("unlock: %q %v", out, err)
	}
	if _, _, err := run(t, env, "users", "unlock", "--config", cfg, "nobody@example.test"); err == nil {
		t.Fatal("unlocking an unknown email succeeded")
	}

	// mfa-reset: refused for an account without MFA, done for one with it.
	if _, _, err := run(t, env, "users", "mfa-reset", "--config", cfg, "admin@example.test"); err == nil || !strings.Contains(err.Error(), "not on") {
		t.Fatalf("mfa-reset without MFA: %v", err)
	}
	db, err := pgx.Connect(context.Background(), env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	if _, err := db.Exec(context.Background(), `INSERT INTO abe.mfa_totp (user_id, key_id, secret, created_at, enabled_at)
		SELECT id, 'secret', '\x00', now(), now() FROM abe.users WHERE email = 'admin@example.test'`); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, env, "users", "mfa-reset", "--config", cfg, "admin@example.test"); err != nil || !strings.Contains(out, "is off") {
		t.Fatalf("mfa-reset: %q %v", out, err)
	}
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM abe.mfa_totp`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after mfa-reset: %d factors, %v", n, err)
	}
}

// TestRoleChangeAcrossProcesses runs two abe serve processes on one
// database: a role given through one is honoured by the other.
func TestRoleChangeAcrossProcesses(t *testing.T) {
	t.Parallel()
	cfg := "../../examples/todo/abe.yaml"
	dbURL := pgtest.NewURL(t, nil)
	env := []string{"DATABASE_URL=" + dbURL, "ABE_AUTH_SECRET=" + strings.Repeat("s", 40)}
	if out, code := runBin(t, env, "migrate", "apply", "--config", cfg); code != 0 {
		t.Fatal(out)
	}
	if out, code := runBin(t, env, "users", "create", "--config", cfg, "--email", "root@example.test", "--password", "long enough pass phrase 9", "--role", "admin"); code != 0 {
		t.Fatal(out)
	}
	a := startBin(t, env, "serve", "--config", cfg)
	b := startBin(t, env, "serve", "--config", cfg)
	post := func(base, path, token string, body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	code, root := post(a.url, "/api/auth/login", "", `{"email":"root@example.test","password":"long enough pass phrase 9"}`)
	if code != 200 {
		t.Fatalf("root login: %d %v", code, root)
	}
	code, bob := post(a.url, "/api/auth/register", "", `{"email":"bob@example.test","password":"another long pass phrase 8"}`)
	if code != 201 {
		t.Fatalf("register: %d %v", code, bob)
	}
	bobToken, bobID := bob["access_token"].(string), bob["user"].(map[string]any)["id"].(string)
	events := func() int {
		req, _ := http.NewRequest("GET", b.url+"/api/admin/security-events", nil)
		req.Header.Set("Authorization", "Bearer "+bobToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := events(); c != 403 {
		t.Fatalf("bob on node b before: %d", c)
	}
	if code, body := post(a.url, "/api/admin/users/"+bobID+"/roles", root["access_token"].(string), `{"role":"admin"}`); code != 204 {
		t.Fatalf("assign on node a: %d %v", code, body)
	}
	// Node b hears of it through NOTIFY; the change is visible within
	// milliseconds, so poll with a short interval and a generous limit.
	deadline := time.Now().Add(10 * time.Second)
	for events() != 200 {
		if time.Now().After(deadline) {
			t.Fatal("node b never honoured the new role")
		}
		time.Sleep(20 * time.Millisecond) // polling another process: no event to await
	}
}

func TestOpenAPIAndTypes(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join("..", "..", "config.example.yaml")
	env := []string{"ABE_AUTH_SECRET=" + strings.Repeat("s", 40)}
	out, code := runBin(t, env, "openapi", "--config", cfg, "--server-url", "https://api.example.test")
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Servers []struct{ URL string }     `json:"servers"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc.OpenAPI != "3.1.0" || doc.Servers[0].URL != "https://api.example.test" || doc.Paths["/api/collections/todos/records/{id}"] == nil {
		t.Fatalf("openapi: exit %d\n%.500s", code, out)
	}
	file := filepath.Join(t.TempDir(), "types.ts")
	if out, code := runBin(t, env, "gen", "types", "--lang", "ts", "-o", file, "--config", cfg); code != 0 {
		t.Fatalf("gen types: exit %d\n%s", code, out)
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "export type TodosRecord = {") {
		t.Fatalf("types: %v\n%.300s", err, b)
	}
	if out, code := runBin(t, env, "gen", "types", "--lang", "cobol", "--config", cfg); code == 0 || !strings.Contains(out, "--lang ts") {
		t.Fatalf("unknown language: exit %d\n%s", code, out)
	}
}

// TestDevBusyPort: abe dev on a port another program holds says so, and
// only that: no "serving" line, no service failing after it.
func TestDevBusyPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, cfg := projectDir(t)
	env := []string{"DATABASE_URL=" + pgtest.NewURL(t, nil), "ABE_AUTH_SECRET=" + strings.Repeat("s", 40), "ABE_SERVER_LISTEN=" + ln.Addr().String()}
	out, code := runBin(t, env, "dev", "--config", cfg)
	if code == 0 || !strings.Contains(out, "already in use") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
		t.Errorf("want the cause alone, got %d lines:\n%s", len(lines), out)
	}
	assertNoStackTrace(t, out)
}

// TestEveryHelpHasExample: no command's --help only repeats its summary.
func TestEveryHelpHasExample(t *testing.T) {
	t.Parallel()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if strings.TrimSpace(sub.Example) == "" {
				t.Errorf("%s has no example", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(newRootCmd(io.Discard, io.Discard))
}

// TestArgumentsNamed: a command given the wrong number of arguments says
// which it takes, what they are, and shows a call.
func TestArgumentsNamed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"users", "roles", "add"}, []string{"EMAIL ROLE", "email", "role", "abe users roles add admin@example.com admin"}},
		{[]string{"users", "roles", "remove", "a@example.test"}, []string{"EMAIL ROLE", "abe users roles remove someone@example.com moderator"}},
		{[]string{"users", "unlock"}, []string{"EMAIL", "abe users unlock someone@example.com"}},
		{[]string{"jobs", "retry", "1", "2"}, []string{"ID", "abe jobs list", "abe jobs retry 42"}},
	} {
		out, code := runBin(t, nil, tc.args...)
		if code == 0 || strings.Contains(out, "arg(s)") {
			t.Errorf("%v: exit %d:\n%s", tc.args, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: want %q in:\n%s", tc.args, w, out)
			}
		}
	}
}

func TestOpenAPIServerURL(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join("..", "..", "examples", "todo", "abe.yaml")
	for _, bad := range []string{"not a url", "api.example.com", "ftp://api.example.com", "https://", "https://api.example.com/?x=1"} {
		out, code := runBin(t, nil, "openapi", "--config", cfg, "--server-url", bad)
		if code == 0 || !strings.Contains(out, "--server-url") || strings.Contains(out, `"openapi"`) {
			t.Errorf("--server-url %q: exit %d\n%.300s", bad, code, out)
		}
	}
	if out, code := runBin(t, nil, "openapi", "--config", cfg, "--server-url", "http://127.0.0.1:8090/base"); code != 0 || !strings.Contains(out, `"http://127.0.0.1:8090/base"`) {
		t.Errorf("a good URL: exit %d\n%.300s", code, out)
	}
}

// checkEditorSchema does what an editor with the YAML language server
// does: it reads the schema the file's first line names, relative to the
// file, and checks the file against it.
func checkEditorSchema(t *testing.T, file string) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(src), "\n")
	ref, ok := strings.CutPrefix(first, "# yaml-language-server: $schema=")
	if !ok {
		t.Fatalf("%s does not start with a yaml-language-server line: %q", file, first)
	}
	path := filepath.Join(filepath.Dir(file), ref)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the schema %s names: %v", file, err)
	}
	if !bytes.Equal(b, schema.ConfigJSONSchema) {
		t.Errorf("%s is not the schema abe checks files with", path)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(path, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s does not pass its schema: %v", file, err)
	}
}

func TestSchemaCommand(t *testing.T) {
	t.Parallel()
	out, _, err := run(t, nil, "schema")
	if err != nil || out != string(schema.ConfigJSONSchema) {
		t.Fatalf("abe schema: %v\n%.200s", err, out)
	}
}
