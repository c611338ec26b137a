package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/pg/pgtest"
)

// The shell examples of README.md are run here as a newcomer runs them,
// one block after another in one shell, with the binary on PATH; only the
// port is changed, so tests can run side by side. A command's expected
// output is what the page shows under it: the lines after a `$ command`,
// or the `# {...}` comments right below a command.

// shellStep is one command of a README block and what the page says it
// prints.
type shellStep struct {
	cmd  string
	want []string
	json bool // want is JSON with elisions (# comments), not output lines
}

// readmeSection returns the unmarked fenced blocks of one "## " section of
// README.md, as language and text.
func readmeSection(t *testing.T, heading string) [][2]string {
	t.Helper()
	src, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	var out [][2]string
	lines := strings.Split(rest, "\n")
	for i := 0; i < len(lines); i++ {
		lang, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		marked := i > 0 && strings.HasPrefix(strings.TrimSpace(lines[i-1]), "<!-- fragment")
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		if !marked {
			out = append(out, [2]string{lang, strings.Join(body, "\n")})
		}
	}
	return out
}

// shellSteps splits a sh block into commands and their expected output.
func shellSteps(block string) []shellStep {
	var steps []shellStep
	lines := strings.Split(block, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "$ "):
			s := shellStep{cmd: l[2:]}
			for i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "$ ") {
				i++
				s.want = append(s.want, lines[i])
			}
			steps = append(steps, s)
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#"):
			// prose
		default:
			s := shellStep{cmd: l, json: true}
			// Continuations, and function bodies up to their brace.
			for (strings.HasSuffix(s.cmd, "\\") || strings.HasSuffix(s.cmd, "{")) && i+1 < len(lines) {
				open := strings.HasSuffix(s.cmd, "{")
				i++
				s.cmd += "\n" + lines[i]
				for open && i+1 < len(lines) && lines[i] != "}" {
					i++
					s.cmd += "\n" + lines[i]
				}
			}
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "# ") {
				i++
				s.want = append(s.want, strings.TrimPrefix(lines[i], "# "))
			}
			steps = append(steps, s)
		}
	}
	return steps
}

// shellRun runs steps in one bash, in dir, and returns each one's output.
// `abe dev` is started in the background, and the next step waits for it
// to answer /readyz.
func shellRun(t *testing.T, dir string, env []string, stdin string, port int, steps []shellStep) []string {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -e\nexport PATH=" + filepath.Dir(abeBin) + ":$PATH\n")
	for i, s := range steps {
		cmd := strings.ReplaceAll(s.cmd, "127.0.0.1:8090", fmt.Sprintf("127.0.0.1:%d", port))
		if strings.TrimSpace(cmd) == "abe dev" {
			cmd = fmt.Sprintf("abe dev > abe-dev.log 2>&1 &\necho $! > abe-dev.pid\nfor i in $(seq 600); do curl -sf -o /dev/null http://127.0.0.1:%d/readyz && break; sleep 0.1; done", port)
		}
		fmt.Fprintf(&script, "%s\necho\necho '@@step %d@@'\n", cmd, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("ABE_SERVER_LISTEN=127.0.0.1:%d", port))...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "notes", "abe-dev.log"))
		t.Fatalf("the README's commands failed: %v\n%s\nabe dev:\n%s", err, out, log)
	}
	parts := regexp.MustCompile(`(?m)^@@step \d+@@\n?`).Split(string(out), -1)
	return parts[:len(steps)]
}

var elision = regexp.MustCompile(`\\\.\\\.\\\.`)

// outputLineRE matches an output line the page shows: "..." stands for
// anything, and timings and checksums vary.
func outputLineRE(want string) *regexp.Regexp {
	re := regexp.QuoteMeta(strings.TrimSpace(want))
	re = elision.ReplaceAllString(re, `.*`)
	re = regexp.MustCompile(`\\\(\d+ms\\\)`).ReplaceAllString(re, `\(.*\)`)
	re = regexp.MustCompile(`checksum [0-9a-f]+`).ReplaceAllString(re, `checksum [0-9a-f]+`)
	return regexp.MustCompile(re)
}

// shownPairs are the "key":value pairs of a documented JSON answer whose
// value is shown whole (not elided): they must be in the real answer.
var shownPairs = regexp.MustCompile(`"\w+":(?:"[^".]*"|-?\d+(?:\.\d+)?|true|false|null|\[(?:"[^".]*",?)*\])`)

// checkStep compares a step's output with what the page shows.
func checkStep(t *testing.T, s shellStep, out string) {
	t.Helper()
	if s.json {
		got := out
		for _, w := range s.want {
			w, _, _ = strings.Cut(w, "  ") // prose after the JSON
			for _, pair := range shownPairs.FindAllString(w, -1) {
				if strings.Contains(pair, "latency_ms") {
					continue
				}
				if !strings.Contains(got, pair) {
					t.Errorf("README shows %s for\n  %s\nbut it printed\n  %s", pair, s.cmd, out)
				}
			}
		}
		return
	}
	lines := strings.Split(out, "\n")
	at := 0
	for _, w := range s.want {
		if strings.TrimSpace(w) == "..." {
			continue
		}
		re := outputLineRE(w)
		for at < len(lines) && !re.MatchString(lines[at]) {
			at++
		}
		if at == len(lines) {
			t.Errorf("README shows the line %q for `%s`, but it printed:\n%s", w, s.cmd, out)
			return
		}
	}
}

// TestReadmeQuickstart follows the Quickstart: abe init, validate, the
// migrate commands on the project's local cluster, abe dev, an account
// and a rule-protected note, as the page shows them.
func TestReadmeQuickstart(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "abe-readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the cluster runs as another user under root
		t.Fatal(err)
	}
	var steps []shellStep
	for _, b := range readmeSection(t, "Quickstart") {
		switch b[0] {
		case "sh":
			for _, s := range shellSteps(b[1]) {
				if strings.Contains(s.cmd, "make build") {
					continue // the test has built abe
				}
				steps = append(steps, s)
			}
		case "yaml":
			// The page shows the collection abe init writes: checked by
			// TestReadmeCollectionIsTheScaffold.
		default:
			t.Fatalf("an unexpected %q block in the Quickstart", b[0])
		}
	}
	project := filepath.Join(dir, "notes")
	t.Cleanup(func() { stopDev(t, project) })
	outs := shellRun(t, dir, []string{"DATABASE_URL=", "ABE_DATABASE_URL=", "ABE_AUTH_SECRET="}, "correct horse battery staple\n", freePort(t), steps)
	for i, s := range steps {
		checkStep(t, s, outs[i])
	}
}

// stopDev stops the abe dev a README block started in project, with
// Ctrl-C, and waits until its cluster is down.
func stopDev(t *testing.T, project string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(project, "abe-dev.pid"))
	if err != nil {
		return // it never started
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(project, ".abe", "pg")
	pm := postmasterPID(t, data)
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Errorf("stop abe dev: %v", err)
	}
	awaitGone(t, pm, data)
}

// TestReadmeCollectionIsTheScaffold: the collection the Quickstart shows
// is the one abe init writes.
func TestReadmeCollectionIsTheScaffold(t *testing.T) {
	var shown string
	for _, b := range readmeSection(t, "Quickstart") {
		if b[0] == "yaml" {
			shown = b[1]
		}
	}
	scaffold, err := os.ReadFile("scaffold/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	strip := func(s string) []string {
		var out []string
		for l := range strings.Lines(s) {
			l, _, _ = strings.Cut(l, "#")
			if strings.TrimSpace(l) != "" {
				out = append(out, strings.TrimRight(l, " \n"))
			}
		}
		return out
	}
	_, coll, _ := strings.Cut(string(scaffold), "\ncollections:")
	want, got := strip("collections:"+coll), strip(shown)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("README's collection:\n%s\nabe init writes:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReadmeTodoExample runs "The todo example, through curl" against
// the example served by abe dev, then the browser-console snippet in Node.
func TestReadmeTodoExample(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile("../../examples/todo/abe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "abe.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + pgtest.NewURL(t, nil), "ABE_AUTH_SECRET="}
	s := startBin(t, env, "dev", "--config", filepath.Join(dir, "abe.yaml"))
	port := strings.TrimPrefix(s.url, "http://127.0.0.1:")

	blocks := readmeSection(t, "The todo example, through curl")
	var steps []shellStep
	var js string
	for _, b := range blocks {
		switch b[0] {
		case "sh":
			steps = append(steps, shellSteps(strings.ReplaceAll(b[1], "127.0.0.1:8090", "127.0.0.1:"+port))...)
		case "js":
			js = b[1]
		}
	}
	if len(steps) < 10 || js == "" {
		t.Fatalf("found %d commands and js %q", len(steps), js)
	}
	steps = append(steps, shellStep{cmd: `echo "BOB=$BOB T=$T"`})
	outs := shellRun(t, dir, nil, "", freePort(t), steps)
	for i, st := range steps[:len(steps)-1] {
		checkStep(t, st, outs[i])
	}
	var bob, todo string
	if _, err := fmt.Sscanf(strings.TrimSpace(outs[len(outs)-1]), "BOB=%s T=%s", &bob, &todo); err != nil {
		t.Fatalf("%q: %v", outs[len(outs)-1], err)
	}

	// The snippet, in Node; then a change Bob may see.
	js = strings.ReplaceAll(js, "127.0.0.1:8090", "127.0.0.1:"+port)
	prelude := "const BOB = process.env.BOB;\nconsole.log = (v) => process.stdout.write(JSON.stringify(v) + \"\\n\");\n"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", "--experimental-websocket", "--no-warnings", "-e", prelude+js)
	node.Env = append(os.Environ(), "BOB="+bob)
	stdout, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Process.Kill(); node.Wait() }) //nolint:errcheck // cleanup
	lines := bufio.NewScanner(stdout)
	next := func(want string) map[string]any {
		for lines.Scan() {
			var m map[string]any
			if json.Unmarshal(lines.Bytes(), &m) == nil && m["type"] == want {
				return m
			}
		}
		t.Fatalf("the snippet printed no %s", want)
		return nil
	}
	for next("ack")["id"] != "open" {
	}
	code, body := doJSON(t, "PATCH", s.url+"/api/collections/todos/records/"+todo, bob, `{"done":false}`)
	if code != 200 {
		t.Fatalf("PATCH %d %s", code, body)
	}
	ev := next("event")
	if ev["op"] != "update" || ev["id"] != todo || ev["topic"] != "collection:todos" {
		t.Errorf("the snippet printed %v", ev)
	}
}

// doJSON sends a JSON body with a bearer token.
func doJSON(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(res.Body).WriteTo(&b)
	return res.StatusCode, b.String()
}
