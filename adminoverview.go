package abe

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/internal/jobs"
)

// GET /api/admin/overview: the state of this node at a glance, for the
// admin console's first page (docs/admin-api.md, docs/operations.md).

// sampledMinutes is how many whole minutes the overview reports.
const sampledMinutes = 60

// minuteCount is the HTTP traffic of one whole minute.
type minuteCount struct {
	At       time.Time `json:"at"`
	Requests uint64    `json:"requests"`
	Errors   uint64    `json:"errors"`
}

// httpSampler turns the running totals of the HTTP counters into counts
// per minute: at each minute's end it keeps the difference since the end
// of the one before. It reads the app's clock, and the overview closes the
// minutes that have passed before it answers, so a test's clock decides
// which minute a request falls in.
type httpSampler struct {
	totals func() (requests, errors uint64)
	now    func() time.Time

	mu sync.Mutex
	// minute is the minute in progress; base the totals at its start.
	minute           time.Time
	baseReq, baseErr uint64
	// done are the closed minutes, oldest first, at most sampledMinutes.
	done []minuteCount
}

func newHTTPSampler(totals func() (uint64, uint64), now func() time.Time) *httpSampler {
	s := &httpSampler{totals: totals, now: now, minute: now().Truncate(time.Minute)}
	s.baseReq, s.baseErr = totals()
	return s
}

// observe closes the minutes that have ended. Traffic since the last
// observation goes to the minute in progress then: the sampler's own
// goroutine observes at each minute's end, so that is the minute it came in.
func (s *httpSampler) observe() {
	now := s.now().Truncate(time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !now.After(s.minute) {
		return
	}
	req, errs := s.totals()
	s.done = append(s.done, minuteCount{At: s.minute.UTC(), Requests: req - s.baseReq, Errors: errs - s.baseErr})
	if len(s.done) > sampledMinutes {
		s.done = append(s.done[:0], s.done[len(s.done)-sampledMinutes:]...)
	}
	s.minute, s.baseReq, s.baseErr = now, req, errs
}

// minutes is the last sampledMinutes whole minutes, oldest first; a
// minute without traffic, or before the app started, counts zero.
func (s *httpSampler) minutes() []minuteCount {
	s.observe()
	s.mu.Lock()
	defer s.mu.Unlock()
	byMinute := make(map[time.Time]minuteCount, len(s.done))
	for _, m := range s.done {
		byMinute[m.At] = m
	}
	out := make([]minuteCount, sampledMinutes)
	first := s.minute.Add(-sampledMinutes * time.Minute).UTC()
	for i := range out {
		at := first.Add(time.Duration(i) * time.Minute)
		out[i] = cmp.Or(byMinute[at], minuteCount{At: at})
	}
	return out
}

// run observes at each minute's end until ctx ends. A clock that does
// not move (a test's) still gets a look every minute.
func (s *httpSampler) run(ctx context.Context) {
	for {
		now := s.now()
		wait := now.Truncate(time.Minute).Add(time.Minute).Sub(now)
		t := time.NewTimer(min(max(wait, time.Second), time.Minute))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.observe()
	}
}

// overview is the answer of GET /api/admin/overview.
type overview struct {
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	Ready     readiness `json:"ready"`
	HTTP      struct {
		Minutes []minuteCount `json:"minutes"`
	} `json:"http"`
	Realtime struct {
		Connections   int `json:"connections"`
		Subscriptions int `json:"subscriptions"`
	} `json:"realtime"`
	// Jobs is null when the queue cannot be counted (the database is
	// down: ready says so).
	Jobs *jobs.Counts `json:"jobs"`
}

// readiness is /readyz's answer as a list, in the order /readyz checks.
type readiness struct {
	// Status is ok, degraded (a dependency that is not required is down)
	// or down (a required one is: /readyz answers 503).
	Status string       `json:"status"`
	Checks []namedCheck `json:"checks"`
}

type namedCheck struct {
	Name string `json:"name"`
	check
}

func (a *App) now() time.Time {
	if a.opts.Now != nil {
		return a.opts.Now()
	}
	return time.Now()
}

func (a *App) handleOverview(w http.ResponseWriter, r *http.Request) {
	var o overview
	o.Version, o.StartedAt = cmp.Or(a.opts.Version, "dev"), a.started.UTC()
	deps, results := a.checkDependencies(r.Context())
	o.Ready.Status = "ok"
	for i, d := range deps {
		o.Ready.Checks = append(o.Ready.Checks, namedCheck{Name: d.name, check: results[i]})
		switch {
		case results[i].Status == "up":
		case d.required:
			o.Ready.Status = "down"
		case o.Ready.Status == "ok":
			o.Ready.Status = "degraded"
		}
	}
	o.HTTP.Minutes = a.sampler.minutes()
	st := a.hub.Stats()
	o.Realtime.Connections, o.Realtime.Subscriptions = st.Connections, st.Subscriptions
	// Within the checks' bound: a database that hangs shows as down in
	// ready, not as an overview that never answers.
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if c, err := a.queue.Counts(ctx, a.now().Add(-time.Hour)); err != nil {
		a.log.Warn("overview: counting jobs failed", slog.String("error", err.Error()))
	} else {
		o.Jobs = &c
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, o)
}
