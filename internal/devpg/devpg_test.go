//go:build linux

package devpg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// syncBuffer collects progress lines written from Start and Stop.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		// make test installs them; a missing server must fail, not hide.
		t.Fatalf("no PostgreSQL server binaries: %v", err)
	}
}

// dataDir returns a fresh data directory path. t.TempDir's directories are
// 0700, which the server user cannot enter when the tests run as root.
func dataDir(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(base, "pg")
}

func startCluster(t *testing.T, ctx context.Context, opts Options) *Cluster {
	t.Helper()
	if opts.Log == nil {
		opts.Log = testWriter{t}
	}
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop in cleanup: %v", err)
		}
	})
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func exec1(t *testing.T, ctx context.Context, url, sql string) []*pgconn.Result {
	t.Helper()
	conn, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res
}

// processesMentioning lists processes whose command line contains s.
func processesMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})), s) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// awaitGone waits until none of pids is alive.
func awaitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d is still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// assertNothingLeft checks that no process of the cluster in dir remains.
func assertNothingLeft(t *testing.T, dir string, pids ...int) {
	t.Helper()
	awaitGone(t, pids...)
	if left := processesMentioning(dir); len(left) > 0 {
		t.Fatalf("processes still mention %s: %v", dir, left)
	}
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	ctx := context.Background()
	dir := dataDir(t)
	c := startCluster(t, ctx, Options{Dir: dir, Fast: true, Database: `app "db"`})

	if c.Attached() {
		t.Fatal("fresh cluster reports Attached")
	}
	if os.Geteuid() == 0 && c.RunAs() == "" {
		t.Fatal("running as root but RunAs is empty")
	}
	if want := "postgres://postgres@127.0.0.1:" + strconv.Itoa(c.Port()) + "/postgres?sslmode=disable"; c.URL("") != want {
		t.Fatalf("URL = %q, want %q", c.URL(""), want)
	}
	res := exec1(t, ctx, c.URL(`app "db"`), "SELECT current_database(), 1")
	if got := string(res[0].Rows[0][0]); got != `app "db"` {
		t.Fatalf("connected to %q", got)
	}
	if got := readOwner(dir + ".owner").pid; got != os.Getpid() {
		t.Fatalf("owner file names %d, want %d", got, os.Getpid())
	}

	pids := append([]int{c.PID()}, childPIDs(c.PID())...)
	if len(pids) < 2 {
		t.Fatalf("postmaster %d has no children", c.PID())
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := c.Stop(ctx); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	wg.Wait()
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	assertNothingLeft(t, dir, pids...)
	if _, err := os.Stat(dir + ".owner"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("owner file left behind: %v", err)
	}
	if _, err := os.Stat(c.sockDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket directory left behind: %v", err)
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	ctx := context.Background()
	dir := dataDir(t)

	var first syncBuffer
	c := startCluster(t, ctx, Options{Dir: dir, Fast: true, Log: &first})
	exec1(t, ctx, c.URL(""), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first.String(), "initialising") {
		t.Fatalf("first start did not initialise:\n%s", first.String())
	}

	var second syncBuffer
	c = startCluster(t, ctx, Options{Dir: dir, Fast: true, Log: &second})
	if strings.Contains(second.String(), "initialising") {
		t.Fatalf("second start initialised again:\n%s", second.String())
	}
	res := exec1(t, ctx, c.URL(""), "SELECT x FROM kept")
	if len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != "42" {
		t.Fatalf("table lost: %v", res[0].Rows)
	}
	pid := c.PID()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dir, pid)
}

func TestStaleServerIsReplaced(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	ctx := context.Background()
	dir := dataDir(t)

	stale := startCluster(t, ctx, Options{Dir: dir, Fast: true})
	// Pretend the owner crashed: the owner file now names a dead process.
	if err := os.WriteFile(dir+".owner", []byte(strconv.Itoa(deadPID(t))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var log syncBuffer
	fresh := startCluster(t, ctx, Options{Dir: dir, Fast: true, Log: &log})
	if fresh.Attached() {
		t.Fatal("attached to a server whose owner is dead")
	}
	if fresh.PID() == stale.PID() {
		t.Fatalf("still the stale postmaster %d", stale.PID())
	}
	if !strings.Contains(log.String(), "crashed run") {
		t.Fatalf("no progress line about the stale server:\n%s", log.String())
	}
	select {
	case <-stale.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("stale postmaster still running")
	}
	exec1(t, ctx, fresh.URL(""), "SELECT 1")

	pid := fresh.PID()
	if err := fresh.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stale.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dir, stale.PID(), pid)
}

func TestAttachToLiveOwner(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	ctx := context.Background()
	dir := dataDir(t)

	owner := startCluster(t, ctx, Options{Dir: dir, Fast: true})
	guest := startCluster(t, ctx, Options{Dir: dir, Fast: true, Database: "guestdb"})
	if !guest.Attached() {
		t.Fatal("second Start did not attach")
	}
	if guest.Port() != owner.Port() || guest.PID() != owner.PID() {
		t.Fatalf("attached to port %d pid %d, want port %d pid %d", guest.Port(), guest.PID(), owner.Port(), owner.PID())
	}
	exec1(t, ctx, guest.URL("guestdb"), "SELECT 1")
	if err := guest.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	exec1(t, ctx, owner.URL(""), "SELECT 1")
	if readOwner(dir+".owner").pid != os.Getpid() {
		t.Fatal("attached Stop removed the owner file")
	}
	if err := owner.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dir, owner.PID())
}

func TestStartCancelled(t *testing.T) {
	t.Parallel()
	requireBinaries(t)

	t.Run("before start", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		dir := dataDir(t)
		if _, err := Start(ctx, Options{Dir: dir, Fast: true}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Start = %v, want context.Canceled", err)
		}
		assertNothingLeft(t, dir)
	})

	t.Run("while waiting for the server", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		dir := dataDir(t)
		// Cancel as soon as the server has been launched.
		w := cancelWriter{t: t, on: "starting PostgreSQL", cancel: cancel}
		_, err := Start(ctx, Options{Dir: dir, Fast: true, Log: w})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Start = %v, want context.Canceled", err)
		}
		assertNothingLeft(t, dir)
		if _, err := os.Stat(dir + ".owner"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("owner file left behind: %v", err)
		}
	})
}

type cancelWriter struct {
	t      *testing.T
	on     string
	cancel context.CancelFunc
}

func (w cancelWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	if strings.Contains(string(p), w.on) {
		w.cancel()
	}
	return len(p), nil
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()

	t.Run("none", func(t *testing.T) {
		t.Parallel()
		empty := t.TempDir()
		_, err := findBinaries(empty, []string{filepath.Join(empty, "*", "bin")})
		if !errors.Is(err, ErrNoBinaries) {
			t.Fatalf("err = %v, want ErrNoBinaries", err)
		}
		for _, want := range []string{"initdb", "apt-get install postgresql", "dnf install postgresql-server", "brew install postgresql", "DATABASE_URL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("highest version", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		for _, v := range []string{"9.6", "15", "13"} {
			fakeBinaries(t, filepath.Join(root, v, "bin"))
		}
		// A directory with initdb alone does not count.
		only := filepath.Join(root, "17", "bin")
		if err := os.MkdirAll(only, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(only, "initdb"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
		got, err := findBinaries(t.TempDir(), []string{filepath.Join(root, "*", "bin")})
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(root, "15", "bin"); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})

	t.Run("PATH first", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		fakeBinaries(t, filepath.Join(root, "16", "bin"))
		onPath := filepath.Join(root, "path")
		fakeBinaries(t, onPath)
		got, err := findBinaries(string(filepath.ListSeparator)+onPath, []string{filepath.Join(root, "*", "bin")})
		if err != nil {
			t.Fatal(err)
		}
		if got != onPath {
			t.Fatalf("got %s, want %s", got, onPath)
		}
	})
}

func fakeBinaries(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMajorVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"15.20": "15", "9.6.24": "9.6", "16beta1": "16", "17": "17"} {
		if got := majorVersion(in); got != want {
			t.Errorf("majorVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUntraversableParent(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("the check only applies when abe runs as root and the server as another user")
	}
	requireBinaries(t)
	a, err := ensureAccount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.uid == 0 {
		t.Skipf("the server user %s is root, so every directory is reachable", a.name)
	}
	locked := filepath.Join(filepath.Dir(dataDir(t)), "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Options{Dir: filepath.Join(locked, "pg"), Fast: true})
	if err == nil {
		t.Fatal("Start succeeded under a 0700 root-owned directory")
	}
	t.Log(err)
	for _, want := range []string{locked, "chmod o+x " + locked, a.name, "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestTraverseBit(t *testing.T) {
	t.Parallel()
	a := &account{name: "pg", uid: 100, gid: 200}
	cases := []struct {
		uid, gid uint32
		bit      os.FileMode
	}{
		{100, 0, 0o100},
		{100, 200, 0o100}, // the owner class wins even when the group matches
		{0, 200, 0o010},
		{0, 0, 0o001},
	}
	for _, tc := range cases {
		if bit, _ := traverseBit(tc.uid, tc.gid, a); bit != tc.bit {
			t.Errorf("traverseBit(%d, %d) = %o, want %o", tc.uid, tc.gid, bit, tc.bit)
		}
	}
}

func TestPortTaken(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	dir := dataDir(t)
	_, err = Start(context.Background(), Options{Dir: dir, Fast: true, Port: port, Log: testWriter{t}})
	if err == nil {
		t.Fatal("Start succeeded on a taken port")
	}
	t.Log(err)
	for _, want := range []string{"another program uses it", "Address already in use", dir + ".log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q", want)
		}
	}
	assertNothingLeft(t, dir)
}

func TestNotEmptyNotCluster(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	dir := dataDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Dir: dir, Fast: true})
	if err == nil || !strings.Contains(err.Error(), "holds no PostgreSQL cluster") {
		t.Fatalf("Start = %v, want a not-a-cluster error", err)
	}
}

// helperEnv makes TestHelperOwner start a cluster in the named directory and
// then wait to be killed.
const helperEnv = "DEVPG_TEST_HELPER_DIR"

func TestHelperOwner(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestOwnerDeathStopsServer")
	}
	c, err := Start(context.Background(), Options{Dir: dir, Fast: true, Log: os.Stderr})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("READY %d\n", c.PID())
	time.Sleep(time.Hour)
}

func TestOwnerDeathStopsServer(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	dir := dataDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOwner$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = testWriter{t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var pid int
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
			pid, err = strconv.Atoi(rest)
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		t.Log(sc.Text())
	}
	if pid == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("helper did not start a server")
	}
	if !processAlive(pid) {
		t.Fatalf("postmaster %d is not running", pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	assertNothingLeft(t, dir, pid)
	if log, err := os.ReadFile(dir + ".log"); err != nil || !bytes.Contains(log, []byte("fast shutdown request")) {
		t.Fatalf("server log does not show a fast shutdown (err %v):\n%s", err, log)
	}

	sockDir := readOwner(dir + ".owner").sockDir
	if sockDir == "" {
		t.Fatal("owner file records no socket directory")
	}

	c := startCluster(t, context.Background(), Options{Dir: dir, Fast: true})
	exec1(t, context.Background(), c.URL(""), "SELECT 1")
	if _, err := os.Stat(sockDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dead owner's socket directory %s is still there: %v", sockDir, err)
	}
}
