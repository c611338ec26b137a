package realtime

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeClientMessage(t *testing.T) {
	t.Parallel()
	since := int64(7)
	ok := []struct {
		in   string
		want ClientMessage
	}{
		{`{"type":"ping"}`, ClientMessage{Type: "ping"}},
		{` {"type":"auth","token":"abc"} `, ClientMessage{Type: "auth", Token: "abc"}},
		{`{"type":"subscribe","id":"s1","topic":"collection:todos","filter":"done = false","since":7}`,
			ClientMessage{Type: "subscribe", ID: "s1", Topic: "collection:todos", Filter: "done = false", Since: &since}},
		{`{"type":"unsubscribe","id":"s1"}`, ClientMessage{Type: "unsubscribe", ID: "s1"}},
	}
	for _, c := range ok {
		got, err := DecodeClientMessage([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.in, got, c.want)
		}
	}
	bad := []struct{ in, want string }{
		{`{"type":"ping"`, "not valid JSON"},
		{`not json`, "not valid JSON"},
		{"\xff\xfe", "not UTF-8"},
		{`[1,2]`, "must be a JSON object"},
		{`"ping"`, "must be a JSON object"},
		{`{"type":"ping"}{"type":"ping"}`, "one JSON object per message"},
		{`{"type":"ping"} x`, "one JSON object per message"},
		{`{"type":"ping","extra":1}`, `unknown field "extra"`},
		{`{"type":1}`, `field "type" must be a string`},
		{`{"type":"subscribe","id":"a","topic":"collection:t","since":"1"}`, `field "since" must be a number`},
		{`{"type":"subscribe","id":"a","topic":"collection:t","since":-1}`, "since must be"},
		{`{}`, "needs a type"},
		{`null`, "needs a type"},
		{`{"type":"subscribe","topic":"collection:t"}`, "needs an id"},
		{`{"type":"subscribe","id":"` + strings.Repeat("x", 129) + `","topic":"collection:t"}`, "longer than 128"},
		{`{"type":"subscribe","id":"a"}`, "needs a topic"},
		{`{"type":"unsubscribe"}`, "needs an id"},
		{`{"type":"auth"}`, "needs a token"},
		{`{"type":"shout"}`, `unknown message type "shout"`},
	}
	for _, c := range bad {
		_, err := DecodeClientMessage([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got error %v, want one saying %q", c.in, err, c.want)
		}
	}
}

func TestParseTopic(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Topic{
		"collection:todos": {Collection: "todos"},
		"record:todos:0190A3C4-0000-7000-8000-000000000001": {Collection: "todos", RecordID: "0190a3c4-0000-7000-8000-000000000001"},
	} {
		got, err := ParseTopic(in)
		if err != nil || got != want {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "todos", "collection:", "collection:Todos", "collection:todos:x", "record:todos",
		"record:todos:not-a-uuid", "record::0190a3c4-0000-7000-8000-000000000001", "table:todos", "collection:" + strings.Repeat("a", 64)} {
		if got, err := ParseTopic(in); err == nil {
			t.Errorf("ParseTopic(%q) = %+v, want an error", in, got)
		}
	}
}

// FuzzClientMessage feeds arbitrary bytes to the decoder and the topic
// parser: no panic, every error is one for the client, what decodes
// survives a round trip, and every server message built from what a
// client sent is valid JSON.
func FuzzClientMessage(f *testing.F) {
	for _, s := range []string{`{"type":"ping"}`, `{"type":"auth","token":"t"}`,
		`{"type":"subscribe","id":"s","topic":"collection:todos","filter":"done = true","since":3}`,
		`{"type":"subscribe","id":"s","topic":"record:todos:0190a3c4-0000-7000-8000-000000000001"}`,
		`{"type":"unsubscribe","id":"s"}`, `{"type":"x"}`, `{"type":"ping"}{}`, `{"id":"\ud800"}`, "\xff", `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClientMessage(data)
		if err != nil {
			var bm *errBadMessage
			var ut *errUnknownType
			if !errors.As(err, &bm) && !errors.As(err, &ut) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if msg := errorMessage(m.ID, CodeBadMessage, err.Error()); !json.Valid(msg) {
				t.Fatalf("error message is not JSON: %s", msg)
			}
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeClientMessage(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", again, m2, err, m)
		}
		for _, msg := range [][]byte{ackMessage(m.ID, 1), ackMessage(m.ID, -1), resyncMessage(m.ID, 2)} {
			if !json.Valid(msg) {
				t.Fatalf("server message is not JSON: %s", msg)
			}
		}
		topic, err := ParseTopic(m.Topic)
		if err != nil {
			var bm *errBadMessage
			if !errors.As(err, &bm) {
				t.Fatalf("topic error of type %T", err)
			}
			return
		}
		if back, err := ParseTopic(topic.String()); err != nil || back != topic {
			t.Fatalf("topic %q parsed to %+v, which renders %q and parses to %+v, %v", m.Topic, topic, topic.String(), back, err)
		}
	})
}

// TestAppendJSONString: the fast path writes what json.Marshal writes.
// Not parallel: it counts allocations.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "s", "sub-1_a.b", "quote\"d", `back\slash`, "tab\t", "<b>&", "é", "\u2028", "\x7f", string([]byte{0xff})} {
		if got, want := string(appendJSONString([]byte("x"), s)), "x"+jsonString(s); got != want {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = appendJSONString(buf[:0], "sub-1") }); n != 0 {
		t.Errorf("a plain id costs %v allocations, want 0", n)
	}
}
