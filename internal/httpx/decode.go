package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ReadJSON decodes the request body into v: at most limit bytes, exactly
// one JSON value, no unknown fields. It returns nil or a *Problem ready for
// WriteProblem. Problems never quote the body: it may hold secrets.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) *Problem {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !isJSONMediaType(mt) {
			return &Problem{Status: http.StatusUnsupportedMediaType, Detail: "the request body must be JSON: send Content-Type: application/json"}
		}
	}
	if r.Body == nil {
		return emptyBody()
	}
	// Read it whole, within the limit, so syntax errors can be placed by
	// line and column.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &Problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the request body is larger than the limit of %d bytes", mbe.Limit)}
		}
		return &Problem{Status: http.StatusBadRequest, Detail: "the request body could not be read"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err, body)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Problem{Status: http.StatusBadRequest, Code: CodeMalformedBody, Detail: "the request body must hold exactly one JSON value; more data follows it"}
	}
	return nil
}

func isJSONMediaType(mt string) bool {
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

func emptyBody() *Problem {
	return &Problem{Status: http.StatusBadRequest, Code: CodeMalformedBody, Detail: "the request body is empty; send a JSON object"}
}

func decodeProblem(err error, body []byte) *Problem {
	if errors.Is(err, io.EOF) {
		return emptyBody()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := position(body, int64(len(body)))
		return &Problem{Status: http.StatusBadRequest, Code: CodeMalformedBody, Detail: fmt.Sprintf("the request body is not valid JSON: it ends early, at line %d, column %d", line, col)}
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		// The message may quote a character of the body, so only the
		// position is given.
		line, col := position(body, se.Offset-1)
		return &Problem{Status: http.StatusBadRequest, Code: CodeMalformedBody, Detail: fmt.Sprintf("the request body is not valid JSON: syntax error at line %d, column %d", line, col)}
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		kind := jsonKind(te.Type)
		msg := "must be " + kind
		if kind == "a number" && strings.HasPrefix(te.Value, "number") {
			// A number that does not fit, such as 1.5 or 1e400 for an int.
			msg = "must be a number in range"
			if isInteger(te.Type) {
				msg = "must be a whole number in range"
			}
		}
		if te.Field == "" {
			return &Problem{Status: http.StatusUnprocessableEntity, Detail: "the request body " + msg}
		}
		return &Problem{Status: http.StatusUnprocessableEntity, Detail: "the request body has a value of the wrong type",
			Errors: []FieldError{{Field: te.Field, Message: msg}}}
	}
	// encoding/json has no type for this error; its text is stable.
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, uerr := strconv.Unquote(rest)
		if uerr != nil {
			name = rest
		}
		return &Problem{Status: http.StatusBadRequest, Code: CodeUnknownField, Detail: "the request body has a field this endpoint does not know",
			Errors: []FieldError{{Field: name, Message: "unknown field"}}}
	}
	if _, ok := errors.AsType[*json.InvalidUnmarshalError](err); ok {
		// The caller passed a non-pointer: a bug on our side.
		return &Problem{Status: http.StatusInternalServerError, Detail: "the server could not decode the request body"}
	}
	// What is left comes from UnmarshalJSON methods, such as a malformed
	// time; their messages quote the input, so they are not passed on.
	return &Problem{Status: http.StatusUnprocessableEntity, Detail: "the request body holds a value in the wrong format"}
}

// jsonKind names the JSON type that decodes into t, with its article.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a valid value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a string" // []byte is base64 text
		}
		return "an array"
	case reflect.Array:
		return "an array"
	}
	return "a valid value"
}

func isInteger(t reflect.Type) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t != nil && (t.Kind() >= reflect.Int && t.Kind() <= reflect.Uintptr)
}

// position turns a byte offset of body into a 1-based line and column, the
// column counted in characters.
func position(body []byte, offset int64) (line, col int) {
	offset = max(0, min(offset, int64(len(body))))
	before := body[:offset]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte{'\n'}) + 1, utf8.RuneCount(before[lineStart:]) + 1
}
