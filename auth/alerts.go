package auth

import (
	"context"
	"fmt"

	"github.com/abe-stack/abe/internal/mail"
)

// Security alerts tell the owner of an account about a change they may not
// have made. Each is rendered before or inside the transaction that makes
// the change, and queued only once it commits.

// alertTime is how alerts write the time: unambiguous for every reader.
const alertTime = "2006-01-02 15:04 UTC"

// alert renders a security alert of kind to u about a change c made.
func (s *Service) alert(kind string, u *User, c client, byAdmin bool) (*mail.Message, error) {
	return s.renderMail(kind, u.Email, mailData{Name: u.Name, Email: u.Email, Time: s.now().UTC().Format(alertTime),
		IP: c.ip, UserAgent: truncate(c.userAgent, maxUserAgent), ByAdmin: byAdmin})
}

// newDeviceAlert returns the mail for a login of u from c when no earlier
// session of u came from c's address and user agent, or nil when one did.
// A first login ever gets none: every device is new then, and the account
// was just made. It reads, so it runs before the login writes its session.
func (s *Service) newDeviceAlert(ctx context.Context, db dbtx, u *User, c client) (*mail.Message, error) {
	var before, seen bool
	err := db.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM abe.refresh_tokens WHERE user_id = $1)
			OR EXISTS (SELECT 1 FROM abe.security_events WHERE user_id = $1 AND type = $4),
		EXISTS (SELECT 1 FROM abe.refresh_tokens WHERE user_id = $1 AND ip = $2 AND user_agent = $3)`,
		u.ID, c.ip, truncate(c.userAgent, maxUserAgent), EventLoginSucceeded).Scan(&before, &seen)
	if err != nil {
		return nil, fmt.Errorf("look up earlier sessions: %w", err)
	}
	if !before || seen {
		return nil, nil
	}
	return s.alert(kindNewDeviceLogin, u, c, false)
}

// sendAlert queues m, when there is one.
func (o *outbox) sendAlert(m *mail.Message) {
	if m != nil {
		o.enqueue(m)
	}
}
