package mail

import (
	"context"
	"fmt"

	gomail "github.com/wneessen/go-mail"
)

// SMTP sends mail through an SMTP server.
type SMTP struct {
	from string
	host string
	opts []gomail.Option
}

var _ Mailer = (*SMTP)(nil)

// NewSMTP configures a client for p; nothing connects until Send.
func NewSMTP(from string, p Provider) (*SMTP, error) {
	opts := []gomail.Option{gomail.WithPort(p.Port), gomail.WithTimeout(p.timeout())}
	switch p.TLS {
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if p.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(p.TLSConfig))
	}
	if p.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(p.Username), gomail.WithPassword(p.Password))
	}
	// Check the options now, so a bad provider fails at start-up.
	if _, err := gomail.NewClient(p.Host, opts...); err != nil {
		return nil, err
	}
	return &SMTP{from: from, host: p.Host, opts: opts}, nil
}

// Send delivers m over a new connection.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("smtp: from: %w", err)
	}
	if err := msg.To(m.To...); err != nil {
		return fmt.Errorf("smtp: to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	// A client holds one connection's state, so each send has its own.
	client, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return nil
}
