package schema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ConfigJSONSchema is the JSON Schema of abe.yaml. It is published at
// /api/schema/config.json so editors can autocomplete the file.
//
//go:embed config.schema.json
var ConfigJSONSchema []byte

const configSchemaURL = "https://abe-stack.dev/schema/config.json"

// configSchema holds the compiled schema and its raw form, which answers
// "which keys are allowed here" for hints.
type configSchema struct {
	compiled *jsonschema.Schema
	raw      map[string]any
}

// compiledConfigSchema compiles the embedded schema once; it never
// changes, so every Parse shares it.
var compiledConfigSchema = sync.OnceValues(loadConfigSchema)

func loadConfigSchema() (*configSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ConfigJSONSchema))
	if err != nil {
		return nil, fmt.Errorf("parse embedded config schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(configSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("add embedded config schema: %w", err)
	}
	compiled, err := c.Compile(configSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile embedded config schema: %w", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(ConfigJSONSchema, &raw); err != nil {
		return nil, fmt.Errorf("read embedded config schema: %w", err)
	}
	return &configSchema{compiled: compiled, raw: raw}, nil
}

// validate checks v against the schema and turns every failure into a
// diagnostic at the offending key or value.
func (s *configSchema) validate(doc *document, v any) Diagnostics {
	err := s.compiled.Validate(v)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return Diagnostics{{Pos: doc.at(nil), Message: err.Error()}}
	}
	p := message.NewPrinter(language.English)
	var diags Diagnostics
	for _, leaf := range leaves(verr) {
		diags = append(diags, s.diagnose(doc, leaf, p)...)
	}
	return diags
}

func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func (s *configSchema) diagnose(doc *document, e *jsonschema.ValidationError, p *message.Printer) Diagnostics {
	path := e.InstanceLocation
	d := Diagnostic{Pos: doc.at(path), Path: pathString(path), Message: e.ErrorKind.LocalizedString(p)}
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		allowed := s.allowedKeys(path)
		var out Diagnostics
		for _, p := range k.Properties {
			key := append(slices.Clone(path), p)
			d := Diagnostic{Pos: doc.keyAt(key), Path: pathString(key), Message: fmt.Sprintf("unknown key %q", p)}
			if guess := Suggest(p, allowed); guess != "" {
				d.Hint = fmt.Sprintf("did you mean %q? ", guess)
			}
			d.Hint += "allowed here: " + strings.Join(allowed, ", ")
			out = append(out, d)
		}
		return out
	case *kind.Required:
		d.Pos = doc.keyAt(path)
		d.Message = "missing " + strings.Join(quoteAll(k.Missing), ", ")
		if slices.Contains(k.Missing, "type") {
			d.Hint = "give the field a type: " + typeList()
		} else {
			d.Hint = "add the missing key"
		}
	case *kind.Type:
		d.Message = fmt.Sprintf("expected %s, got %s", strings.Join(k.Want, " or "), k.Got)
		d.Hint = typeHint(k.Want)
	case *kind.Enum:
		var want []string
		for _, w := range k.Want {
			want = append(want, fmt.Sprint(w))
		}
		d.Message = fmt.Sprintf("%v is not one of %s", k.Got, strings.Join(want, ", "))
		if got, ok := k.Got.(string); ok {
			if guess := Suggest(got, want); guess != "" {
				d.Hint = fmt.Sprintf("did you mean %q?", guess)
			}
		}
		if len(path) > 0 && path[len(path)-1] == "type" && len(path) == 5 {
			d.Message = fmt.Sprintf("unknown field type %v", k.Got)
			d.Hint = strings.TrimSpace(d.Hint + " the field types are " + typeList())
		}
		if d.Hint == "" {
			d.Hint = "use one of " + strings.Join(want, ", ")
		}
	case *kind.Pattern:
		if strings.Contains(k.Want, "ms|s|m|h") {
			d.Message = fmt.Sprintf("invalid duration %q", k.Got)
			d.Hint = "write a number and a unit, like 30s, 15m, 168h or 7d"
		}
	case *kind.MinItems:
		d.Message = fmt.Sprintf("expected at least %d item(s), got %d", k.Want, k.Got)
		d.Hint = "add the missing items"
	case *kind.Minimum:
		d.Message = fmt.Sprintf("must be at least %s, not %s", k.Want.RatString(), k.Got.RatString())
		d.Hint = "choose a value within the allowed range"
	case *kind.Maximum:
		d.Message = fmt.Sprintf("must be at most %s, not %s", k.Want.RatString(), k.Got.RatString())
		d.Hint = "choose a value within the allowed range"
	case *kind.MinLength:
		d.Message = fmt.Sprintf("must have at least %d character(s), not %d", k.Want, k.Got)
		d.Hint = "write a longer value, or leave the key out for the default"
	case *kind.MaxLength:
		d.Message = fmt.Sprintf("must have at most %d characters, not %d", k.Want, k.Got)
		d.Hint = "shorten it"
	}
	return Diagnostics{d}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func typeList() string {
	names := make([]string, len(FieldTypes))
	for i, t := range FieldTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func typeHint(want []string) string {
	switch {
	case slices.Contains(want, "object"):
		return "write a mapping of keys here (indented lines of `key: value`)"
	case slices.Contains(want, "array"):
		return "write a list here, like [a, b] or lines starting with `- `"
	case slices.Contains(want, "boolean"):
		return "write true or false"
	case slices.Contains(want, "string"):
		return "write text; quote it if it looks like a number or a boolean"
	case slices.Contains(want, "integer"), slices.Contains(want, "number"):
		return "write a number"
	}
	return ""
}

// allowedKeys lists the keys the schema allows at an instance path, by
// walking properties, additionalProperties and items.
func (s *configSchema) allowedKeys(path []string) []string {
	node := s.raw
	for _, p := range path {
		node = s.deref(node)
		if props, ok := node["properties"].(map[string]any); ok {
			if child, ok := props[p].(map[string]any); ok {
				node = child
				continue
			}
		}
		if ap, ok := node["additionalProperties"].(map[string]any); ok {
			node = ap
			continue
		}
		if items, ok := node["items"].(map[string]any); ok {
			node = items
			continue
		}
		return nil
	}
	node = s.deref(node)
	props, _ := node["properties"].(map[string]any)
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *configSchema) deref(node map[string]any) map[string]any {
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok {
			return node
		}
		defs, _ := s.raw["$defs"].(map[string]any)
		next, ok := defs[name].(map[string]any)
		if !ok {
			return node
		}
		node = next
	}
}

// envSettings maps every ABE_<SECTION>_<KEY> variable to the path it
// overrides, derived from the schema so the two never disagree. Roles and
// collections are declarations, not settings, and have no variables.
func (s *configSchema) envSettings() map[string][]string {
	out := map[string][]string{}
	var walk func(node map[string]any, path []string)
	walk = func(node map[string]any, path []string) {
		node = s.deref(node)
		props, ok := node["properties"].(map[string]any)
		if !ok {
			if len(path) > 1 {
				out["ABE_"+strings.ToUpper(strings.Join(path, "_"))] = slices.Clone(path)
			}
			return
		}
		for k, child := range props {
			if len(path) == 0 && (k == "roles" || k == "collections") {
				continue
			}
			if c, ok := child.(map[string]any); ok {
				walk(c, append(path, k))
			}
		}
	}
	walk(s.raw, nil)
	return out
}

// sections lists the top-level keys.
func (s *configSchema) sections() []string {
	return s.allowedKeys(nil)
}
