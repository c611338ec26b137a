package mail

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/mail/smtptest"
)

func msg() *Message {
	return &Message{To: []string{"ann@example.test"}, Subject: "Verify your email", Text: "Open https://x.test/v?token=abc", HTML: "<p>Open <a href=\"https://x.test/v?token=abc\">this link</a></p>"}
}

func TestSMTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts *smtptest.Options
		tls  string
		user string
	}{
		{"starttls with auth", &smtptest.Options{Username: "abe", Password: "s3cret"}, "starttls", "abe"},
		{"plain, no auth", nil, "none", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, tc.opts)
			p := Provider{Type: "smtp", Host: srv.Host, Port: srv.Port, TLS: tc.tls, TLSConfig: srv.ClientTLS, Username: tc.user}
			if tc.opts != nil {
				p.Password = tc.opts.Password
			}
			m, err := New(Config{From: "Acme <no-reply@acme.test>", Providers: []Provider{p}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Send(context.Background(), msg()); err != nil {
				t.Fatal(err)
			}
			got := srv.Next(t, 10*time.Second)
			if got.From != "no-reply@acme.test" || len(got.To) != 1 || got.To[0] != "ann@example.test" {
				t.Errorf("envelope %q -> %v", got.From, got.To)
			}
			if got.Header.Get("Subject") != "Verify your email" || !strings.Contains(got.Raw, "multipart/alternative") ||
				!strings.Contains(got.Raw, "token=3Dabc") || got.Header.Get("Message-Id") == "" {
				t.Errorf("message:\n%s", got.Raw)
			}
		})
	}
}

func TestSMTPWrongPassword(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, &smtptest.Options{Username: "abe", Password: "s3cret"})
	m, err := NewSMTP("no-reply@acme.test", Provider{Host: srv.Host, Port: srv.Port, TLS: "starttls", TLSConfig: srv.ClientTLS, Username: "abe", Password: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg()); err == nil {
		t.Fatal("sent with a wrong password")
	}
}

func TestFailover(t *testing.T) {
	t.Parallel()
	bad := smtptest.Start(t, &smtptest.Options{RejectAll: true})
	good := smtptest.Start(t, nil)
	var console bytes.Buffer
	m, err := New(Config{From: "no-reply@acme.test", Providers: []Provider{
		{Type: "smtp", Host: bad.Host, Port: bad.Port, TLS: "none"},
		{Type: "smtp", Host: good.Host, Port: good.Port, TLS: "none"},
		{Type: "console"},
	}}, &console)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	if got := good.Next(t, 10*time.Second); got.Header.Get("Subject") != "Verify your email" {
		t.Errorf("second provider got %q", got.Header.Get("Subject"))
	}
	if console.Len() != 0 {
		t.Error("the console was used although the second provider sent the mail")
	}

	// When every provider fails, the error says so and names each.
	closed := smtptest.Start(t, &smtptest.Options{RejectAll: true})
	m, err = New(Config{From: "no-reply@acme.test", Providers: []Provider{
		{Type: "smtp", Host: bad.Host, Port: bad.Port, TLS: "none"},
		{Type: "smtp", Host: closed.Host, Port: closed.Port, TLS: "none"},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), msg())
	if err == nil || !strings.Contains(err.Error(), "every provider failed") || !strings.Contains(err.Error(), "provider 1") {
		t.Fatalf("got %v", err)
	}
}

func TestConsole(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	m, err := New(Config{From: "no-reply@acme.test", Providers: []Provider{{Type: "console"}}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "To: ann@example.test") || !strings.Contains(s, "token=abc") {
		t.Errorf("console output:\n%s", s)
	}
}
