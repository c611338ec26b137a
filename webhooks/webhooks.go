package webhooks

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/abe-stack/abe/engine"
	"github.com/abe-stack/abe/internal/jobs"
	"github.com/abe-stack/abe/rules"
	"github.com/abe-stack/abe/schema"
)

// Kind is the job kind of a delivery.
const Kind = "webhook.deliver"

// sealLabel binds a delivery's sealed body to what it is.
const sealLabel = "abe webhook"

// Config is what the service needs.
type Config struct {
	Queue    *jobs.Queue
	Settings schema.Webhooks
	Logger   *slog.Logger
	// Backoff is the wait after the attempt-th failed attempt (from 1);
	// nil is Settings.Backoff doubling per attempt, at most
	// schema.WebhookBackoffMax, with a tenth of jitter. Tests wait less.
	Backoff func(attempt int) time.Duration
	// OrderWait is how long a delivery waits, at most, before it looks
	// again at an earlier undelivered one of its record; default 1s.
	OrderWait time.Duration
	// Now replaces the clock of event timestamps and signatures.
	Now func() time.Time
}

// Service enqueues the events of record writes and delivers them.
type Service struct {
	cfg    Config
	log    *slog.Logger
	guard  *Guard
	client *http.Client
	cur    atomic.Pointer[Set]
}

// New prepares the service and registers its worker with the queue, which
// must not have started.
func New(cfg Config) (*Service, error) {
	g, err := NewGuard(cfg.Settings.Allow)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)), guard: g, client: g.newClient()}
	if s.cfg.Now == nil {
		s.cfg.Now = time.Now
	}
	s.cfg.OrderWait = cmp.Or(s.cfg.OrderWait, time.Second)
	s.cfg.Settings.MaxAttempts = cmp.Or(s.cfg.Settings.MaxAttempts, schema.DefaultWebhookAttempts)
	s.cfg.Settings.ResponseLimit = cmp.Or(s.cfg.Settings.ResponseLimit, schema.DefaultWebhookResponseLimit)
	s.cfg.Settings.Timeout = cmp.Or(s.cfg.Settings.Timeout, schema.Duration(schema.DefaultWebhookTimeout))
	s.cfg.Settings.Backoff = cmp.Or(s.cfg.Settings.Backoff, schema.Duration(schema.DefaultWebhookBackoff))
	if s.cfg.Backoff == nil {
		s.cfg.Backoff = s.backoff
	}
	if err := jobs.AddWorker(cfg.Queue, river.Worker[DeliveryArgs](&worker{s: s})); err != nil {
		return nil, err
	}
	return s, nil
}

// backoff doubles Settings.Backoff per failed attempt, at most
// schema.WebhookBackoffMax, give or take a tenth so that deliveries that
// failed together do not all come back together.
func (s *Service) backoff(attempt int) time.Duration {
	d := time.Duration(s.cfg.Settings.Backoff)
	for i := 1; i < attempt && d < schema.WebhookBackoffMax; i++ {
		d *= 2
	}
	d = min(d, schema.WebhookBackoffMax)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

// Close lets go of the connections kept open to receivers; call it once
// the queue stopped.
func (s *Service) Close() { s.client.CloseIdleConnections() }

// Use puts set in force: events of later writes go to its webhooks, and
// queued deliveries find their webhook (URL, secret, timeout) in it.
func (s *Service) Use(set *Set) { s.cur.Store(set) }

// Set is the webhooks of one configuration, compiled.
type Set struct {
	engine *engine.Engine
	rules  *rules.Engine
	byColl map[string][]*hook
	byKey  map[string]*hook
}

type hook struct {
	collection, name, url string
	events                []string
	filter                *rules.Filter
	// principal is who the record is shaped for; nil is the system view.
	principal *rules.Principal
	// hidden is what the system view leaves out: fields with a read rule.
	hidden    []string
	secretEnv string
	key       []byte // nil when the secret was not required and is not set
	timeout   time.Duration
}

// CompileOpts tune Compile.
type CompileOpts struct {
	// LookupEnv reads the secrets; nil is os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// RequireSecrets refuses a webhook whose secret is not set: a node
	// that delivers needs them; one that only writes (CLI commands) not.
	RequireSecrets bool
}

// Compile reads the webhooks of cfg, whose rules r compiled (filters
// included) and whose records e serves.
func Compile(cfg *schema.Config, r *rules.Engine, e *engine.Engine, opts *CompileOpts) (*Set, error) {
	var o CompileOpts
	if opts != nil {
		o = *opts
	}
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	set := &Set{engine: e, rules: r, byColl: map[string][]*hook{}, byKey: map[string]*hook{}}
	var errs []error
	for _, c := range cfg.Collections {
		var hidden []string
		for _, f := range c.Fields {
			if f.Rules.Read != nil {
				hidden = append(hidden, f.Name)
			}
		}
		for _, w := range c.Webhooks {
			h := &hook{collection: c.Name, name: w.Name, url: w.URL, events: w.Events, hidden: hidden, secretEnv: w.SecretEnv,
				timeout: cmp.Or(time.Duration(w.Timeout), time.Duration(cfg.Webhooks.Timeout), schema.DefaultWebhookTimeout)}
			where := fmt.Sprintf("collections.%s.webhooks %s", c.Name, w.Name)
			if w.Filter != nil {
				f, err := r.Filter(c.Name, w.Filter.Expr)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: filter: %w", where, err))
					continue
				}
				h.filter = f
			}
			if p := w.Principal; p != nil {
				h.principal = &rules.Principal{ID: p.ID, Email: p.Email, Roles: slices.Clone(p.Roles), Verified: true, Permissions: permissions(cfg, p.Roles)}
			}
			secret, ok := lookup(w.SecretEnv)
			switch {
			case ok && secret != "":
				key, err := decodeSecret(secret)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: the secret in %s: %w", where, w.SecretEnv, err))
					continue
				}
				h.key = key
			case o.RequireSecrets:
				errs = append(errs, fmt.Errorf("%s: environment variable %s (its secret_env) is not set; set it to the signing secret, like `export %s=$(openssl rand -base64 32)`", where, w.SecretEnv, w.SecretEnv))
				continue
			}
			set.byColl[c.Name] = append(set.byColl[c.Name], h)
			set.byKey[c.Name+"/"+w.Name] = h
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("webhooks: %w", errors.Join(errs...))
	}
	return set, nil
}

// permissions are those the roles grant, in cfg.
func permissions(cfg *schema.Config, roles []string) []string {
	var out []string
	for _, r := range cfg.Roles {
		if slices.Contains(roles, r.Name) {
			for _, p := range r.Permissions {
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// Len is how many webhooks the set has.
func (set *Set) Len() int { return len(set.byKey) }

// DeliveryArgs is a delivery job: one event for one webhook. The body is
// sealed (it holds the record); the rest says what the job is, for admins.
type DeliveryArgs struct {
	Webhook    string `json:"webhook"`
	Collection string `json:"collection"`
	Op         string `json:"op"`
	ID         string `json:"id"`
	Version    int64  `json:"version"`
	// Delivery is the webhook-id header: the same on every attempt, so a
	// receiver can drop one it already handled.
	Delivery string `json:"delivery"`
	// Key orders deliveries: one of a webhook and record waits for the
	// earlier ones (lower job ids) of the same key.
	Key    string `json:"key"`
	Sealed []byte `json:"sealed"`
}

// Kind implements river.JobArgs.
func (DeliveryArgs) Kind() string { return Kind }

// Event is the body of a delivery.
type Event struct {
	// Type is "<collection>.<op>", like todos.update.
	Type string `json:"type"`
	// Delivery repeats the webhook-id header.
	Delivery string `json:"delivery"`
	Webhook  string `json:"webhook"`
	// Timestamp is when the record was written (RFC 3339, UTC); the
	// webhook-timestamp header is when the request was sent.
	Timestamp  time.Time `json:"timestamp"`
	Collection string    `json:"collection"`
	Op         string    `json:"op"`
	ID         string    `json:"id"`
	Version    int64     `json:"version"`
	// Record is the record after the write (before it, for a delete), as
	// the webhook's principal may read it.
	Record json.RawMessage `json:"record"`
}

// Written is the engine hook (engine.Hooks.OnWritten): for every webhook
// of the collection that takes the event and whose filter matches, it
// queues a delivery in the write's transaction, so the delivery exists if
// and only if the write commits.
func (s *Service) Written(ctx context.Context, ev *engine.WriteEvent) error {
	set := s.cur.Load()
	if set == nil {
		return nil
	}
	hooks := set.byColl[ev.Collection]
	if len(hooks) == 0 {
		return nil
	}
	rec := ev.After
	if ev.Op == engine.OpDelete {
		rec = ev.Before
	}
	if rec == nil {
		return nil
	}
	now := s.cfg.Now()
	req := rules.Request{Method: "WEBHOOK", Time: now}
	// get() and exists() in a filter or a principal's rules read through
	// the pool: they see what is committed, not this transaction's writes.
	loads := set.engine.Loads(ctx)
	var params []river.InsertManyParams
	for _, h := range hooks {
		if !slices.Contains(h.events, ev.Op) {
			continue
		}
		if h.filter != nil {
			ok, err := h.filter.Match(&rules.Input{Auth: h.principal, Record: rec, Request: req}, loads)
			if err != nil {
				// As for a list, a filter that fails on a record does not
				// match it; the write goes on.
				s.log.WarnContext(ctx, "webhook filter failed", slog.String("webhook", h.collection+"/"+h.name), slog.String("error", err.Error()))
				continue
			}
			if !ok {
				continue
			}
		}
		hidden := h.hidden
		if h.principal != nil {
			ok, hid, err := set.engine.Listed(ctx, ev.Collection, engine.Reader{Principal: h.principal, Request: req}, rec, loads)
			if err != nil {
				return fmt.Errorf("webhook %s/%s: read rules: %w", h.collection, h.name, err)
			}
			if !ok {
				continue // its principal may not read the record: nothing to tell
			}
			hidden = hid
		}
		args, err := s.args(set, h, ev, rec, hidden, now)
		if err != nil {
			return err
		}
		params = append(params, river.InsertManyParams{Args: args, InsertOpts: &river.InsertOpts{MaxAttempts: s.cfg.Settings.MaxAttempts}})
	}
	if len(params) == 0 {
		return nil
	}
	if _, err := s.cfg.Queue.Client().InsertManyTx(ctx, ev.Tx, params); err != nil {
		return fmt.Errorf("queue webhook deliveries of %s %s: %w", ev.Collection, ev.ID, err)
	}
	return nil
}

func (s *Service) args(set *Set, h *hook, ev *engine.WriteEvent, rec engine.Record, hidden []string, now time.Time) (DeliveryArgs, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return DeliveryArgs{}, fmt.Errorf("webhook delivery id: %w", err)
	}
	var buf bytes.Buffer
	if err := set.engine.AppendRecord(&buf, ev.Collection, rec, hidden); err != nil {
		return DeliveryArgs{}, fmt.Errorf("webhook %s/%s: encode the record: %w", h.collection, h.name, err)
	}
	delivery := "msg_" + id.String()
	body, err := json.Marshal(Event{Type: ev.Collection + "." + ev.Op, Delivery: delivery, Webhook: h.name, Timestamp: now.UTC(),
		Collection: ev.Collection, Op: ev.Op, ID: ev.ID, Version: ev.Version, Record: buf.Bytes()})
	if err != nil {
		return DeliveryArgs{}, fmt.Errorf("webhook %s/%s: encode the event: %w", h.collection, h.name, err)
	}
	return DeliveryArgs{Webhook: h.name, Collection: ev.Collection, Op: ev.Op, ID: ev.ID, Version: ev.Version, Delivery: delivery,
		Key: h.collection + "/" + h.name + "/" + ev.ID, Sealed: s.cfg.Queue.Seal(body, sealLabel)}, nil
}
