package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// filterVectorDir holds the filter vectors shared with the TypeScript SDK,
// whose compileFilter evaluates filters on the client (sdk/js/src/filter.ts).
const filterVectorDir = "../testdata/filters"

// filterVectorYAML is the collection the vectors' filters are compiled for;
// testdata/filters/README.md lists its fields.
const filterVectorYAML = `
collections:
  items:
    fields:
      title:   { type: text, required: true }
      note:    { type: text }
      count:   { type: integer }
      score:   { type: number }
      done:    { type: bool }
      active:  { type: bool, required: true }
      status:  { type: select, values: [open, closed, draft] }
      labels:  { type: select, many: true, values: [red, green, blue] }
      owner:   { type: relation, collection: users }
      members: { type: relation, collection: users, many: true }
      due:     { type: timestamp }
      meta:    { type: json }
      email:   { type: email }
    rules:
      list: "true"
      read: "true"
`

type filterVectorFile struct {
	Description string             `json:"description"`
	Cases       []filterVectorCase `json:"cases"`
}

type filterVectorCase struct {
	Name   string          `json:"name"`
	Filter string          `json:"filter"`
	Record json.RawMessage `json:"record"`
	Auth   *struct {
		ID    string   `json:"id"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	} `json:"auth"`
	Now string `json:"now"`
	// Fields is the field-type map the client is given; the server knows
	// the types from the schema.
	Fields map[string]string `json:"fields"`
	Want   *bool             `json:"want"`
	Server *bool             `json:"server"`
	Error  bool              `json:"error"`
}

func loadFilterVectors(t *testing.T) map[string]filterVectorFile {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(filterVectorDir, "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no vector files in %s (err %v)", filterVectorDir, err)
	}
	out := map[string]filterVectorFile{}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		var f filterVectorFile
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[filepath.Base(name)] = f
	}
	return out
}

// vectorRecord turns a vector's JSON record into the Go values realtime
// hands Filter.Match (see Input.Record): int64 for integers, time.Time for
// timestamps, []string for lists. A field the record leaves out is null
// (an empty list for list fields), as a stored row has every field.
func vectorRecord(raw json.RawMessage) (map[string]any, error) {
	var in map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return nil, err
	}
	kinds := map[string]string{
		"id": "text", "version": "int", "created_at": "time", "updated_at": "time",
		"title": "text", "note": "text", "count": "int", "score": "float", "done": "bool", "active": "bool",
		"status": "text", "labels": "list", "owner": "text", "members": "list", "due": "time", "meta": "json", "email": "text",
	}
	rec := map[string]any{}
	for name, kind := range kinds {
		v, ok := in[name]
		if !ok || v == nil {
			if kind == "list" {
				rec[name] = []string{}
			} else {
				rec[name] = nil
			}
			continue
		}
		var err error
		switch kind {
		case "int":
			n, isNum := v.(json.Number)
			if !isNum {
				return nil, fmt.Errorf("%s: %v is not an integer", name, v)
			}
			rec[name], err = n.Int64()
		case "float":
			n, isNum := v.(json.Number)
			if !isNum {
				return nil, fmt.Errorf("%s: %v is not a number", name, v)
			}
			rec[name], err = n.Float64()
		case "time":
			s, isStr := v.(string)
			if !isStr {
				return nil, fmt.Errorf("%s: %v is not a timestamp", name, v)
			}
			var t time.Time
			t, err = time.Parse(time.RFC3339Nano, s)
			rec[name] = t.UTC()
		case "list":
			items, isList := v.([]any)
			if !isList {
				return nil, fmt.Errorf("%s: %v is not a list", name, v)
			}
			l := make([]string, 0, len(items))
			for _, it := range items {
				s, isStr := it.(string)
				if !isStr {
					return nil, fmt.Errorf("%s: %v is not a list of strings", name, v)
				}
				l = append(l, s)
			}
			rec[name] = l
		case "json":
			rec[name] = plainJSON(v)
		case "bool":
			if _, isBool := v.(bool); !isBool {
				return nil, fmt.Errorf("%s: %v is not a bool", name, v)
			}
			rec[name] = v
		default:
			if _, isStr := v.(string); !isStr {
				return nil, fmt.Errorf("%s: %v is not a string", name, v)
			}
			rec[name] = v
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	for name := range in {
		if _, ok := kinds[name]; !ok {
			return nil, fmt.Errorf("no field %q in the vectors' collection", name)
		}
	}
	return rec, nil
}

// plainJSON is v as encoding/json decodes it without UseNumber, as a json
// column reads.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = plainJSON(it)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[k] = plainJSON(it)
		}
		return out
	}
	return v
}

// TestFilterVectors runs the shared filter vectors through Filter.Match, as
// realtime does: a case's definite want (and its server answer, when it
// gives one) must be the server's answer, and an error case must not
// compile. ABE_FILTER_VECTORS_PRINT=1 prints every server answer.
func TestFilterVectors(t *testing.T) {
	t.Parallel()
	e := engine(t, filterVectorYAML)
	print := os.Getenv("ABE_FILTER_VECTORS_PRINT") != ""
	names := map[string]bool{}
	total := 0
	for file, f := range loadFilterVectors(t) {
		if f.Description == "" {
			t.Errorf("%s: no description", file)
		}
		for _, c := range f.Cases {
			total++
			if c.Name == "" || names[c.Name] {
				t.Errorf("%s: case name %q is empty or repeated", file, c.Name)
			}
			names[c.Name] = true
			t.Run(c.Name, func(t *testing.T) {
				flt, err := e.Filter("items", c.Filter)
				if c.Error {
					var fe *FilterError
					if !errors.As(err, &fe) {
						t.Fatalf("filter %q: want a *FilterError, got %v", c.Filter, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("filter %q: %v", c.Filter, err)
				}
				rec, err := vectorRecord(c.Record)
				if err != nil {
					t.Fatalf("record: %v", err)
				}
				in := &Input{Record: rec}
				if c.Auth != nil {
					in.Auth = &Principal{ID: c.Auth.ID, Email: c.Auth.Email, Roles: c.Auth.Roles}
				}
				if c.Now != "" {
					if in.Request.Time, err = time.Parse(time.RFC3339Nano, c.Now); err != nil {
						t.Fatalf("now: %v", err)
					}
				}
				got, err := flt.Match(in, nil)
				if err != nil {
					t.Fatalf("match: %v", err)
				}
				if print {
					t.Logf("%s server %v", c.Name, got)
				}
				if c.Want != nil && *c.Want != got {
					t.Errorf("filter %q on %s: want %v, the server says %v", c.Filter, c.Record, *c.Want, got)
				}
				if c.Want == nil && c.Server != nil && *c.Server != got {
					t.Errorf("filter %q on %s: server %v, the server says %v", c.Filter, c.Record, *c.Server, got)
				}
				if c.Want != nil && c.Server != nil {
					t.Errorf("a case with a definite want needs no server answer")
				}
			})
		}
	}
	if total < 150 {
		t.Errorf("%d vectors; keep at least 150", total)
	}
}
