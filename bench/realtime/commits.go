package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// commits observes when writes commit. The change log's trigger notifies
// the channel abe_changes (payload: the collection) in every write's
// transaction, and Postgres delivers a notification to its listeners
// only once the transaction has committed: its arrival on a connection
// of the bench's own is the commit as seen from outside, late by the
// notification's trip.
type commits struct {
	conn    *pgx.Conn
	cancel  context.CancelFunc
	done    chan struct{}
	arrived chan struct{}

	mu sync.Mutex
	at []time.Time
	// err is why the listener stopped early.
	err error
}

func watchCommits(ctx context.Context, dbURL, collection string) (*commits, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("listen for commits: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN abe_changes"); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("listen for commits: %w", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &commits{conn: conn, cancel: cancel, done: make(chan struct{}), arrived: make(chan struct{}, 1)}
	go func() {
		defer close(c.done)
		for {
			n, err := conn.WaitForNotification(ctx)
			at := time.Now()
			if err != nil {
				if ctx.Err() == nil {
					c.mu.Lock()
					c.err = err
					c.mu.Unlock()
					select {
					case c.arrived <- struct{}{}:
					default:
					}
				}
				return
			}
			if n.Payload != collection {
				continue
			}
			c.mu.Lock()
			c.at = append(c.at, at)
			c.mu.Unlock()
			select {
			case c.arrived <- struct{}{}:
			default:
			}
		}
	}()
	return c, nil
}

// count is how many commits have been seen so far.
func (c *commits) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.at)
}

// nth waits up to timeout for the k-th commit (from 0) and returns when
// it was seen.
func (c *commits) nth(ctx context.Context, k int, timeout time.Duration) (time.Time, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if len(c.at) > k {
			at := c.at[k]
			c.mu.Unlock()
			return at, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return time.Time{}, fmt.Errorf("listen for commits: %w", err)
		}
		select {
		case <-c.arrived:
		case <-timer.C:
			return time.Time{}, fmt.Errorf("no notification of a commit within %s", timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

func (c *commits) stop() {
	c.cancel()
	<-c.done
	c.conn.Close(context.Background())
}
