package auth

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/abe-stack/abe/internal/mail"
)

// link puts a token into a link template.
func link(template, token string) string {
	return strings.ReplaceAll(template, "{token}", url.QueryEscape(token))
}

// outbox sends mail in the background, so an answer never waits for (or
// reveals through its timing) a mail server. Messages are retried a few
// times; a full queue drops the message and logs it.
//
// It also runs steps whose work must not show in an answer: later queues
// a function that makes the message in the background (or finds there is
// none to send), so a handler does the same work whatever it finds.
type outbox struct {
	mailer mail.Mailer
	log    *slog.Logger
	queue  chan outgoing
	// pending counts messages queued or being sent, so flush can wait.
	pending sync.WaitGroup
}

// outgoing is a message, or a step that makes one.
type outgoing struct {
	msg *mail.Message
	// step, when set, runs in the background and makes the message; a nil
	// message sends nothing.
	step func(ctx context.Context) (*mail.Message, error)
	// what names the step in logs.
	what string
}

// stepTimeout bounds one background step of later.
const stepTimeout = 30 * time.Second

func newOutbox(m mail.Mailer, log *slog.Logger) *outbox {
	return &outbox{mailer: m, log: log, queue: make(chan outgoing, 1000)}
}

func (o *outbox) enqueue(m *mail.Message) { o.put(outgoing{msg: m, what: m.Subject}) }

// later queues step, to run in the background; what it returns is sent.
func (o *outbox) later(what string, step func(ctx context.Context) (*mail.Message, error)) {
	o.put(outgoing{step: step, what: what})
}

func (o *outbox) put(g outgoing) {
	o.pending.Add(1)
	select {
	case o.queue <- g:
	default:
		o.pending.Done()
		o.log.Error("mail queue full; message dropped", slog.String("subject", g.what))
	}
}

// flush waits until every queued message has been handed to the mailer.
func (o *outbox) flush() { o.pending.Wait() }

// run sends until ctx ends, then sends what is queued, for at most 10 s.
func (o *outbox) run(ctx context.Context) {
	for {
		select {
		case g := <-o.queue:
			o.process(ctx, g)
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				select {
				case g := <-o.queue:
					o.process(drain, g)
				default:
					return
				}
			}
		}
	}
}

// process makes g's message when g is a step, and sends it.
func (o *outbox) process(ctx context.Context, g outgoing) {
	defer o.pending.Done()
	m := g.msg
	if g.step != nil {
		stepCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
		var err error
		m, err = g.step(stepCtx)
		cancel()
		if err != nil {
			o.log.Error("mail not made", slog.String("step", g.what), slog.String("error", err.Error()))
			return
		}
	}
	if m != nil {
		o.send(ctx, m)
	}
}

func (o *outbox) send(ctx context.Context, m *mail.Message) {
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := o.mailer.Send(sendCtx, m)
		cancel()
		if err == nil {
			return
		}
		if attempt == 3 || ctx.Err() != nil {
			o.log.Error("mail not sent", slog.String("subject", m.Subject), slog.String("error", err.Error()))
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff *= 2
	}
}
