package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// document is a parsed YAML file that remembers where every value came
// from, so each problem can be reported at its line and column.
type document struct {
	file string
	root *yaml.Node // a mapping node; never nil after parse
	// env records the nodes an ABE_* variable set, by variable name.
	env map[*yaml.Node]string
	// values counts what toValue has expanded, to stop alias bombs.
	values int
}

func parseDocument(file string, data []byte) (*document, Diagnostics) {
	doc := &document{file: file, env: map[*yaml.Node]string{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var top yaml.Node
	if err := dec.Decode(&top); err != nil {
		if errors.Is(err, io.EOF) {
			doc.root = &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
			return doc, nil
		}
		return nil, Diagnostics{syntaxDiagnostic(file, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Diagnostics{{
			Pos:     Pos{File: file, Line: extra.Line, Column: extra.Column},
			Message: "the file holds more than one YAML document",
			Hint:    "remove the second `---` and everything after it, or merge the documents",
		}}
	} else if !errors.Is(err, io.EOF) {
		return nil, Diagnostics{syntaxDiagnostic(file, data, err)}
	}
	root := &top
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			doc.root = &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
			return doc, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		doc.root = &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
		return doc, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, Diagnostics{{
			Pos:     doc.pos(root),
			Message: "the file must be a mapping of sections (server, database, auth, roles, collections)",
			Hint:    "start the file with a key such as `collections:`; see config.example.yaml",
		}}
	}
	doc.root = root
	return doc, nil
}

func (d *document) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file}
	}
	if env, ok := d.env[n]; ok {
		return Pos{File: d.file, Env: env}
	}
	return Pos{File: d.file, Line: n.Line, Column: n.Column}
}

// resolve follows aliases to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// lookup walks a path of keys and sequence indexes. It returns the key node
// of the last mapping entry (nil for sequence items) and the value node;
// both are nil when the path does not exist.
func lookup(root *yaml.Node, path []string) (key, value *yaml.Node) {
	value = root
	for _, p := range path {
		value = resolve(value)
		if value == nil {
			return nil, nil
		}
		switch value.Kind {
		case yaml.MappingNode:
			k, v := mapEntry(value, p)
			if v == nil {
				return nil, nil
			}
			key, value = k, v
		case yaml.SequenceNode:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(value.Content) {
				return nil, nil
			}
			key, value = nil, value.Content[i]
		default:
			return nil, nil
		}
	}
	return key, value
}

func mapEntry(m *yaml.Node, name string) (key, value *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// at returns the best position for a path: the value when it exists, else
// the nearest existing parent.
func (d *document) at(path []string) Pos {
	for i := len(path); i >= 0; i-- {
		if _, v := lookup(d.root, path[:i]); v != nil {
			return d.pos(v)
		}
	}
	return Pos{File: d.file, Line: 1, Column: 1}
}

// keyAt returns the position of the key that ends path, falling back to at.
func (d *document) keyAt(path []string) Pos {
	if k, _ := lookup(d.root, path); k != nil {
		return d.pos(k)
	}
	return d.at(path)
}

// maxValues bounds how many values a file may expand to. Aliases can
// repeat a value many times over ("billion laughs"); a real configuration
// stays far below this.
const maxValues = 200_000

// toValue converts a node to the plain values JSON Schema validates:
// map[string]any, []any, string, int64/float64, bool and nil. Duplicate
// keys are reported, since YAML would silently keep only one of them.
func (d *document) toValue(n *yaml.Node, path []string, diags *Diagnostics) any {
	d.values++
	if d.values > maxValues {
		if d.values == maxValues+1 {
			*diags = append(*diags, Diagnostic{Pos: d.pos(n), Path: pathString(path), Message: fmt.Sprintf("the file expands to more than %d values", maxValues), Hint: "aliases (*name) repeat what they point at; use fewer of them"})
		}
		return nil
	}
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		first := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				*diags = append(*diags, Diagnostic{Pos: d.pos(k), Path: pathString(path), Message: "keys must be plain names", Hint: "write the key as a name, like `title:`"})
				continue
			}
			if k.Value == "<<" {
				*diags = append(*diags, Diagnostic{Pos: d.pos(k), Path: pathString(path), Message: "YAML merge keys (<<) are not supported", Hint: "write the keys out, or reuse a whole value with an alias (*name)"})
				continue
			}
			if prev, dup := first[k.Value]; dup {
				*diags = append(*diags, Diagnostic{
					Pos:     d.pos(k),
					Path:    pathString(append(path, k.Value)),
					Message: fmt.Sprintf("%q is declared twice (first at line %d)", k.Value, prev.Line),
					Hint:    "remove or rename one of them",
				})
				continue
			}
			first[k.Value] = k
			m[k.Value] = d.toValue(v, append(path, k.Value), diags)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			s[i] = d.toValue(item, append(path, strconv.Itoa(i)), diags)
		}
		return s
	case yaml.ScalarNode:
		return scalarValue(n)
	}
	return nil
}

func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i
		}
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	case "!!timestamp":
		// Keep the text: a timestamp default is validated and rendered by
		// the field's own rules, not YAML's.
		return n.Value
	}
	return n.Value
}

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar. A plain
// (unquoted) scalar is re-typed after expansion, so `port: ${PORT}` is a
// number when PORT holds one.
func (d *document) expandEnv(n *yaml.Node, lookupEnv func(string) (string, bool)) {
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				continue // keys are names, never expanded
			}
			d.expandEnv(c, lookupEnv)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRefRE.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := envRefRE.FindStringSubmatch(ref)
			if v, ok := lookupEnv(m[1]); ok && v != "" {
				return v
			}
			return m[2]
		})
		switch {
		case n.Value == "":
			// An unset variable is an empty setting, not a null one.
			n.Tag = "!!str"
		case n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0:
			n.Tag = ""
		}
	}
}

// override sets the value at path (creating mappings on the way) to a YAML
// scalar or flow value read from an environment variable.
func (d *document) override(path []string, name, raw string) error {
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &val); err != nil {
		return fmt.Errorf("invalid value: %w", err)
	}
	// An empty variable clears the setting: it is empty text, not null.
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
	if val.Kind == yaml.DocumentNode && len(val.Content) == 1 {
		v = val.Content[0]
	}
	markEnv(d.env, v, name)
	m := d.root
	for i, p := range path {
		last := i == len(path)-1
		_, child := mapEntry(m, p)
		switch {
		case child == nil:
			k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}
			child = v
			if !last {
				child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			}
			markEnv(d.env, k, name)
			markEnv(d.env, child, name)
			m.Content = append(m.Content, k, child)
		case last:
			for j := 1; j < len(m.Content); j += 2 {
				if m.Content[j] == child {
					m.Content[j] = v
				}
			}
		case resolve(child).Kind != yaml.MappingNode:
			return fmt.Errorf("%s is not a section", pathString(path[:i+1]))
		}
		if !last {
			m = resolve(child)
		}
	}
	return nil
}

func markEnv(env map[*yaml.Node]string, n *yaml.Node, name string) {
	env[n] = name
	for _, c := range n.Content {
		markEnv(env, c, name)
	}
}

// timeOf parses the timestamp forms a default may use.
func timeOf(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp")
}
