package mail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/abe-stack/abe/internal/mail/smtptest"
)

const testFrom = "Acme <no-reply@acme.test>"

// request is what a fake API received.
type request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	// Raw is the request with its body restored, to check signatures.
	Raw *http.Request
}

// api is a local HTTP server standing in for a provider: it hands every
// request to the test and answers with status and body.
type api struct {
	*httptest.Server
	got chan request
}

func newAPI(t *testing.T, status int, body string) *api {
	t.Helper()
	a := &api{got: make(chan request, 10)}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request: %v", err)
		}
		a.got <- request{Method: r.Method, Path: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: raw, Raw: r.Clone(context.Background())}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *api) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-a.got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the API got no request")
		return request{}
	}
}

func newMailer(t *testing.T, p Provider) Mailer {
	t.Helper()
	m, err := New(Config{From: testFrom, Providers: []Provider{p}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkHeader(t *testing.T, r request, key, want string) {
	t.Helper()
	if got := r.Header.Get(key); got != want {
		t.Errorf("%s: %q, want %q", key, got, want)
	}
}

// TestSendGrid checks the request of SendGrid's v3 mail/send API: POST
// /v3/mail/send with a Bearer key and a JSON body of personalizations,
// from, subject and content (text/plain first).
func TestSendGrid(t *testing.T) {
	t.Parallel()
	srv := newAPI(t, http.StatusAccepted, "")
	m := newMailer(t, Provider{Type: "sendgrid", APIKey: "SG.test-key", Endpoint: srv.URL})
	if err := m.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	r := srv.next(t)
	if r.Method != http.MethodPost || r.Path != "/v3/mail/send" {
		t.Errorf("%s %s", r.Method, r.Path)
	}
	checkHeader(t, r, "Authorization", "Bearer SG.test-key")
	checkHeader(t, r, "Content-Type", "application/json")
	var got any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("%v in %s", err, r.Body)
	}
	want := map[string]any{
		"personalizations": []any{map[string]any{"to": []any{map[string]any{"email": "ann@example.test"}}}},
		"from":             map[string]any{"email": "no-reply@acme.test", "name": "Acme"},
		"subject":          "Verify your email",
		"content": []any{
			map[string]any{"type": "text/plain", "value": msg().Text},
			map[string]any{"type": "text/html", "value": msg().HTML},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

// TestMailgun checks the request of Mailgun's messages API: POST
// /v3/<domain>/messages, basic auth api:<key>, a form with from, to,
// subject, text and html.
func TestMailgun(t *testing.T) {
	t.Parallel()
	srv := newAPI(t, http.StatusOK, `{"id":"<1@mg.acme.test>","message":"Queued. Thank you."}`)
	m := newMailer(t, Provider{Type: "mailgun", APIKey: "key-test", Domain: "mg.acme.test", Endpoint: srv.URL + "/"})
	two := msg()
	two.To = append(two.To, "Bob <bob@example.test>")
	if err := m.Send(context.Background(), two); err != nil {
		t.Fatal(err)
	}
	r := srv.next(t)
	if r.Method != http.MethodPost || r.Path != "/v3/mg.acme.test/messages" {
		t.Errorf("%s %s", r.Method, r.Path)
	}
	user, pass, ok := r.Raw.BasicAuth()
	if !ok || user != "api" || pass != "key-test" {
		t.Errorf("basic auth %q:%q (%v)", user, pass, ok)
	}
	checkHeader(t, r, "Content-Type", "application/x-www-form-urlencoded")
	form, err := url.ParseQuery(string(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"from":    {`"Acme" <no-reply@acme.test>`},
		"to":      {"ann@example.test", "Bob <bob@example.test>"},
		"subject": {"Verify your email"},
		"text":    {two.Text},
		"html":    {two.HTML},
	}
	if diff := cmp.Diff(want, form); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
}

func TestMailgunRegions(t *testing.T) {
	t.Parallel()
	for region, want := range map[string]string{
		"":   "https://api.mailgun.net/v3/mg.acme.test/messages",
		"us": "https://api.mailgun.net/v3/mg.acme.test/messages",
		"eu": "https://api.eu.mailgun.net/v3/mg.acme.test/messages",
	} {
		g, err := NewMailgun(testFrom, Provider{APIKey: "k", Domain: "mg.acme.test", Region: region})
		if err != nil {
			t.Fatal(err)
		}
		if g.url != want {
			t.Errorf("region %q: %s, want %s", region, g.url, want)
		}
	}
	if _, err := NewMailgun(testFrom, Provider{APIKey: "k", Domain: "d", Region: "ap"}); err == nil || !strings.Contains(err.Error(), "neither us nor eu") {
		t.Errorf("region ap: %v", err)
	}
}

var sigV4RE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=AKIDTEST/(\d{8})/eu-west-1/ses/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$`)

// TestSES checks the request of SES v2 SendEmail: POST
// /v2/email/outbound-emails, JSON, signed with Signature Version 4 for
// service ses in the configured region; the test signs the request it
// received again with the same secret, so a wrong signature fails.
func TestSES(t *testing.T) {
	t.Parallel()
	srv := newAPI(t, http.StatusOK, `{"MessageId":"0100-abc"}`)
	m := newMailer(t, Provider{Type: "ses", Region: "eu-west-1", AccessKeyID: "AKIDTEST", SecretAccessKey: "s3cr3t/key", Endpoint: srv.URL})
	if err := m.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	r := srv.next(t)
	if r.Method != http.MethodPost || r.Path != "/v2/email/outbound-emails" {
		t.Errorf("%s %s", r.Method, r.Path)
	}
	checkHeader(t, r, "Content-Type", "application/json")
	auth := r.Header.Get("Authorization")
	sm := sigV4RE.FindStringSubmatch(auth)
	if sm == nil {
		t.Fatalf("Authorization %q is not a SigV4 signature for ses in eu-west-1", auth)
	}
	checkSigV4(t, r, strings.Split(sm[2], ";"), "s3cr3t/key")

	var got any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("%v in %s", err, r.Body)
	}
	utf8 := func(s string) map[string]any { return map[string]any{"Data": s, "Charset": "UTF-8"} }
	want := map[string]any{
		"FromEmailAddress": `"Acme" <no-reply@acme.test>`,
		"Destination":      map[string]any{"ToAddresses": []any{"ann@example.test"}},
		"Content": map[string]any{"Simple": map[string]any{
			"Subject": utf8("Verify your email"),
			"Body":    map[string]any{"Text": utf8(msg().Text), "Html": utf8(msg().HTML)},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

// checkSigV4 signs the signed headers and body of r again and compares.
func checkSigV4(t *testing.T, r request, signed []string, secret string) {
	t.Helper()
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	re, err := http.NewRequest(r.Method, "http://"+r.Raw.Host+r.Raw.URL.RequestURI(), strings.NewReader(string(r.Body)))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range signed {
		if h != "host" && h != "content-length" {
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(r.Body)
	creds := aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, re, hex.EncodeToString(sum[:]), "ses", "eu-west-1", at); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Header.Get("Authorization"), re.Header.Get("Authorization"); got != want {
		t.Errorf("signature does not verify:\n got %s\nwant %s", got, want)
	}
}

// TestHTTPErrors: an answer other than 2xx is an error that names the
// provider and the status, with what the provider said.
func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		p      Provider
		status int
		body   string
		want   string
	}{
		{"sendgrid", Provider{Type: "sendgrid", APIKey: "bad"}, 401, `{"errors":[{"message":"The provided authorization grant is invalid"}]}`,
			`sendgrid: HTTP 401 Unauthorized: {"errors":[{"message":"The provided authorization grant is invalid"}]}`},
		{"mailgun", Provider{Type: "mailgun", APIKey: "k", Domain: "mg.acme.test"}, 400, `{"message": "to parameter is not a valid address"}`,
			`mailgun: HTTP 400 Bad Request: {"message": "to parameter is not a valid address"}`},
		{"redirect", Provider{Type: "sendgrid", APIKey: "k"}, 302, ``, `sendgrid: HTTP 302 Found`},
		{"ses", Provider{Type: "ses", Region: "us-east-1", AccessKeyID: "AKIDTEST", SecretAccessKey: "x"}, 400, `{"message":"Email address is not verified."}`,
			`ses: HTTP 400 Bad Request: MessageRejected: Email address is not verified.`},
		{"ses 5xx", Provider{Type: "ses", Region: "us-east-1", AccessKeyID: "AKIDTEST", SecretAccessKey: "x"}, 503, `{"message":"try later"}`,
			`ses: HTTP 503 Service Unavailable`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Amzn-ErrorType", "MessageRejected")
				w.Header().Set("Location", "/v3/elsewhere")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			tc.p.Endpoint = srv.URL
			err := newMailer(t, tc.p).Send(context.Background(), msg())
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status {
				t.Fatalf("got %v (%T), want a StatusError with %d", err, err, tc.status)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to start with %q", err, tc.want)
			}
		})
	}
}

// refused is an address where nothing listens.
func refused(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// hanging is a server that never answers until the client gives up.
func hanging(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for handlers
	return srv.URL
}

// TestHTTPFailover: whatever way the first provider fails (an error
// status, no server, no answer in time), the message goes out through the
// next one; when all fail, the error names each.
func TestHTTPFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		first   func(t *testing.T) string
		wantErr string
	}{
		{"500", func(t *testing.T) string { return newAPI(t, 500, `{"errors":[{"message":"internal"}]}`).URL }, "sendgrid: HTTP 500 Internal Server Error"},
		{"connection refused", refused, "connection refused"},
		{"timeout", hanging, "Client.Timeout exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			first := Provider{Type: "sendgrid", APIKey: "k", Endpoint: tc.first(t), Timeout: 300 * time.Millisecond}
			good := newAPI(t, http.StatusOK, `{"id":"<1@mg>"}`)
			m, err := New(Config{From: testFrom, Providers: []Provider{first, {Type: "mailgun", APIKey: "k", Domain: "mg.acme.test", Endpoint: good.URL}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := m.Send(context.Background(), msg()); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("failover took %s", d)
			}
			if r := good.next(t); r.Path != "/v3/mg.acme.test/messages" {
				t.Errorf("second provider got %s", r.Path)
			}

			// With no provider left, the error says what each did.
			m, err = New(Config{From: testFrom, Providers: []Provider{first, {Type: "ses", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b", Endpoint: refused(t)}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Send(context.Background(), msg())
			if err == nil || !strings.Contains(err.Error(), "provider 0: "+"sendgrid: ") || !strings.Contains(err.Error(), tc.wantErr) ||
				!strings.Contains(err.Error(), "provider 1: ses: ") {
				t.Errorf("got %v", err)
			}
		})
	}
}

// TestHTTPContext: a cancelled or expired context stops a send at once,
// and Failover does not go on to the next provider.
func TestHTTPContext(t *testing.T) {
	t.Parallel()
	slow := hanging(t)
	good := newAPI(t, http.StatusAccepted, "")
	for _, p := range []Provider{
		{Type: "sendgrid", APIKey: "k", Endpoint: slow},
		{Type: "mailgun", APIKey: "k", Domain: "d", Endpoint: slow},
		{Type: "ses", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b", Endpoint: slow},
	} {
		t.Run(p.Type, func(t *testing.T) {
			t.Parallel()
			m, err := New(Config{From: testFrom, Providers: []Provider{p, {Type: "sendgrid", APIKey: "k", Endpoint: good.URL}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = m.Send(ctx, msg())
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want a deadline error", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned after %s", d)
			}
		})
	}
	select {
	case r := <-good.got:
		t.Errorf("the next provider was tried after the context ended: %s", r.Path)
	default:
	}
}

func TestHTTPConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    Provider
		want string
	}{
		{Provider{Type: "sendgrid"}, "mail provider 0 (sendgrid): sendgrid needs an api_key"},
		{Provider{Type: "sendgrid", APIKey: "k", Endpoint: "api.sendgrid.com"}, `endpoint "api.sendgrid.com" is not an http(s) URL`},
		{Provider{Type: "mailgun", APIKey: "k"}, "mailgun needs an api_key and a domain"},
		{Provider{Type: "ses", Region: "us-east-1"}, "ses needs a region, an access_key_id and a secret_access_key"},
		{Provider{Type: "ses", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b", Endpoint: "ftp://x"}, `endpoint "ftp://x" is not an http(s) URL`},
	} {
		_, err := New(Config{From: testFrom, Providers: []Provider{tc.p}}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.p, err, tc.want)
		}
	}
	if _, err := New(Config{From: "not an address", Providers: []Provider{{Type: "sendgrid", APIKey: "k"}}}, nil); err == nil || !strings.Contains(err.Error(), "is not an email address") {
		t.Errorf("bad from: %v", err)
	}
}

// TestFailoverAcrossKinds: SMTP and the HTTP APIs fail over to each
// other, in the configured order.
func TestFailoverAcrossKinds(t *testing.T) {
	t.Parallel()
	rejecting := smtptest.Start(t, &smtptest.Options{RejectAll: true})
	down := newAPI(t, http.StatusServiceUnavailable, "")
	up := newAPI(t, http.StatusOK, `{"id":"<1@mg>"}`)
	m, err := New(Config{From: testFrom, Providers: []Provider{
		{Type: "smtp", Host: rejecting.Host, Port: rejecting.Port, TLS: "none"},
		{Type: "sendgrid", APIKey: "k", Endpoint: down.URL},
		{Type: "mailgun", APIKey: "k", Domain: "mg.acme.test", Endpoint: up.URL},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	down.next(t)
	up.next(t)

	good := smtptest.Start(t, nil)
	m, err = New(Config{From: testFrom, Providers: []Provider{
		{Type: "ses", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b", Endpoint: down.URL},
		{Type: "smtp", Host: good.Host, Port: good.Port, TLS: "none"},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	if got := good.Next(t, 10*time.Second); got.Header.Get("Subject") != "Verify your email" {
		t.Errorf("smtp got %q", got.Header.Get("Subject"))
	}
}
