package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The fanout's ceiling: a WebSocket server with nothing of abe in it,
// built on the same library and run as a process of its own on the same
// machine, that the same clients subscribe to. Told to, it writes one
// message, encoded once, to every socket, each from the socket's own
// writer goroutine (the plain Go way, using every core): no rules, no
// change log, no database. The physical cost of a fanout is a write
// system call per socket, and this is about all it does, so abe's
// latency and CPU per event are reported as ratios to its figures from
// the same run (issue 19).

// ceilingEnv names the variable that makes this program (or its test
// binary) serve the ceiling on the address it holds instead of running
// the bench.
const ceilingEnv = "ABE_BENCH_CEILING_LISTEN"

// serveCeilingFromEnv serves the ceiling and exits when the variable is
// set; it returns at once when it is not.
func serveCeilingFromEnv() {
	addr := os.Getenv(ceilingEnv)
	if addr == "" {
		return
	}
	if err := serveCeiling(addr); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

type ceilingServer struct {
	mu    sync.Mutex
	conns map[*ceilingConn]struct{}
}

type ceilingConn struct {
	ws   *websocket.Conn
	send chan []byte
}

func serveCeiling(addr string) error {
	c := &ceilingServer{conns: map[*ceilingConn]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		n := len(c.conns)
		c.mu.Unlock()
		// What node.waitConnections reads of abe.
		fmt.Fprintf(w, "abe_realtime_connections %d\n", n)
	})
	mux.HandleFunc("GET /api/realtime", c.accept)
	mux.HandleFunc("POST /broadcast", c.broadcast)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// accept answers the client's auth and subscribe with acks, as abe does,
// then holds the socket until the client closes it.
func (c *ceilingServer) accept(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx := context.Background()
	for range 2 {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var m struct{ ID string }
		if json.Unmarshal(data, &m) != nil {
			_ = ws.Close(websocket.StatusUnsupportedData, "not JSON") //nolint:errcheck // closing anyway
			return
		}
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ack","id":`+strconv.Quote(m.ID)+`}`)); err != nil {
			return
		}
	}
	cc := &ceilingConn{ws: ws, send: make(chan []byte, 64)}
	c.mu.Lock()
	c.conns[cc] = struct{}{}
	c.mu.Unlock()
	go func() {
		for msg := range cc.send {
			if ws.Write(ctx, websocket.MessageText, msg) != nil {
				return
			}
		}
	}()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			break
		}
	}
	c.mu.Lock()
	delete(c.conns, cc)
	c.mu.Unlock()
	close(cc.send)
}

// broadcast queues the request's body for every socket.
func (c *ceilingServer) broadcast(w http.ResponseWriter, r *http.Request) {
	msg, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for cc := range c.conns {
		select {
		case cc.send <- msg:
		default: // a socket that cannot keep up misses it; the bench counts it missing
		}
	}
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// startCeiling runs the ceiling server as a child process and waits
// until it answers.
func (l *lab) startCeiling(ctx context.Context) (*node, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	n := &node{name: "ceiling", url: "http://" + listen, logPath: filepath.Join(l.tmp, "ceiling.log"), done: make(chan error, 1)}
	logFile, err := os.Create(n.logPath)
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	defer logFile.Close()
	n.cmd = exec.Command(self)
	n.cmd.Env = append(childEnv(), ceilingEnv+"="+listen)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	n.cmd.SysProcAttr = dieWithParent()
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	l.nodes = append(l.nodes, n)
	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// ceilingWriter tells the ceiling to send an event shaped and sized like
// the one abe sends a member for the bench's create.
type ceilingWriter struct {
	url, project string
	client       *http.Client
	seq          int
}

func (w *ceilingWriter) create(ctx context.Context, i int) (*write, error) {
	w.seq++
	id := fmt.Sprintf("01900000-0000-7000-8000-%012d", w.seq)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	msg := fmt.Sprintf(`{"sub":"s","type":"event","topic":"collection:todos","op":"create","id":%q,"version":1,"seq":%d,`+
		`"record":{"id":%q,"version":1,"created_at":%q,"updated_at":%q,"project":%q,"title":"bench todo %d","done":false,"tags":null}}`,
		id, w.seq, id, now, now, w.project, i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"/broadcast", strings.NewReader(msg))
	if err != nil {
		return nil, err
	}
	wr := &write{id: id, sent: time.Now()}
	// No commit to wait for: the clock starts when the message is handed over.
	wr.committed = wr.sent
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ceiling broadcast: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return nil, fmt.Errorf("ceiling broadcast: %s", resp.Status)
	}
	wr.answered = time.Now()
	return wr, nil
}
