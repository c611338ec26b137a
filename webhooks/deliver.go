package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
)

// worker delivers DeliveryArgs.
type worker struct {
	river.WorkerDefaults[DeliveryArgs]
	s *Service
}

// hookOf finds the webhook of a delivery in the set in force.
func (s *Service) hookOf(a *DeliveryArgs) *hook {
	set := s.cur.Load()
	if set == nil {
		return nil
	}
	return set.byKey[a.Collection+"/"+a.Webhook]
}

// Timeout gives an attempt its webhook's request timeout, and time to
// record the outcome.
func (w *worker) Timeout(job *river.Job[DeliveryArgs]) time.Duration {
	d := time.Duration(w.s.cfg.Settings.Timeout)
	if h := w.s.hookOf(&job.Args); h != nil {
		d = h.timeout
	}
	return d + 5*time.Second
}

// NextRetry backs off exponentially (Config.Backoff).
func (w *worker) NextRetry(job *river.Job[DeliveryArgs]) time.Time {
	return time.Now().Add(w.s.cfg.Backoff(max(job.Attempt, 1)))
}

// Work sends one delivery, after every earlier one of its record.
func (w *worker) Work(ctx context.Context, job *river.Job[DeliveryArgs]) error {
	a := &job.Args
	h := w.s.hookOf(a)
	if h == nil {
		// Retried, not cancelled: in a rolling deploy the node may run an
		// older abe.yaml than the one that queued it. A webhook that is
		// gone for good ends discarded, where admins see it.
		return fmt.Errorf("collection %s declares no webhook %q on this node", a.Collection, a.Webhook)
	}
	if wait, err := w.s.earlier(ctx, job.ID, a.Key); err != nil {
		return err
	} else if wait > 0 {
		// Snoozing costs no attempt: the delivery waits its turn.
		return river.JobSnooze(wait)
	}
	body, err := w.s.cfg.Queue.Open(a.Sealed, sealLabel)
	if err != nil {
		return river.JobCancel(err)
	}
	if h.key == nil {
		return fmt.Errorf("environment variable %s (secret_env) is not set on this node; nothing is sent unsigned", h.secretEnv)
	}
	return w.s.send(ctx, h, a.Delivery, body)
}

// earlier reports how long a delivery must wait for an earlier one of the
// same key that is not finished (0: none). Job ids order the deliveries
// of a record as its writes: each write of a record holds the row's lock
// until it commits, so the next one inserts its job after. A discarded or
// cancelled earlier delivery no longer holds the later ones back.
func (s *Service) earlier(ctx context.Context, id int64, key string) (time.Duration, error) {
	p, err := s.cfg.Queue.EarlierPending(ctx, Kind, id, map[string]string{"key": key})
	if err != nil || p == nil {
		return 0, err
	}
	wait := s.cfg.OrderWait
	if d := time.Until(p.ScheduledAt); (p.State == "retryable" || p.State == "scheduled") && d > wait {
		// It is waiting out a backoff: wait as long, not in a busy loop;
		// at most a few minutes, in case it is retried by hand.
		wait = min(d, 5*time.Minute)
	}
	return wait, nil
}

// send POSTs body, signed, and reads at most the response limit of the
// answer: a receiver cannot hold a worker or its memory by answering
// without end.
func (s *Service) send(ctx context.Context, h *hook, delivery string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return river.JobCancel(fmt.Errorf("the webhook's URL: %w", err))
	}
	ts := s.cfg.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "abe-webhooks")
	req.Header.Set(HeaderID, delivery)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(h.key, delivery, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, query and all
		}
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("POST %s: no answer within %s", redact(h.url), h.timeout)
		}
		return fmt.Errorf("POST %s: %w", redact(h.url), err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	// The answer is read up to the limit so a short one frees the
	// connection for the next delivery; past it the connection is closed.
	var head bytes.Buffer
	_, readErr := io.Copy(&limitedWriter{w: &head, n: 512}, io.LimitReader(resp.Body, int64(s.cfg.Settings.ResponseLimit)))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 300 && c < 400:
		return fmt.Errorf("POST %s: answered %d, a redirect (to %q); webhooks follow no redirects: point the url at the final address", redact(h.url), c, redact(resp.Header.Get("Location")))
	default:
		msg := fmt.Sprintf("POST %s: answered %d", redact(h.url), c)
		if t := printable(head.Bytes()); t != "" {
			msg += ": " + t
		}
		if readErr != nil && ctx.Err() == nil {
			msg += " (reading the answer: " + readErr.Error() + ")"
		}
		return errors.New(msg)
	}
}

// redact drops the query and credentials of a URL for errors, which admins
// listing jobs see: a query may hold a token of the receiver's.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// printable is the start of an answer as one line of text, for errors.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// limitedWriter keeps the first n bytes and drops the rest.
type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
