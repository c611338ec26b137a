package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"unicode/utf8"
)

// StatusError is a provider's answer other than 2xx. Every such answer is
// a failure, so Failover moves on to the next provider.
type StatusError struct {
	// Provider is sendgrid, mailgun or ses.
	Provider   string
	StatusCode int
	// Message is what the provider said, shortened.
	Message string
	// Err is the underlying error, when a client library made one.
	Err error
}

// Error names the provider and the status, then what the provider said.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d %s", e.Provider, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the client library's error, if any.
func (e *StatusError) Unwrap() error { return e.Err }

// maxErrorBody is how much of an error answer is kept: enough for the
// provider's explanation, not enough to flood a log.
const maxErrorBody = 512

// post sends one request and fails unless the answer is 2xx. The
// provider's name prefixes every error, so a Failover's joined error
// reads as a list of who failed and why.
func post(ctx context.Context, client *http.Client, provider, endpoint string, header http.Header, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", provider, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return fmt.Errorf("%s: %w", provider, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody+1)) //nolint:errcheck // the status decides; the body only explains
	if res.StatusCode/100 != 2 {
		return &StatusError{Provider: provider, StatusCode: res.StatusCode, Message: shorten(string(raw))}
	}
	// Drain what is left (a little), so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) //nolint:errcheck // best effort
	return nil
}

func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxErrorBody {
		return s
	}
	s = s[:maxErrorBody]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// baseURL checks an endpoint override, or returns the default.
func baseURL(endpoint, def string) (string, error) {
	if endpoint == "" {
		return def, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("endpoint %q is not an http(s) URL", endpoint)
	}
	return strings.TrimSuffix(endpoint, "/"), nil
}

// parseFrom reads the sender as name and address.
func parseFrom(from string) (*mail.Address, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("from %q is not an email address: %w", from, err)
	}
	return a, nil
}
