package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ClientMessage is a message a client sends. Type is auth, subscribe,
// unsubscribe or ping.
type ClientMessage struct {
	Type   string `json:"type"`
	ID     string `json:"id,omitempty"`
	Token  string `json:"token,omitempty"`
	Topic  string `json:"topic,omitempty"`
	Filter string `json:"filter,omitempty"`
	// Since is the last seq the client saw, for a subscription that should
	// receive what it missed.
	Since *int64 `json:"since,omitempty"`
}

// Error codes of error messages.
const (
	CodeBadMessage        = "bad_message"
	CodeUnknownType       = "unknown_type"
	CodeBadTopic          = "bad_topic"
	CodeUnknownCollection = "unknown_collection"
	CodeNotEnabled        = "not_enabled"
	CodeBadFilter         = "bad_filter"
	CodeForbidden         = "forbidden"
	CodeUnauthorized      = "unauthorized"
	CodeInvalidToken      = "invalid_token"
	CodeTokenExpired      = "token_expired"
	CodeTokenRevoked      = "token_revoked"
	CodeTooManySubs       = "too_many_subscriptions"
	CodeDuplicateID       = "duplicate_id"
	CodeUnknownID         = "unknown_id"
	CodeRateLimited       = "rate_limited"
	CodeInternal          = "internal"
)

// maxIDLen bounds a subscription id.
const maxIDLen = 128

// errBadMessage is a message that is not what the protocol allows; its
// text is for the client.
type errBadMessage struct{ msg string }

func (e *errBadMessage) Error() string { return e.msg }

func badMessage(format string, args ...any) error {
	return &errBadMessage{msg: fmt.Sprintf(format, args...)}
}

// DecodeClientMessage reads one client message strictly: one JSON object,
// known fields only, and the fields its type needs.
func DecodeClientMessage(data []byte) (ClientMessage, error) {
	var m ClientMessage
	if !utf8.Valid(data) {
		return m, badMessage("the message is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return m, badMessage("the message is not valid JSON (at byte %d)", syn.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return m, badMessage("the message is not valid JSON (it ends early)")
		case errors.As(err, &typ) && typ.Field != "":
			return m, badMessage("field %q must be %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return m, badMessage("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return m, badMessage("the message must be a JSON object like {\"type\":\"subscribe\",...}")
	}
	if dec.More() {
		return m, badMessage("send one JSON object per message")
	}
	if _, err := dec.Token(); err == nil {
		return m, badMessage("send one JSON object per message")
	}
	switch m.Type {
	case "auth":
		if m.Token == "" {
			return m, badMessage("auth needs a token")
		}
	case "subscribe":
		if err := checkID(m.ID); err != nil {
			return m, err
		}
		if m.Topic == "" {
			return m, badMessage("subscribe needs a topic, like collection:todos or record:todos:<id>")
		}
		if m.Since != nil && *m.Since < 0 {
			return m, badMessage("since must be a seq the server sent (0 or more)")
		}
	case "unsubscribe":
		if err := checkID(m.ID); err != nil {
			return m, err
		}
	case "ping":
	case "":
		return m, badMessage("the message needs a type: auth, subscribe, unsubscribe or ping")
	default:
		return m, &errUnknownType{typ: m.Type}
	}
	return m, nil
}

type errUnknownType struct{ typ string }

func (e *errUnknownType) Error() string {
	t := e.typ
	if len(t) > 40 {
		t = t[:40] + "..."
	}
	return fmt.Sprintf("unknown message type %s: use auth, subscribe, unsubscribe or ping", strconv.Quote(t))
}

func checkID(id string) error {
	if id == "" {
		return badMessage("the message needs an id, which names the subscription")
	}
	if len(id) > maxIDLen {
		return badMessage("the id is longer than %d bytes", maxIDLen)
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "ptr", "int64":
		return "a number"
	}
	return k
}

// Topic is a parsed subscription topic.
type Topic struct {
	Collection string
	// RecordID is set for record:<collection>:<id> topics.
	RecordID string
}

// String renders the topic as clients write it.
func (t Topic) String() string {
	if t.RecordID != "" {
		return "record:" + t.Collection + ":" + t.RecordID
	}
	return "collection:" + t.Collection
}

// ParseTopic reads collection:<c> or record:<c>:<id>.
func ParseTopic(s string) (Topic, error) {
	kind, rest, _ := strings.Cut(s, ":")
	switch kind {
	case "collection":
		if !validName(rest) {
			return Topic{}, badMessage("topic %s: write collection:<name>", quoteShort(s))
		}
		return Topic{Collection: rest}, nil
	case "record":
		c, id, ok := strings.Cut(rest, ":")
		if !ok || !validName(c) || !isUUID(id) {
			return Topic{}, badMessage("topic %s: write record:<collection>:<uuid>", quoteShort(s))
		}
		return Topic{Collection: c, RecordID: strings.ToLower(id)}, nil
	}
	return Topic{}, badMessage("topic %s: write collection:<name> or record:<collection>:<id>", quoteShort(s))
}

func quoteShort(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// Server messages are built by hand into bytes: an event is encoded once
// and shared by every subscriber who sees the same record.

// ackMessage acknowledges a message; a subscribe's ack carries the
// position it starts from (seq < 0 leaves it out).
func ackMessage(id string, seq int64) []byte {
	switch {
	case id == "":
		return []byte(`{"type":"ack"}`)
	case seq < 0:
		return fmt.Appendf(nil, `{"type":"ack","id":%s}`, jsonString(id))
	}
	return fmt.Appendf(nil, `{"type":"ack","id":%s,"seq":%d}`, jsonString(id), seq)
}

func errorMessage(id, code, msg string) []byte {
	if id == "" {
		return fmt.Appendf(nil, `{"type":"error","code":%q,"message":%s}`, code, jsonString(msg))
	}
	return fmt.Appendf(nil, `{"type":"error","id":%s,"code":%q,"message":%s}`, jsonString(id), code, jsonString(msg))
}

func resyncMessage(id string, seq int64) []byte {
	return fmt.Appendf(nil, `{"type":"resync","id":%s,"seq":%d}`, jsonString(id), seq)
}

var pongMessage = []byte(`{"type":"pong"}`)

func jsonString(s string) string {
	b, _ := json.Marshal(s) //nolint:errcheck // strings always marshal
	return string(b)
}

// appendJSONString appends s as a JSON string. The ids of subscriptions
// are written in front of every event a socket sends: the plain ones go
// in as they are, without the two allocations of jsonString.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return append(buf, jsonString(s)...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
