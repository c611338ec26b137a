package auth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/internal/mail"
)

// loginFrom logs in from another address and user agent.
func (e *env) loginFrom(email, ip, ua string) res {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/auth/login", body: map[string]string{"email": email, "password": goodPassword},
		remote: ip + ":40000", header: map[string]string{"User-Agent": ua}})
	if r.status != 200 {
		e.t.Fatalf("login of %s from %s: %d %s", email, ip, r.status, r.raw)
	}
	return r
}

// expectMail takes the next mail and checks its recipient, subject, and
// what its text and HTML parts contain.
func (e *env) expectMail(to, subject string, text, html []string) *mail.Message {
	e.t.Helper()
	m := e.mail.next(e.t)
	if len(m.To) != 1 || m.To[0] != to || m.Subject != subject {
		e.t.Fatalf("mail %q to %v, want %q to %s", m.Subject, m.To, subject, to)
	}
	for _, s := range text {
		if !strings.Contains(m.Text, s) {
			e.t.Errorf("%q: the text has no %q:\n%s", subject, s, m.Text)
		}
	}
	for _, s := range html {
		if !strings.Contains(m.HTML, s) {
			e.t.Errorf("%q: the HTML has no %q:\n%s", subject, s, m.HTML)
		}
	}
	return m
}

// TestNewDeviceAlert: a login from an address and user agent that no
// earlier session of the account had gets a mail saying when and from
// where; a known pair does not.
func TestNewDeviceAlert(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.register("ann@example.test") // a session from 192.0.2.10 with no user agent

	e.loginFrom("ann@example.test", "192.0.2.10", "")
	e.mail.none(t, e.s)

	const ua = `Firefox/140 <script>alert(1)</script>`
	e.loginFrom("ann@example.test", "198.51.100.7", ua)
	m := e.expectMail("ann@example.test", "New login to your account",
		[]string{"Hello Ann", "ann@example.test", "2026-03-01 12:00 UTC", "198.51.100.7", ua},
		[]string{"198.51.100.7", "Firefox/140 &lt;script&gt;alert(1)&lt;/script&gt;"})
	if strings.Contains(m.HTML, "<script>") {
		t.Errorf("the user agent reached the HTML unescaped:\n%s", m.HTML)
	}

	// That device is known now.
	e.loginFrom("ann@example.test", "198.51.100.7", ua)
	e.mail.none(t, e.s)

	// The pair counts, not the address alone.
	e.loginFrom("ann@example.test", "198.51.100.7", "curl/8.0")
	e.expectMail("ann@example.test", "New login to your account", []string{"curl/8.0"}, nil)

	// A failed login is no login.
	if r := e.do(req{method: "POST", path: "/api/auth/login", body: map[string]string{"email": "ann@example.test", "password": "wrong password 1"},
		remote: "203.0.113.9:1"}); r.status != 401 {
		t.Fatalf("wrong password: %d", r.status)
	}
	e.mail.none(t, e.s)
}

// TestNewDeviceAlertNotOnFirstLogin: an account's first login has no
// earlier device to compare with, so it gets no alert; once its sessions
// have expired and been pruned, its earlier logins still count.
func TestNewDeviceAlertNotOnFirstLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if _, err := e.s.CreateUser(context.Background(), CreateUserOpts{Email: "bob@example.test", Password: goodPassword, Name: "Bob", Verified: true}); err != nil {
		t.Fatal(err)
	}
	e.loginFrom("bob@example.test", "198.51.100.1", "Safari")
	e.mail.none(t, e.s)

	e.loginFrom("bob@example.test", "198.51.100.2", "Safari")
	e.expectMail("bob@example.test", "New login to your account", []string{"Hello Bob", "198.51.100.2"}, nil)

	if _, err := e.db.Exec(context.Background(), `DELETE FROM abe.refresh_tokens`); err != nil {
		t.Fatal(err)
	}
	e.loginFrom("bob@example.test", "198.51.100.1", "Safari")
	e.expectMail("bob@example.test", "New login to your account", []string{"198.51.100.1"}, nil)
}

// TestNewDeviceAlertWithMFA: with a second factor, the login happens at
// mfa/verify, so that is when the alert goes out.
func TestNewDeviceAlertWithMFA(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ann := e.register("ann@example.test")
	secret, _ := e.enrol(ann.str("access_token"))
	e.expectMail("ann@example.test", "Two-factor authentication is on", nil, nil)

	r := e.do(req{method: "POST", path: "/api/auth/login", body: map[string]string{"email": "ann@example.test", "password": goodPassword},
		remote: "198.51.100.7:1", header: map[string]string{"User-Agent": "Edge"}})
	if r.body["mfa_required"] != true {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	e.mail.none(t, e.s)
	v := e.do(req{method: "POST", path: "/api/auth/mfa/verify", body: map[string]string{"mfa_token": r.str("mfa_token"), "code": codeAt(t, secret, e.clock.Now())},
		remote: "198.51.100.7:1", header: map[string]string{"User-Agent": "Edge"}})
	if v.status != 200 {
		t.Fatalf("verify: %d %s", v.status, v.raw)
	}
	e.expectMail("ann@example.test", "New login to your account", []string{"198.51.100.7", "Edge"}, nil)
}

// TestMFAChangeAlerts: turning MFA on or off and making new recovery
// codes each mail the account once the change commits; a refused attempt
// mails nothing.
func TestMFAChangeAlerts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.admin()
	ann := e.register("ann@example.test")
	token := ann.str("access_token")
	id := ann.body["user"].(map[string]any)["id"].(string)

	secret, _ := e.enrol(token)
	e.expectMail("ann@example.test", "Two-factor authentication is on",
		[]string{"turned on for your account ann@example.test", "192.0.2.10", "2026-03-01 12:00 UTC"}, []string{"192.0.2.10"})

	if r := e.do(req{method: "POST", path: "/api/auth/mfa/recovery-codes", token: token, body: map[string]string{"code": "000000"}}); r.status != 401 {
		t.Fatalf("recovery codes with a wrong code: %d %s", r.status, r.raw)
	}
	e.mail.none(t, e.s)
	e.clearAttempts("ann@example.test")

	if r := e.do(req{method: "POST", path: "/api/auth/mfa/recovery-codes", token: token, body: map[string]string{"code": codeAt(t, secret, e.clock.Now())}}); r.status != 200 {
		t.Fatalf("recovery codes: %d %s", r.status, r.raw)
	}
	e.expectMail("ann@example.test", "New recovery codes for your account", []string{"the\nold ones no longer work", "192.0.2.10"}, []string{"the old ones no longer work"})
	e.clock.Advance(30 * time.Second)

	if r := e.do(req{method: "POST", path: "/api/auth/mfa/totp/disable", token: token, body: map[string]string{"password": goodPassword, "code": codeAt(t, secret, e.clock.Now())}}); r.status != 204 {
		t.Fatalf("disable: %d %s", r.status, r.raw)
	}
	m := e.expectMail("ann@example.test", "Two-factor authentication is off", []string{"turned off for your account ann@example.test", "192.0.2.10"}, nil)
	if strings.Contains(m.Text, "administrator") {
		t.Errorf("a user's own change reads as an administrator's:\n%s", m.Text)
	}

	// An administrator's reset says so.
	e.enrol(token)
	e.expectMail("ann@example.test", "Two-factor authentication is on", nil, nil)
	if r := e.do(req{method: "DELETE", path: "/api/admin/users/" + id + "/mfa", token: admin}); r.status != 204 {
		t.Fatalf("reset: %d %s", r.status, r.raw)
	}
	e.expectMail("ann@example.test", "Two-factor authentication is off", []string{"An administrator turned two-factor authentication off", "ended its sessions"},
		[]string{"An administrator"})
	e.mail.none(t, e.s)
}

// TestMailTemplateOverrides: files in mail.templates.dir replace the
// built-in parts they are named for, subject included; the rest stay.
func TestMailTemplateOverrides(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "new_device_login.txt", `{{define "subject"}}Nouvelle connexion à {{.Email}}{{end}}Bonjour {{.Name}} : {{.IP}}, {{.UserAgent}}.`)
	write(t, dir, "verify_email.html", `<p>Confirmez : <a href="{{.Link}}">ici</a></p>`)
	write(t, dir, "README.md", "not a template: ignored")
	if err := os.Mkdir(filepath.Join(dir, "drafts"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, &envOpts{mailTemplates: dir})

	r := e.do(req{method: "POST", path: "/api/auth/register", body: map[string]string{"email": "ann@example.test", "password": goodPassword, "name": "Ann"}})
	if r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	verify := e.expectMail("ann@example.test", "Verify your email", []string{"Confirm that ann@example.test is your email address"},
		[]string{`<p>Confirmez : <a href="http://127.0.0.1:8090/api/auth/verify-email?token=`})
	if tokenIn(t, verify) == "" {
		t.Fatal("no token")
	}

	e.loginFrom("ann@example.test", "198.51.100.7", "Firefox")
	m := e.expectMail("ann@example.test", "Nouvelle connexion à ann@example.test", nil, []string{"198.51.100.7", "<table>"})
	if m.Text != "Bonjour Ann : 198.51.100.7, Firefox." {
		t.Errorf("text %q", m.Text)
	}
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMailTemplateErrors: a template directory that is missing, or has a
// file that names no mail, does not parse, or does not render, stops the
// service from starting, and the error names the file.
func TestMailTemplateErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, text string
		want             string
	}{
		{"unknown name", "welcome.txt", "Hi", `no mail is called "welcome"; the mails are verify_email, reset_password`},
		{"syntax", "reset_password.txt", "Hello {{.Name", "unclosed action"},
		{"html syntax", "reset_password.html", "<p>{{if .Name}}</p>", "unexpected EOF"},
		{"missing field", "mfa_enabled.txt", "Hello {{.Nickname}}", "can't evaluate field Nickname"},
		{"admin branch", "mfa_disabled.html", "{{if .ByAdmin}}{{.Admin}}{{end}}", "can't evaluate field Admin"},
		{"empty subject", "verify_email.txt", `{{define "subject"}}  {{end}}Hello`, "the subject is empty"},
		{"unclosed html", "verify_email.html", `<a href="{{.Link}}`, "ends in a non-text context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := write(t, dir, tc.file, tc.text)
			_, err := loadMailTemplates(dir)
			if err == nil || !strings.Contains(err.Error(), "mail template "+path+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant the file %s and %q", err, path, tc.want)
			}
		})
	}

	missing := filepath.Join(t.TempDir(), "nope")
	_, err := loadMailTemplates(missing)
	if err == nil || !strings.Contains(err.Error(), "mail.templates.dir") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing directory: %v", err)
	}

	// The service refuses to start.
	dir := t.TempDir()
	path := write(t, dir, "new_device_login.html", "{{template \"nothing\"}}")
	cfg := testConfig(t, "")
	cfg.MailTemplates = dir
	if _, err := New(context.Background(), testDB(t), cfg, &Options{Argon2: &cheapArgon2}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("New with a broken template: %v", err)
	}
}

// TestBuiltinMailTemplates renders every built-in mail, so each has a
// subject and both parts.
func TestBuiltinMailTemplates(t *testing.T) {
	t.Parallel()
	mt, err := loadMailTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range mailKinds {
		for _, byAdmin := range []bool{false, true} {
			d := sampleMail
			d.ByAdmin = byAdmin
			m, err := mt[kind].render(kind, "ann@example.com", d)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject == "" || !strings.HasPrefix(m.Text, "Hello Ann,") || !strings.HasPrefix(m.HTML, "<p>Hello Ann,</p>") || !strings.Contains(m.Text, "ann@example.com") {
				t.Errorf("%s: %q\n%s\n%s", kind, m.Subject, m.Text, m.HTML)
			}
		}
	}
}
