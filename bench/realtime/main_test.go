package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/pg/pgtest"
	"github.com/abe-stack/abe/internal/redistest"
)

func TestMain(m *testing.M) {
	serveCeilingFromEnv() // the smoke test's ceiling is this binary
	pgtest.Main(m, redistest.StopShared)
}

// TestSmoke runs every scenario at a tiny size against real abe
// processes: every write reaches every subscriber, once. It measures
// nothing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs abe")
	}
	var out bytes.Buffer
	o := options{
		db: pgtest.ServerURL(t), redis: redistest.URL(t),
		hold: 20, fanout: 10, fanoutWrites: 5, singleWrites: 5, crossWrites: 5,
		users: 4, sourceIPs: 2, settle: 0, scenarios: strings.Split(scenarioList, ","), logLevel: "warn", out: &out,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if res.hold == nil || res.hold.n != o.hold {
		t.Errorf("hold: got %+v, want %d sockets", res.hold, o.hold)
	}
	want := map[string]int{"fanout": o.fanout * o.fanoutWrites, "fanout-ceiling": o.fanout * o.fanoutWrites, "single": o.singleWrites, "cross-redis": o.crossWrites, "cross-postgres": o.crossWrites}
	for _, d := range res.deliveries {
		if d.delivered != want[d.name] || d.expected != want[d.name] || d.duplicates != 0 || d.leaked != 0 || d.odd != "" {
			t.Errorf("%s: delivered %d of %d (want %d), %d duplicates, %d leaked fields, unexpected: %q",
				d.name, d.delivered, d.expected, want[d.name], d.duplicates, d.leaked, d.odd)
		}
		delete(want, d.name)
	}
	if len(want) > 0 {
		t.Errorf("scenarios that did not run: %v", want)
	}
	if t.Failed() {
		t.Log(out.String())
	}
}
