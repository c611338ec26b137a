package schema

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

var (
	webhookNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostLabelRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// maxWebhookTimeout bounds webhooks' timeout: a request holds a worker.
const maxWebhookTimeout = 5 * time.Minute

// checkWebhooks checks the webhooks section and the webhooks of every
// collection. Whether each secret's variable is set is checked when abe
// starts its workers, not here: `abe validate` runs where the secrets are
// not (CI, a laptop). Filters are compiled with the rules (package rules).
func (c *checker) checkWebhooks() {
	wh := &c.cfg.Webhooks
	for i, a := range wh.Allow {
		if _, _, err := ParseWebhookAllow(a); err != nil {
			c.add([]string{"webhooks", "allow", strconv.Itoa(i)}, false, "%q is not a CIDR, an IP address or a host name: %v", "write it like 10.0.0.0/8, 127.0.0.1 or hooks.internal", a, err)
		}
	}
	if d := time.Duration(wh.Timeout); d <= 0 || d > maxWebhookTimeout {
		c.add([]string{"webhooks", "timeout"}, false, "timeout must be more than 0 and at most %s, not %s", "a receiver should answer at once and do its work later; like 10s", maxWebhookTimeout, wh.Timeout)
	}
	if wh.ResponseLimit < 1 {
		c.add([]string{"webhooks", "response_limit"}, false, "response_limit must be at least 1 byte", "the default is 64KiB")
	}
	if d := time.Duration(wh.Backoff); d <= 0 || d > WebhookBackoffMax {
		c.add([]string{"webhooks", "backoff"}, false, "backoff must be more than 0 and at most %s, not %s", "like 10s", WebhookBackoffMax, wh.Backoff)
	}
	inherited := false
	for _, col := range c.cfg.Collections {
		seen := map[string]bool{}
		for i, w := range col.Webhooks {
			c.checkWebhook(col, i, w, seen)
			inherited = inherited || w.Timeout == wh.Timeout
		}
	}
	if inherited {
		c.checkRescue([]string{"webhooks", "timeout"}, wh.Timeout)
	}
}

func (c *checker) checkWebhook(col *Collection, i int, w *Webhook, seen map[string]bool) {
	path := []string{"collections", col.Name, "webhooks", strconv.Itoa(i)}
	sub := func(key ...string) []string { return append(slices.Clone(path), key...) }
	switch {
	case w.Name == "":
		// The JSON Schema reports it.
	case !webhookNameRE.MatchString(w.Name) || len(w.Name) > maxIdentLen:
		c.add(sub("name"), false, "%q is not a valid webhook name", "use lower-case letters, digits, - and _, starting with a letter (at most 63 characters)", w.Name)
	case seen[w.Name]:
		c.add(sub("name"), false, "collection %s has two webhooks named %q", "give each webhook of a collection its own name: its queued deliveries find it by name", col.Name, w.Name)
	}
	seen[w.Name] = true
	if w.URL != "" {
		if err := checkWebhookURL(w.URL); err != nil {
			c.add(sub("url"), false, "%q is not a webhook URL: %v", "write an http or https URL, like https://hooks.example.com/abe", w.URL, err)
		}
	}
	for j, ev := range w.Events {
		if slices.Contains(w.Events[:j], ev) {
			c.add(sub("events", strconv.Itoa(j)), false, "event %q is listed twice", "list each of create, update and delete at most once", ev)
		}
	}
	if !envNameRE.MatchString(w.SecretEnv) {
		c.add(sub("secret_env"), false, "%q is not an environment variable name", "write the name of the variable that holds the secret, like TODOS_WEBHOOK_SECRET, not ${...}: the secret itself never goes in the file", w.SecretEnv)
	}
	// A webhook without its own timeout has the section's, checked above.
	if d := time.Duration(w.Timeout); w.Timeout != c.cfg.Webhooks.Timeout && (d <= 0 || d > maxWebhookTimeout) {
		c.add(sub("timeout"), false, "timeout must be more than 0 and at most %s, not %s", "a receiver should answer at once and do its work later; like 10s", maxWebhookTimeout, w.Timeout)
	}
	if w.Timeout != c.cfg.Webhooks.Timeout {
		c.checkRescue(sub("timeout"), w.Timeout)
	}
	if p := w.Principal; p != nil {
		if _, err := uuid.Parse(p.ID); p.ID != "" && (err != nil || len(p.ID) != 36) {
			c.add(sub("principal", "id"), false, "%q is not a UUID", "write an account's id (auth.id in rules), like 018f3b7e-0000-7000-8000-000000000001, or leave it out", p.ID)
		}
		if _, err := mail.ParseAddress(p.Email); p.Email != "" && err != nil {
			c.add(sub("principal", "email"), false, "%q is not an email address", "write it like hooks@example.com, or leave it out", p.Email)
		}
		for j, r := range p.Roles {
			if !slices.ContainsFunc(c.cfg.Roles, func(role *Role) bool { return role.Name == r }) {
				c.add(sub("principal", "roles", strconv.Itoa(j)), false, "role %q is not declared", "declare it under roles:, or use one of its roles", r)
			}
		}
	}
}

// checkRescue: a delivery still running after jobs.rescue_after is
// started again, so its request (and the 5 s a worker adds) must end
// before.
func (c *checker) checkRescue(path []string, timeout Duration) {
	if time.Duration(timeout)+5*time.Second >= time.Duration(c.cfg.Jobs.RescueAfter) {
		c.add(path, false, "timeout (%s) plus 5s must be shorter than jobs.rescue_after (%s), or a delivery still waiting for its answer would be sent again", "shorten the timeout or raise jobs.rescue_after", timeout, c.cfg.Jobs.RescueAfter)
	}
}

// checkWebhookURL checks the form of a webhook's URL; which addresses it
// may reach is decided when it is dialled.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("the scheme must be http or https, not %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return errors.New("it has no host")
	case u.User != nil:
		return errors.New("it holds credentials; receivers check the signature instead")
	case u.Fragment != "":
		return errors.New("it has a #fragment, which is never sent")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	}
	return nil
}

// ParseWebhookAllow reads an entry of webhooks.allow: a CIDR or an IP
// address (as a /32 or /128), or else a host name, returned lower-case
// without a trailing dot.
func ParseWebhookAllow(s string) (netip.Prefix, string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, "", errors.New("it is empty")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, "", errors.New("the CIDR does not parse")
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, "", errors.New("a CIDR has no zone")
		}
		return netip.PrefixFrom(p.Addr().Unmap(), unmapBits(p)).Masked(), "", nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, "", errors.New("write the address without a zone")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), "", nil
	}
	host := strings.TrimSuffix(strings.ToLower(s), ".")
	if len(host) > 253 || host == "" {
		return netip.Prefix{}, "", errors.New("a host name has 1 to 253 characters")
	}
	for label := range strings.SplitSeq(host, ".") {
		if len(label) > 63 || !hostLabelRE.MatchString(label) {
			return netip.Prefix{}, "", fmt.Errorf("%q is not a label of a host name (letters, digits and -)", label)
		}
	}
	if _, err := strconv.Atoi(strings.ReplaceAll(host, ".", "")); err == nil {
		// All digits: an address written wrong, never a name.
		return netip.Prefix{}, "", errors.New("it is neither an IP address nor a host name")
	}
	return netip.Prefix{}, host, nil
}

// unmapBits is the length of p once its address is unmapped: an
// IPv4-mapped IPv6 CIDR (::ffff:10.0.0.0/104) is the IPv4 one (/8).
func unmapBits(p netip.Prefix) int {
	if a := p.Addr(); a.Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}
