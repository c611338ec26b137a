package engine

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/abe-stack/abe/schema"
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

// TestSlotsJSON: a row written straight from its scanned slots (the list's
// direct path) is byte for byte what appendJSON writes of its Record, for
// every kind of column, null or not, with and without a projection.
func TestSlotsJSON(t *testing.T) {
	t.Parallel()
	cfg, err := schema.Parse("abe.yaml", []byte(messagesYAML+"      data:    { type: json }\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	co := newColl(cfg, cfg.Collection("people"))
	east := time.FixedZone("east", 5*3600)
	fill := func(sc *scanner, null bool, variant int) {
		for i := range co.columns {
			c, sl := &co.columns[i], &sc.slots[i]
			*sl = slot{}
			if null {
				continue
			}
			switch c.kind {
			case "uuid", "text":
				sl.s = pgtype.Text{String: []string{"plain", `q"uote <b>&`, "héllo\n", ""}[variant%4], Valid: true}
			case "int":
				sl.i = pgtype.Int8{Int64: []int64{0, -42, math.MaxInt64, 9007199254740993}[variant%4], Valid: true}
			case "float":
				sl.f = pgtype.Float8{Float64: []float64{0.1, -1e300, math.Inf(1), math.NaN()}[variant%4], Valid: true}
			case "bool":
				sl.b = pgtype.Bool{Bool: variant%2 == 0, Valid: true}
			case "time":
				sl.t = pgtype.Timestamptz{Time: time.Date(2026, 12, 4, 21, 0, 0, variant*1000, east), Valid: true}
			case "list":
				sl.l = [][]string{{"a", "b"}, {}, {`"x"`}, nil}[variant%4]
			case "json":
				sl.j = []any{map[string]any{"k": []any{1.5, "<"}}, "s", nil, true}[variant%4]
			}
		}
	}
	sc := co.newScanner()
	for _, fields := range [][]string{nil, {}, {"name", "due", "data"}} {
		for variant := range 4 {
			for _, null := range []bool{false, true} {
				fill(sc, null, variant)
				var got, want bytes.Buffer
				if err := co.appendSlotsJSON(&got, sc, fields); err != nil {
					t.Fatal(err)
				}
				if err := co.appendJSON(&want, co.record(sc), &view{fields: fields}); err != nil {
					t.Fatal(err)
				}
				if got.String() != want.String() {
					t.Errorf("fields %v, variant %d, null %v:\n got %s\nwant %s", fields, variant, null, got.String(), want.String())
				}
			}
		}
	}
}
