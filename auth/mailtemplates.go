package auth

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	texttemplate "text/template"

	"github.com/abe-stack/abe/internal/mail"
)

//go:embed templates
var templateFS embed.FS

// Mail kinds: each is a pair of templates, <kind>.txt and <kind>.html, and
// the text one defines "subject".
const (
	kindAccountExists        = "account_exists"
	kindNewDeviceLogin       = "new_device_login"
	kindMFAEnabled           = EventMFAEnabled
	kindMFADisabled          = EventMFADisabled
	kindRecoveryCodesRenewed = EventRecoveryCodesMade
)

// mailKinds are every mail auth sends.
var mailKinds = []string{kindVerifyEmail, kindResetPassword, kindAccountExists, kindNewDeviceLogin, kindMFAEnabled, kindMFADisabled, kindRecoveryCodesRenewed}

// mailData fills the templates; docs/auth.md lists the fields for those
// who write their own.
type mailData struct {
	Name, Email string
	// Link and TTL: the link of verify_email and reset_password, and how
	// long it works; account_exists links to the reset page.
	Link, TTL string
	// Security alerts: when, and from where, the change was made.
	Time, IP, UserAgent string
	// ByAdmin: an administrator turned MFA off (mfa_disabled).
	ByAdmin bool
}

// sampleMail is what a template is tried with when it is loaded, so a
// broken file stops start-up rather than a mail later.
var sampleMail = mailData{Name: "Ann", Email: "ann@example.com", Link: "https://example.com/reset?token=t0k3n", TTL: "1 hour",
	Time: "2026-03-01 12:00 UTC", IP: "192.0.2.1", UserAgent: "Mozilla/5.0"}

type mailTemplate struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// mailTemplates are the templates by kind.
type mailTemplates map[string]*mailTemplate

// loadMailTemplates parses the built-in templates, then the files of dir
// (when set) over them: <kind>.txt or <kind>.html replaces that part of a
// built-in, and a .txt that defines "subject" its subject too. Files with
// other extensions are ignored; a .txt or .html of no known kind, or one
// that does not parse or render, is an error naming the file.
func loadMailTemplates(dir string) (mailTemplates, error) {
	t := mailTemplates{}
	for _, kind := range mailKinds {
		mt := &mailTemplate{}
		t[kind] = mt
		for _, ext := range []string{".txt", ".html"} {
			name := path.Join("templates", kind+ext)
			src, err := fs.ReadFile(templateFS, name)
			if err != nil {
				return nil, fmt.Errorf("built-in mail template: %w", err)
			}
			if err := mt.parse(kind, ext, src); err != nil {
				return nil, fmt.Errorf("built-in mail template %s: %w", name, err)
			}
		}
		if mt.subject == nil {
			return nil, fmt.Errorf("built-in mail template %s.txt defines no subject", kind)
		}
	}
	if dir == "" {
		return t, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("mail.templates.dir: %w", err)
	}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".txt" && ext != ".html") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		kind := strings.TrimSuffix(e.Name(), ext)
		mt := t[kind]
		if mt == nil {
			return nil, fmt.Errorf("mail template %s: no mail is called %q; the mails are %s", file, kind, strings.Join(mailKinds, ", "))
		}
		src, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("mail template: %w", err)
		}
		if err := mt.parse(kind, ext, src); err != nil {
			return nil, fmt.Errorf("mail template %s: %w", file, err)
		}
		for _, byAdmin := range []bool{false, true} {
			d := sampleMail
			d.ByAdmin = byAdmin
			if _, err := mt.render(kind, "ann@example.com", d); err != nil {
				return nil, fmt.Errorf("mail template %s: %w", file, err)
			}
		}
	}
	return t, nil
}

func (mt *mailTemplate) parse(kind, ext string, src []byte) error {
	if ext == ".html" {
		h, err := htmltemplate.New(kind + ext).Parse(string(src))
		if err != nil {
			return err
		}
		mt.html = h
		return nil
	}
	tt, err := texttemplate.New(kind + ext).Parse(string(src))
	if err != nil {
		return err
	}
	mt.text = tt
	if s := tt.Lookup("subject"); s != nil {
		mt.subject = s
	}
	return nil
}

// errEmptySubject: a mail without a subject reads as spam, or is refused.
var errEmptySubject = errors.New(`the subject is empty: define it in the .txt file, like {{define "subject"}}Verify your email{{end}}`)

func (mt *mailTemplate) render(kind, to string, d mailData) (*mail.Message, error) {
	var subject, text, html bytes.Buffer
	if err := mt.subject.Execute(&subject, d); err != nil {
		return nil, fmt.Errorf("render %s mail subject: %w", kind, err)
	}
	if err := mt.text.Execute(&text, d); err != nil {
		return nil, fmt.Errorf("render %s mail: %w", kind, err)
	}
	if err := mt.html.Execute(&html, d); err != nil {
		return nil, fmt.Errorf("render %s mail: %w", kind, err)
	}
	// One line: a subject is a header, where a newline would end it.
	s := strings.Join(strings.Fields(subject.String()), " ")
	if s == "" {
		return nil, errEmptySubject
	}
	return &mail.Message{To: []string{to}, Subject: s, Text: text.String(), HTML: html.String()}, nil
}

// renderMail fills the templates of kind for one recipient.
func (s *Service) renderMail(kind, to string, d mailData) (*mail.Message, error) {
	mt := s.mails[kind]
	if mt == nil {
		return nil, fmt.Errorf("render mail: no mail is called %q", kind)
	}
	return mt.render(kind, to, d)
}
