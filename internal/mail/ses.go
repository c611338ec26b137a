package mail

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
)

// SES sends mail through Amazon SES's v2 SendEmail API.
type SES struct {
	from   string
	client *sesv2.Client
}

var _ Mailer = (*SES)(nil)

// NewSES configures a client for p (Region, AccessKeyID,
// SecretAccessKey, Endpoint); nothing connects until Send.
func NewSES(from string, p Provider) (*SES, error) {
	if p.Region == "" || p.AccessKeyID == "" || p.SecretAccessKey == "" {
		return nil, errors.New("ses needs a region, an access_key_id and a secret_access_key")
	}
	a, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	opts := sesv2.Options{
		Region: p.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey, Source: "abe.yaml"}, nil
		}),
		HTTPClient: p.httpClient(),
		// One attempt: on failure the next provider is tried at once, and
		// the caller retries the whole list later.
		RetryMaxAttempts: 1,
	}
	if p.Endpoint != "" {
		base, err := baseURL(p.Endpoint, "")
		if err != nil {
			return nil, err
		}
		opts.BaseEndpoint = aws.String(base)
	}
	// a.String() quotes the name and encodes it (RFC 2047) when needed.
	return &SES{from: a.String(), client: sesv2.New(opts)}, nil
}

// Send sends m as a simple message: SES assembles the MIME parts.
func (s *SES) Send(ctx context.Context, m *Message) error {
	body := &types.Body{Text: &types.Content{Data: aws.String(m.Text), Charset: aws.String("UTF-8")}}
	if m.HTML != "" {
		body.Html = &types.Content{Data: aws.String(m.HTML), Charset: aws.String("UTF-8")}
	}
	_, err := s.client.SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(s.from),
		Destination:      &types.Destination{ToAddresses: m.To},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String(m.Subject), Charset: aws.String("UTF-8")},
			Body:    body,
		}},
	})
	if err == nil {
		return nil
	}
	// The SDK's errors are long and generic; say who answered what.
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		se := &StatusError{Provider: "ses", StatusCode: re.HTTPStatusCode(), Err: err}
		var api smithy.APIError
		if errors.As(err, &api) {
			se.Message = shorten(api.ErrorCode() + ": " + api.ErrorMessage())
		}
		return se
	}
	return fmt.Errorf("ses: %w", err)
}
