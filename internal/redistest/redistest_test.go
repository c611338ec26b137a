package redistest

import (
	"context"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := New(t)
	key := "redistest:" + t.Name()
	if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Del(context.Background(), key) })
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("get %q: %q %v", key, got, err)
	}
	if first, second := URL(t), URL(t); first != second {
		t.Errorf("URL changes between calls (%s, %s): the server is not shared", first, second)
	}
}

// TestStartStop checks that a dedicated server answers until it is stopped,
// and that stopping twice (by the test, then by cleanup) is harmless.
func TestStartStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, stop := Start(t)
	if url == URL(t) {
		t.Fatalf("Start returned the shared server %s", url)
	}
	if err := ping(ctx, url); err != nil {
		t.Fatalf("a started server does not answer: %v", err)
	}
	stop()
	if err := ping(ctx, url); err == nil {
		t.Fatal("the server still answers after stop")
	}
	stop()
}
