// Package mail sends email through an ordered list of providers: the
// console (development), SMTP. When one fails the next is tried. It knows
// nothing of what the mail says; callers render their own messages.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Message is one email.
type Message struct {
	To      []string
	Subject string
	Text    string
	// HTML is an optional alternative to Text.
	HTML string
}

// Mailer sends messages.
type Mailer interface {
	Send(ctx context.Context, m *Message) error
}

// Config lists the providers, tried in order.
type Config struct {
	From      string
	Providers []Provider
}

// Provider is one way to send mail.
type Provider struct {
	Type     string // console or smtp
	Host     string
	Port     int
	Username string
	Password string
	TLS      string // starttls, tls or none
	// TLSConfig overrides the TLS settings, e.g. to trust a private CA.
	TLSConfig *tls.Config
}

// New builds the mailer cfg describes. Console output goes to console.
func New(cfg Config, console io.Writer) (Mailer, error) {
	var list Failover
	for i, p := range cfg.Providers {
		switch p.Type {
		case "console":
			list = append(list, &Console{W: console, From: cfg.From})
		case "smtp":
			s, err := NewSMTP(cfg.From, p)
			if err != nil {
				return nil, fmt.Errorf("mail provider %d (smtp): %w", i, err)
			}
			list = append(list, s)
		default:
			return nil, fmt.Errorf("mail provider %d: unknown type %q", i, p.Type)
		}
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return list, nil
}

// Failover tries each mailer in turn until one sends the message.
type Failover []Mailer

var _ Mailer = Failover(nil)

// Send tries every mailer; it fails only when all of them do.
func (f Failover) Send(ctx context.Context, m *Message) error {
	var errs []error
	for i, mailer := range f {
		err := mailer.Send(ctx, m)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("provider %d: %w", i, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("send mail: every provider failed: %w", errors.Join(errs...))
}

// Console prints messages instead of sending them, for development.
type Console struct {
	W    io.Writer
	From string

	mu sync.Mutex
}

var _ Mailer = (*Console)(nil)

// Send prints m.
func (c *Console) Send(_ context.Context, m *Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := fmt.Fprintf(c.W, "----- mail (console) %s -----\nFrom: %s\nTo: %s\nSubject: %s\n\n%s\n-----\n",
		time.Now().UTC().Format(time.RFC3339), c.From, strings.Join(m.To, ", "), m.Subject, strings.TrimSpace(m.Text))
	return err
}
