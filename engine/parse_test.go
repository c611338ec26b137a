package engine

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/schema"
)

// exampleColls builds the collections of config.example.yaml with their
// validators, without a database.
func exampleColls(t testing.TB) map[string]*coll {
	t.Helper()
	src, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Parse("abe.yaml", src, []string{"ABE_AUTH_SECRET=" + strings.Repeat("s", 40)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*coll{}
	for _, c := range cfg.Collections {
		co := newColl(cfg, c)
		if co.create, err = newValidator(co, true); err != nil {
			t.Fatal(err)
		}
		if co.update, err = newValidator(co, false); err != nil {
			t.Fatal(err)
		}
		out[c.Name] = co
	}
	return out
}

func TestCursorRoundTrip(t *testing.T) {
	co := exampleColls(t)["projects"]
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	rec := Record{"id": "018f0000-0000-7000-8000-000000000001", "version": int64(3), "created_at": at, "updated_at": at,
		"name": "Garden", "budget": 12.5, "seats": int64(4), "public": true, "status": nil}
	for _, sort := range []string{"", "name", "-budget,name", "seats,-public", "status", "-updated_at,id", "version"} {
		keys, err := parseSort(co, sort)
		if err != nil {
			t.Fatalf("sort %q: %v", sort, err)
		}
		vals, err := decodeCursor(keys, encodeCursor(keys, rec, nil))
		if err != nil {
			t.Fatalf("sort %q: %v", sort, err)
		}
		for i, k := range keys {
			if !reflect.DeepEqual(vals[i], rec[k.col.name]) {
				t.Errorf("sort %q: %s came back %#v, want %#v", sort, k.col.name, vals[i], rec[k.col.name])
			}
		}
		// A cursor of another sort is refused, not misread.
		other, _ := parseSort(co, "-seats")
		if sortString(other) != sortString(keys) {
			if _, err := decodeCursor(other, encodeCursor(keys, rec, nil)); err == nil {
				t.Errorf("a cursor of sort %q was accepted for %q", sort, sortString(other))
			}
		}
	}
}

func TestParseSortErrors(t *testing.T) {
	co := exampleColls(t)["projects"]
	for sort, want := range map[string]string{
		"nope":          "no field",
		"name,,budget":  "empty key",
		"settings":      "cannot be sorted",
		"members":       "cannot be sorted",
		"name,-name":    "twice",
		"a,b,c,d,e,f,g": "no field",
	} {
		if _, err := parseSort(co, sort); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("sort %q: %v, want %q", sort, err, want)
		}
	}
}

// FuzzCursor feeds the list query's sort and cursor parsers: they refuse
// or accept, never panic, and an accepted cursor has a value of the
// column's type (or null) for every key.
func FuzzCursor(f *testing.F) {
	co := exampleColls(f)["projects"]
	f.Add("-created_at", "")
	f.Add("name,-budget", "eyJzb3J0IjoibmFtZSwtYnVkZ2V0LC1pZCIsInZhbHVlcyI6WyJhIiwxLjUsIngiXX0")
	f.Add("seats", "eyJzIjoxfQ")
	f.Add("status,-id", "bnVsbA")
	f.Fuzz(func(t *testing.T, sort, cur string) {
		keys, err := parseSort(co, sort)
		if err != nil {
			return
		}
		if orderBy(keys) == "" || keys[len(keys)-1].col.name != "id" && !strings.Contains(sort, "id") {
			t.Fatalf("sort %q: order %q", sort, orderBy(keys))
		}
		vals, err := decodeCursor(keys, cur)
		if err != nil {
			return
		}
		for i, k := range keys {
			if vals[i] == nil {
				if !k.col.nullable {
					t.Fatalf("null accepted for %s", k.col.name)
				}
				continue
			}
			if !kindHolds(k.col.kind, vals[i]) {
				t.Fatalf("cursor value %#v for %s (%s)", vals[i], k.col.name, k.col.kind)
			}
		}
	})
}

// FuzzCheck feeds request bodies to the create and update validators:
// they refuse or accept, never panic, and what they accept has the Go
// type of each column.
func FuzzCheck(f *testing.F) {
	colls := exampleColls(f)
	f.Add("projects", `{"name":"x","owner":"018f0000-0000-7000-8000-000000000001","members":[],"budget":1.5}`)
	f.Add("todos", `{"project":"018f0000-0000-7000-8000-000000000001","title":"t","tags":["a"],"due":"2026-01-02T03:04:05Z"}`)
	f.Add("projects", `{"settings":{"a":[1,{"b":null}]},"seats":3,"public":false,"labels":["red"]}`)
	f.Add("todos", `{"title":null,"done":"yes"}`)
	f.Fuzz(func(t *testing.T, collection, body string) {
		co := colls[collection]
		if co == nil {
			return
		}
		var m map[string]any
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		for _, v := range []*validator{co.create, co.update} {
			rec, err := v.check(m)
			if err != nil {
				continue
			}
			for name, val := range rec {
				c := co.byName[name]
				if val != nil && !kindHolds(c.kind, val) {
					t.Fatalf("%s accepted %#v for %s (%s)", collection, val, name, c.kind)
				}
			}
		}
	})
}

func kindHolds(kind string, v any) bool {
	switch kind {
	case "uuid":
		s, ok := v.(string)
		return ok && isUUID(s)
	case "text":
		_, ok := v.(string)
		return ok
	case "int":
		_, ok := v.(int64)
		return ok
	case "float":
		_, ok := v.(float64)
		return ok
	case "bool":
		_, ok := v.(bool)
		return ok
	case "time":
		_, ok := v.(time.Time)
		return ok
	case "list":
		_, ok := v.([]string)
		return ok
	}
	return true // json: anything encoding/json decodes
}
