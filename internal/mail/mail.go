// Package mail sends email through an ordered list of providers: the
// console (development), SMTP, and the HTTP APIs of SendGrid, Mailgun and
// Amazon SES. When one fails the next is tried. It knows nothing of what
// the mail says; callers render their own messages.
package mail

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// Provider is one way to send mail. Which fields count depends on Type.
type Provider struct {
	// Type is console, smtp, sendgrid, mailgun or ses.
	Type string

	// SMTP.
	Host     string
	Port     int
	Username string
	Password string
	TLS      string // starttls, tls or none
	// TLSConfig overrides the TLS settings, e.g. to trust a private CA.
	TLSConfig *tls.Config

	// APIKey authenticates to SendGrid and Mailgun.
	APIKey string
	// Domain is the Mailgun sending domain.
	Domain string
	// Region is Mailgun's us or eu, or the AWS region of SES.
	Region string
	// Endpoint replaces the API's base URL (scheme and host, optionally a
	// path prefix): an EU endpoint, a gateway, a test server.
	Endpoint string
	// AccessKeyID and SecretAccessKey sign SES requests.
	AccessKeyID     string
	SecretAccessKey string

	// Timeout bounds one attempt of a network provider. Default 15s.
	Timeout time.Duration
	// HTTPClient, when set, sends the HTTP providers' requests; its
	// Timeout then wins over Timeout.
	HTTPClient *http.Client
}

// DefaultTimeout bounds one attempt of a network provider.
const DefaultTimeout = 15 * time.Second

func (p Provider) timeout() time.Duration { return cmp.Or(p.Timeout, DefaultTimeout) }

func (p Provider) httpClient() *http.Client {
	if p.HTTPClient != nil {
		return p.HTTPClient
	}
	return &http.Client{
		Timeout: p.timeout(),
		// A redirect would turn the POST into a GET that may well answer
		// 200: take a 3xx as the failure it is instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// New builds the mailer cfg describes. Console output goes to console.
func New(cfg Config, console io.Writer) (Mailer, error) {
	var list Failover
	for i, p := range cfg.Providers {
		var m Mailer
		var err error
		switch p.Type {
		case "console":
			m = &Console{W: console, From: cfg.From}
		case "smtp":
			m, err = NewSMTP(cfg.From, p)
		case "sendgrid":
			m, err = NewSendGrid(cfg.From, p)
		case "mailgun":
			m, err = NewMailgun(cfg.From, p)
		case "ses":
			m, err = NewSES(cfg.From, p)
		default:
			return nil, fmt.Errorf("mail provider %d: unknown type %q", i, p.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("mail provider %d (%s): %w", i, p.Type, err)
		}
		list = append(list, m)
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
