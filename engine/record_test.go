package engine

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendString checks that appendString writes what json.Marshal
// writes, for every string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain title 123", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnewline\n", "\x00\x1f\x7f",
		"héllo wörld", "\u2028\u2029", "\xff\xfe invalid utf-8", "emoji 🦆"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		appendString(&buf, s)
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("appendString(%q) = %s, json.Marshal gives %s", s, buf.Bytes(), want)
		}
	})
}
