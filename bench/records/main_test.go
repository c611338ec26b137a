package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/pg/pgtest"
)

func TestMain(m *testing.M) {
	// The bench starts its servers by running its own executable, which
	// under `go test` is this test binary.
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "serve-") {
		main()
		return
	}
	pgtest.Main(m)
}

// TestSmoke runs the whole bench at a tiny size: every operation reaches
// both servers and succeeds. It measures nothing.
func TestSmoke(t *testing.T) {
	var out bytes.Buffer
	o := options{
		db: pgtest.ServerURL(t), conns: 4, users: 8, perUser: 5, rounds: 1,
		duration: 200 * time.Millisecond, ops: strings.Split(opList, ","), logLevel: "warn", out: &out,
	}
	res, err := run(context.Background(), o)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, op := range o.ops {
		if !strings.Contains(out.String(), "\n| "+op+" | ") {
			t.Errorf("the report has no row for %s:\n%s", op, out.String())
		}
		for _, srv := range []string{"abe", "ceiling"} {
			ps := res[op][srv]
			if len(ps) != 1 || ps[0].ok == 0 || ps[0].errs != 0 {
				t.Errorf("%s on %s: want one phase with successes and no errors, got %+v\n%s", op, srv, ps, out.String())
				continue
			}
			// abe is measured with its rate limiter in the path; the
			// ceiling has none.
			if ps[0].limited != (srv == "abe") {
				t.Errorf("%s on %s: answers with RateLimit-Limit: %v", op, srv, ps[0].limited)
			}
		}
	}
}
