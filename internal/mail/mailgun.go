package mail

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Mailgun's API, per region: a domain lives in one and is reached there.
const (
	MailgunURL   = "https://api.mailgun.net"
	MailgunEUURL = "https://api.eu.mailgun.net"
)

// Mailgun sends mail through Mailgun's messages API.
type Mailgun struct {
	from   string
	auth   string
	url    string
	client *http.Client
}

var _ Mailer = (*Mailgun)(nil)

// NewMailgun configures a client for p (APIKey, Domain, Region or
// Endpoint); nothing connects until Send.
func NewMailgun(from string, p Provider) (*Mailgun, error) {
	if p.APIKey == "" || p.Domain == "" {
		return nil, errors.New("mailgun needs an api_key and a domain")
	}
	a, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	def := MailgunURL
	switch p.Region {
	case "", "us":
	case "eu":
		def = MailgunEUURL
	default:
		return nil, fmt.Errorf("mailgun region %q is neither us nor eu", p.Region)
	}
	base, err := baseURL(p.Endpoint, def)
	if err != nil {
		return nil, err
	}
	return &Mailgun{
		from:   a.String(),
		auth:   "Basic " + base64.StdEncoding.EncodeToString([]byte("api:"+p.APIKey)),
		url:    base + "/v3/" + url.PathEscape(p.Domain) + "/messages",
		client: p.httpClient(),
	}, nil
}

// Send posts m as a form; Mailgun answers 200 when it has queued it.
func (g *Mailgun) Send(ctx context.Context, m *Message) error {
	form := url.Values{"from": {g.from}, "to": m.To, "subject": {m.Subject}, "text": {m.Text}}
	if m.HTML != "" {
		form.Set("html", m.HTML)
	}
	return post(ctx, g.client, "mailgun", g.url, http.Header{
		"Authorization": {g.auth},
		"Content-Type":  {"application/x-www-form-urlencoded"},
	}, form.Encode())
}
