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
type outbox struct {
	mailer mail.Mailer
	log    *slog.Logger
	queue  chan *mail.Message
	// pending counts messages queued or being sent, so flush can wait.
	pending sync.WaitGroup
}

func newOutbox(m mail.Mailer, log *slog.Logger) *outbox {
	return &outbox{mailer: m, log: log, queue: make(chan *mail.Message, 1000)}
}

func (o *outbox) enqueue(m *mail.Message) {
	o.pending.Add(1)
	select {
	case o.queue <- m:
	default:
		o.pending.Done()
		o.log.Error("mail queue full; message dropped", slog.String("subject", m.Subject))
	}
}

// flush waits until every queued message has been handed to the mailer.
func (o *outbox) flush() { o.pending.Wait() }

// run sends until ctx ends, then sends what is queued, for at most 10 s.
func (o *outbox) run(ctx context.Context) {
	for {
		select {
		case m := <-o.queue:
			o.send(ctx, m)
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				select {
				case m := <-o.queue:
					o.send(drain, m)
				default:
					return
				}
			}
		}
	}
}

func (o *outbox) send(ctx context.Context, m *mail.Message) {
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := o.mailer.Send(sendCtx, m)
		cancel()
		if err == nil {
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			o.log.Error("mail not sent", slog.String("subject", m.Subject), slog.String("error", err.Error()))
			break
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff *= 2
	}
	o.pending.Done()
}
