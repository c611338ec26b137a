package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"mime"
	"net/http"

	"github.com/abe-stack/abe/internal/httpx"
)

// The pages the links in emails open when no app page is configured
// (auth.links): verifying an email, and choosing a new password. They are
// plain HTML forms with a strict CSP.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title>
<style nonce="{{.Nonce}}">body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#222}
input,button{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}.err{color:#b00020}</style>
</head><body><h1>{{.Title}}</h1>
{{if .Message}}<p class="{{if .Error}}err{{end}}">{{.Message}}</p>{{end}}
{{if .Form}}<form method="post" action="/api/auth/password/reset">
<input type="hidden" name="token" value="{{.Token}}">
<label>New password<input type="password" name="password" autocomplete="new-password" required minlength="{{.MinLength}}" maxlength="{{.MaxLength}}" autofocus></label>
<button type="submit">Set password</button></form>{{end}}
</body></html>`))

type pageData struct {
	Title, Message, Token, Nonce string
	Error, Form                  bool
	MinLength, MaxLength         int
}

func (s *Service) page(w http.ResponseWriter, status int, d pageData) {
	var b [16]byte
	_, _ = rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail
	d.Nonce = base64.RawStdEncoding.EncodeToString(b[:])
	d.MinLength, d.MaxLength = s.policy.MinLength, s.policy.MaxLength
	w.Header().Set("Content-Security-Policy", httpx.PageCSP(d.Nonce))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The token is in the URL; keep it out of Referer headers.
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d) //nolint:errcheck // the client went away
}

func (s *Service) pageVerify(w http.ResponseWriter, r *http.Request) {
	_, err := s.VerifyEmail(r.Context(), r.URL.Query().Get("token"), clientOf(r))
	var ae *apiError
	switch {
	case err == nil:
		s.page(w, http.StatusOK, pageData{Title: "Email verified", Message: "Thank you: your email address is verified. You can close this page."})
	case errors.As(err, &ae):
		s.page(w, ae.status, pageData{Title: "Email not verified", Message: ae.detail, Error: true})
	default:
		s.writeError(w, r, err)
	}
}

func (s *Service) pageReset(w http.ResponseWriter, r *http.Request) {
	s.page(w, http.StatusOK, pageData{Title: "Choose a new password", Token: r.URL.Query().Get("token"), Form: true})
}

func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

// formReset handles the reset page's form.
func (s *Service) formReset(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.limit)
	if err := r.ParseForm(); err != nil {
		s.page(w, http.StatusBadRequest, pageData{Title: "Password not changed", Message: "The form could not be read.", Error: true})
		return
	}
	token := r.PostForm.Get("token")
	err := s.ResetPassword(r.Context(), token, r.PostForm.Get("password"), clientOf(r))
	var ae *apiError
	var fe *FieldError
	switch {
	case err == nil:
		s.page(w, http.StatusOK, pageData{Title: "Password changed", Message: "Your new password is set, and every session has been logged out. Log in again with the new password."})
	case errors.As(err, &fe):
		s.page(w, http.StatusUnprocessableEntity, pageData{Title: "Choose a new password", Message: "Choose another password: " + fe.Message + ".", Error: true, Token: token, Form: true})
	case errors.As(err, &ae):
		s.page(w, ae.status, pageData{Title: "Password not changed", Message: ae.detail, Error: true})
	default:
		s.writeError(w, r, err)
	}
}
