package realtime

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestWatchWritesCutsABlockedWrite: a client that stops reading fills
// its TCP window and blocks the server's write; with no deadline on the
// write (writeAll), the hub's clock must cut the socket, and must leave
// one whose writes go through alone.
func TestWatchWritesCutsABlockedWrite(t *testing.T) {
	t.Parallel()
	accepted := make(chan *websocket.Conn, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		accepted <- ws
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	dial := func(readBuffer int) *websocket.Conn {
		t.Helper()
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok && readBuffer > 0 {
				tc.SetReadBuffer(readBuffer) //nolint:errcheck // best effort
			}
			return c, err
		}}
		ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() }) //nolint:errcheck // cleanup
		return ws
	}
	h := &Hub{conns: map[*conn]struct{}{}, drained: make(chan struct{}), metrics: NewMetrics(nil), writeTick: 5 * time.Millisecond, writeTimeout: 50 * time.Millisecond}
	newConn := func(ws *websocket.Conn) *conn {
		c := &conn{h: h, ws: ws, closed: make(chan struct{}), done: make(chan struct{})}
		h.conns[c] = struct{}{}
		return c
	}
	dial(1024) // never reads
	stuck := newConn(<-accepted)
	reader := dial(0)
	ok := newConn(<-accepted)
	var got atomic.Int64
	go func() {
		for {
			if _, _, err := reader.Read(context.Background()); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.watchWrites(ctx)

	failed := make(chan error, 1)
	go func() {
		big := []byte(`{"x":"` + strings.Repeat("x", 1<<20) + `"}`)
		for {
			if err := stuck.writeAll([]outMsg{{data: big}}); err != nil {
				failed <- err
				return
			}
		}
	}()
	// The reading socket's writes go through meanwhile, well past the limit.
	for i := range 20 {
		if err := ok.writeAll([]outMsg{{data: []byte(`{"n":1}`)}}); err != nil {
			t.Fatalf("write %d to a reading socket: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond) // spread the writes over more than the limit
	}
	select {
	case err := <-failed:
		t.Logf("the blocked write ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked write was never cut")
	}
	if stuck.closeCode != statusTooSlow {
		t.Errorf("closed with %v, want too slow", stuck.closeCode)
	}
	select {
	case <-ok.closed:
		t.Error("the socket that reads was closed too")
	default:
	}
	if h.slow.Load() != 1 {
		t.Errorf("slow disconnects %d, want 1", h.slow.Load())
	}
	for deadline := time.Now().Add(10 * time.Second); got.Load() < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("the reading socket got %d of 20 messages", got.Load())
		}
		time.Sleep(time.Millisecond) // polling the reader, a goroutine of its own
	}
}
