// Package smtptest runs a real SMTP server on 127.0.0.1 for tests: it
// speaks the protocol over TCP, offers STARTTLS with a self-signed
// certificate and AUTH PLAIN, and hands every message it receives to the
// test.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is a message the server received.
type Message struct {
	From string
	To   []string
	// Raw is the whole message as sent; Header and Body are parsed from it.
	Raw    string
	Header mail.Header
	Body   string
}

// Server is a running SMTP server.
type Server struct {
	Host string
	Port int
	// ClientTLS trusts the server's certificate.
	ClientTLS *tls.Config
	// Messages receives every message accepted.
	Messages chan *Message

	username, password string
	srv                *smtp.Server
}

// Options configure a server.
type Options struct {
	// Username and Password, when set, require AUTH PLAIN.
	Username, Password string
	// RejectAll makes every message fail, to test failover.
	RejectAll bool
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	cert, pool := selfSigned(t)
	s := &Server{Host: "127.0.0.1", Messages: make(chan *Message, 100), username: opts.Username, password: opts.Password,
		ClientTLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	be := smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s, reject: opts.RejectAll}, nil })
	s.srv = smtp.NewServer(be)
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.AllowInsecureAuth = false
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(ln) //nolint:errcheck // ends when the test closes the server
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-done
	})
	return s
}

// Next waits for the next message, failing the test after timeout.
func (s *Server) Next(t testing.TB, timeout time.Duration) *Message {
	t.Helper()
	select {
	case m := <-s.Messages:
		return m
	case <-time.After(timeout):
		t.Fatalf("smtptest: no message within %s", timeout)
		return nil
	}
}

type session struct {
	s      *Server
	reject bool
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.username || pass != ss.s.password {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.reject {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 0, 0}, Message: "rejected by smtptest"}
	}
	m := &Message{From: ss.from, To: ss.to, Raw: string(raw)}
	if parsed, err := mail.ReadMessage(strings.NewReader(m.Raw)); err == nil {
		m.Header = parsed.Header
		body, _ := io.ReadAll(parsed.Body)
		m.Body = string(body)
	}
	ss.s.Messages <- m
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
