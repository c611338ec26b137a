package httpx

import (
	"errors"
	"net/http"
	"regexp"
)

// Refuser is an error that chose its own answer: a hook's refusal
// (abe.HookError). The message is the problem's detail, sent as is.
type Refuser interface {
	error
	Refusal() (status int, code, detail string)
}

var problemCodeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Refusal is the answer of err if it is (or wraps) a Refuser: its status
// (400 unless it chose one in 400-599), its code when it is a well-formed
// one (else the status's), its detail (else the status's text).
func Refusal(err error) (Problem, bool) {
	var rf Refuser
	if !errors.As(err, &rf) {
		return Problem{}, false
	}
	status, code, detail := rf.Refusal()
	if status < 400 || status > 599 {
		status = http.StatusBadRequest
	}
	if !problemCodeRE.MatchString(code) {
		code = ""
	}
	if detail == "" {
		detail = http.StatusText(status)
	}
	return Problem{Status: status, Code: code, Detail: detail}, true
}
