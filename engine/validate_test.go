package engine

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/abe-stack/abe/schema"
)

const messagesYAML = `
collections:
  people:
    fields:
      name:    { type: text, required: true, max: 5 }
      owner:   { type: relation, collection: users, required: true }
      pinned:  { type: bool }
      score:   { type: integer }
      seats:   { type: integer, min: 1, max: 1000 }
      salary:  { type: number, min: 0 }
      status:  { type: select, values: [draft, published] }
      labels:  { type: select, values: [red, green], many: true }
      friends: { type: relation, collection: users, many: true }
      due:     { type: timestamp }
      mail:    { type: email }
      site:    { type: url }
`

func messageValidators(t *testing.T) (create, update *validator) {
	t.Helper()
	cfg, err := schema.Parse("abe.yaml", []byte(messagesYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	co := newColl(cfg, cfg.Collection("people"))
	if co.create, err = newValidator(co, true); err != nil {
		t.Fatal(err)
	}
	if co.update, err = newValidator(co, false); err != nil {
		t.Fatal(err)
	}
	return co.create, co.update
}

// TestFieldMessages: every field error names what the field expects, for
// optional fields (whose schema also allows null) as for required ones.
func TestFieldMessages(t *testing.T) {
	t.Parallel()
	create, update := messageValidators(t)
	const owner = `"owner":"018f0000-0000-7000-8000-000000000001"`
	for _, tc := range []struct {
		name   string
		create bool
		body   string
		want   map[string]string
	}{
		{"bool", false, `{"pinned":"yes"}`, map[string]string{"pinned": "must be true or false"}},
		{"fraction in an integer", false, `{"score":1.5}`, map[string]string{"score": "must be a whole number from -9007199254740991 to 9007199254740991"}},
		{"integer past 2^53", false, `{"score":9007199254740993}`, map[string]string{"score": "must be a whole number from -9007199254740991 to 9007199254740991"}},
		{"integer below -2^53", false, `{"score":-1e17}`, map[string]string{"score": "must be a whole number from -9007199254740991 to 9007199254740991"}},
		{"integer as text", false, `{"score":"3"}`, map[string]string{"score": "must be a whole number from -9007199254740991 to 9007199254740991"}},
		{"bounded integer", false, `{"seats":0}`, map[string]string{"seats": "must be a whole number from 1 to 1000"}},
		{"bounded integer, fraction", false, `{"seats":2.5}`, map[string]string{"seats": "must be a whole number from 1 to 1000"}},
		{"number as text", false, `{"salary":"x"}`, map[string]string{"salary": "must be a number"}},
		{"number below min", false, `{"salary":-1}`, map[string]string{"salary": "must be at least 0"}},
		{"select", false, `{"status":"bogus"}`, map[string]string{"status": "must be one of: draft, published"}},
		{"select as number", false, `{"status":3}`, map[string]string{"status": "must be one of: draft, published"}},
		{"select list item", false, `{"labels":["red","blue"]}`, map[string]string{"labels[1]": "must be one of: red, green"}},
		{"select list not a list", false, `{"labels":"red"}`, map[string]string{"labels": "must be a list of values from: red, green"}},
		{"relation list item", false, `{"friends":[5]}`, map[string]string{"friends[0]": "must be a record id (a UUID)"}},
		{"relation list not a list", false, `{"friends":{}}`, map[string]string{"friends": "must be a list of record ids (UUIDs)"}},
		{"timestamp", false, `{"due":7}`, map[string]string{"due": "must be a date-time like 2024-01-31T09:00:00Z"}},
		{"email", false, `{"mail":"nope"}`, map[string]string{"mail": "must be an email address"}},
		{"url as number", false, `{"site":1}`, map[string]string{"site": "must be an http(s) URL"}},
		{"text", false, `{"name":true}`, map[string]string{"name": "must be a string"}},
		{"text too long", false, `{"name":"abcdef"}`, map[string]string{"name": "must be at most 5 characters"}},
		{"required relation null", false, `{"owner":null}`, map[string]string{"owner": "is required"}},
		{"required text null", false, `{"name":null}`, map[string]string{"name": "is required"}},
		{"required missing on create", true, `{"pinned":true}`, map[string]string{"name": "is required", "owner": "is required"}},
		{"several at once", true, `{"name":"x",` + owner + `,"pinned":"yes","score":1.5,"salary":"x","status":"bogus"}`, map[string]string{
			"pinned": "must be true or false",
			"salary": "must be a number",
			"score":  "must be a whole number from -9007199254740991 to 9007199254740991",
			"status": "must be one of: draft, published",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := update
			if tc.create {
				v = create
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(tc.body), &body); err != nil {
				t.Fatal(err)
			}
			_, err := v.check(body)
			var be *bodyError
			if !errors.As(err, &be) {
				t.Fatalf("got %v, want a bodyError", err)
			}
			got := map[string]string{}
			for _, f := range be.fields {
				got[f.Field] = f.Message
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

// TestOptionalNullsAccepted: null clears every optional field, lists too.
func TestOptionalNullsAccepted(t *testing.T) {
	t.Parallel()
	_, update := messageValidators(t)
	body := map[string]any{"pinned": nil, "score": nil, "status": nil, "labels": nil, "friends": nil, "due": nil, "mail": nil}
	rec, err := update.check(body)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := rec["labels"].([]string); !ok || len(l) != 0 {
		t.Errorf("labels = %#v, want an empty list", rec["labels"])
	}
}
