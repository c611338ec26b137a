package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
)

// SendGridURL is the v3 API of SendGrid; EU subusers use
// https://api.eu.sendgrid.com.
const SendGridURL = "https://api.sendgrid.com"

// SendGrid sends mail through SendGrid's v3 mail/send API.
type SendGrid struct {
	from   sendgridAddress
	key    string
	url    string
	client *http.Client
}

var _ Mailer = (*SendGrid)(nil)

// NewSendGrid configures a client for p (APIKey, Endpoint); nothing
// connects until Send.
func NewSendGrid(from string, p Provider) (*SendGrid, error) {
	if p.APIKey == "" {
		return nil, errors.New("sendgrid needs an api_key")
	}
	a, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	base, err := baseURL(p.Endpoint, SendGridURL)
	if err != nil {
		return nil, err
	}
	return &SendGrid{from: sendgridAddress{Email: a.Address, Name: a.Name}, key: p.APIKey, url: base + "/v3/mail/send", client: p.httpClient()}, nil
}

type sendgridAddress struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

type sendgridContent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type sendgridRequest struct {
	Personalizations []struct {
		To []sendgridAddress `json:"to"`
	} `json:"personalizations"`
	From    sendgridAddress   `json:"from"`
	Subject string            `json:"subject"`
	Content []sendgridContent `json:"content"`
}

// Send posts m; SendGrid answers 202 when it has accepted it.
func (s *SendGrid) Send(ctx context.Context, m *Message) error {
	body := sendgridRequest{From: s.from, Subject: m.Subject}
	body.Personalizations = make([]struct {
		To []sendgridAddress `json:"to"`
	}, 1)
	for _, to := range m.To {
		a, err := mail.ParseAddress(to)
		if err != nil {
			return fmt.Errorf("sendgrid: recipient %q: %w", to, err)
		}
		body.Personalizations[0].To = append(body.Personalizations[0].To, sendgridAddress{Email: a.Address, Name: a.Name})
	}
	// text/plain must come first: SendGrid refuses other orders.
	body.Content = []sendgridContent{{Type: "text/plain", Value: m.Text}}
	if m.HTML != "" {
		body.Content = append(body.Content, sendgridContent{Type: "text/html", Value: m.HTML})
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("sendgrid: %w", err)
	}
	return post(ctx, s.client, "sendgrid", s.url, http.Header{
		"Authorization": {"Bearer " + s.key},
		"Content-Type":  {"application/json"},
	}, string(raw))
}
