package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// sockets are WebSocket clients of one node, opened by this process.
type sockets struct {
	url  string // ws://host:port/api/realtime
	http *http.Client
	list []*socket
	// events counts the events every socket has received so far.
	events atomic.Int64
	// arrived is signalled after events grows, without blocking.
	arrived chan struct{}
	// odd counts what a socket received or suffered that the bench did
	// not ask for (an error message, a close by the server); first is
	// the first of them, for the report.
	odd   atomic.Int64
	first atomic.Pointer[string]
}

// socket is one client.
type socket struct {
	ws *websocket.Conn
	// got is written by the socket's reader only, and read once the
	// reader has ended (done).
	got     []arrival
	done    chan struct{}
	closing atomic.Bool
}

// arrival is a message as it arrived: the time is taken as soon as the
// frame has been read, before anything looks at it.
type arrival struct {
	at   time.Time
	data []byte
}

// newSockets prepares clients of the node at base. With several source
// addresses the sockets take turns among 127.0.0.1, .2, ..., each with a
// range of ephemeral ports of its own.
func newSockets(base string, sourceIPs int) *sockets {
	var next atomic.Uint32
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 30 * time.Second}
		if sourceIPs > 1 {
			k := next.Add(1) % uint32(sourceIPs)
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+k))}
			d.Control = bindNoPort
		}
		return d.DialContext(ctx, network, addr)
	}
	return &sockets{
		url:     "ws" + strings.TrimPrefix(base, "http") + "/api/realtime",
		http:    &http.Client{Transport: &http.Transport{DialContext: dial}},
		arrived: make(chan struct{}, 1),
	}
}

// note records something unexpected.
func (s *sockets) note(what string) {
	if s.odd.Add(1) == 1 {
		s.first.Store(&what)
	}
}

// unexpected describes what went wrong on the sockets, or is "".
func (s *sockets) unexpected() string {
	n := s.odd.Load()
	if n == 0 {
		return ""
	}
	first := ""
	if p := s.first.Load(); p != nil {
		first = *p
	}
	return fmt.Sprintf("%d unexpected messages or closes, the first: %s", n, first)
}

// open adds n sockets, each authenticated with token(i) and subscribed
// to topic, several at a time. It returns once every socket has its
// subscription acknowledged.
func (s *sockets) open(ctx context.Context, n int, token func(i int) string, topic string) error {
	const parallel = 64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opened := make([]*socket, n)
	errs := make([]error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for i := range work {
				if opened[i], errs[i] = s.dial(ctx, token(i), topic); errs[i] != nil {
					cancel()
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	for _, sk := range opened {
		if sk != nil {
			s.list = append(s.list, sk)
		}
	}
	var first error
	failed := 0
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if first != nil {
		return fmt.Errorf("%d of %d sockets failed to open, the first: %w", failed, n, first)
	}
	return ctx.Err()
}

// dial opens one socket: it sends the token and the subscription at once
// (the server handles a socket's messages in order) and waits for both
// acknowledgements before its reader takes over.
func (s *sockets) dial(ctx context.Context, token, topic string) (*socket, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{HTTPClient: s.http})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.url, err)
	}
	fail := func(err error) (*socket, error) {
		_ = ws.CloseNow() //nolint:errcheck // the error at hand says more
		return nil, err
	}
	msgs := []map[string]string{
		{"type": "auth", "id": "a", "token": token},
		{"type": "subscribe", "id": "s", "topic": topic},
	}
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			return fail(err)
		}
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			return fail(fmt.Errorf("send %s: %w", m["type"], err))
		}
	}
	for _, m := range msgs {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return fail(fmt.Errorf("wait for the ack of %s: %w", m["type"], err))
		}
		var answer struct{ Type, ID string }
		if err := json.Unmarshal(data, &answer); err != nil || answer.Type != "ack" || answer.ID != m["id"] {
			return fail(fmt.Errorf("%s answered with %s", m["type"], data))
		}
	}
	sk := &socket{ws: ws, done: make(chan struct{})}
	go s.read(sk)
	return sk, nil
}

// read receives until the socket closes. Read gets a context without a
// deadline, which costs coder/websocket no timer per message; closing
// the socket ends it.
func (s *sockets) read(sk *socket) {
	defer close(sk.done)
	for {
		_, data, err := sk.ws.Read(context.Background())
		at := time.Now()
		if err != nil {
			if !sk.closing.Load() {
				s.note(fmt.Sprintf("the server closed a socket: %v", err))
			}
			return
		}
		if bytes.Contains(data, []byte(`"type":"event"`)) {
			sk.got = append(sk.got, arrival{at: at, data: data})
			s.events.Add(1)
			select {
			case s.arrived <- struct{}{}:
			default:
			}
			continue
		}
		s.note("message " + string(data))
	}
}

// closeFrom closes the sockets from the i-th on, without a closing
// handshake (the server sees the connection end), and waits for their
// readers.
func (s *sockets) closeFrom(i int) []*socket {
	gone := s.list[i:]
	s.list = s.list[:i:i]
	for _, sk := range gone {
		sk.closing.Store(true)
		_ = sk.ws.CloseNow() //nolint:errcheck // closing is all that is wanted
	}
	for _, sk := range gone {
		<-sk.done
	}
	return gone
}

// closeAll closes every socket and the idle connections of the client.
func (s *sockets) closeAll() []*socket {
	gone := s.closeFrom(0)
	s.http.CloseIdleConnections()
	return gone
}

// waitEvents waits until the sockets have received want events in all,
// or timeout passes; it reports whether they have.
func (s *sockets) waitEvents(ctx context.Context, want int64, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for s.events.Load() < want {
		select {
		case <-s.arrived:
		case <-timer.C:
			return s.events.Load() >= want
		case <-ctx.Done():
			return false
		}
	}
	return true
}
