package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads and checks the configuration file at path, expanding ${VAR}
// references and applying ABE_<SECTION>_<KEY> overrides from the process
// environment. A file with problems returns Diagnostics listing all of them.
func Load(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.Environ())
}

// LoadPartial is Load for tools that report problems rather than run: it
// returns every problem of the file and the configuration decoded as far
// as they allow, so that later checks (the rules) can run and report
// theirs in the same run. The configuration is nil when the file is not
// YAML; err is for a file that cannot be read.
func LoadPartial(path string) (*Config, Diagnostics, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, nil, err
	}
	return ParsePartial(path, data, os.Environ())
}

// ParsePartial is Parse for tools that report problems; see LoadPartial.
func ParsePartial(file string, data []byte, env []string) (*Config, Diagnostics, error) {
	return parse(file, data, env)
}

func readConfig(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("read config: %s does not exist (run `abe init` to create one, or pass --config FILE)", path)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	return data, nil
}

// Parse checks the configuration in data, which was read from file, against
// the environment env (os.Environ's form: KEY=value).
func Parse(file string, data []byte, env []string) (*Config, error) {
	cfg, diags, err := parse(file, data, env)
	if err != nil {
		return nil, err
	}
	if len(diags) > 0 {
		return nil, diags
	}
	return cfg, nil
}

func parse(file string, data []byte, env []string) (*Config, Diagnostics, error) {
	cs, err := compiledConfigSchema()
	if err != nil {
		return nil, nil, err
	}
	doc, diags := parseDocument(file, data)
	if diags != nil {
		return nil, diags, nil
	}
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	doc.expandEnv(doc.root, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	diags = append(diags, applyOverrides(doc, cs, vars)...)

	value := doc.toValue(doc.root, nil, &diags)
	diags = append(diags, cs.validate(doc, value)...)

	// Decode and check the meaning even when the shape is wrong, so one run
	// reports every problem; a semantic complaint about a value whose shape
	// was already reported would only repeat it.
	doc.values = 0 // decode expands no more than the file, which fit
	cfg, decodeDiags := decode(doc)
	cfg.File = file
	cfg.withDefaults()
	if len(diags) == 0 {
		diags = decodeDiags
	}
	for _, d := range check(doc, cfg) {
		if !coveredBy(d, diags) {
			diags = append(diags, d)
		}
	}
	return cfg, diags.sorted(), nil
}

// applyOverrides sets every ABE_<SECTION>_<KEY> variable that names a
// setting. A variable that names a section but no setting in it is
// reported, since it is almost always a typo.
func applyOverrides(doc *document, cs *configSchema, vars map[string]string) Diagnostics {
	settings := cs.envSettings()
	sections := cs.sections()
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var diags Diagnostics
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, "ABE_")
		if !ok {
			continue
		}
		path, ok := settings[name]
		if !ok {
			section, _, _ := strings.Cut(strings.ToLower(rest), "_")
			if slices.Contains(sections, section) && section != "roles" && section != "collections" {
				known := []string{}
				for k := range settings {
					if strings.HasPrefix(k, "ABE_"+strings.ToUpper(section)+"_") {
						known = append(known, k)
					}
				}
				sort.Strings(known)
				d := Diagnostic{Pos: Pos{File: doc.file, Env: name}, Message: fmt.Sprintf("environment variable %s names no setting", name)}
				if guess := Suggest(name, known); guess != "" {
					d.Hint = fmt.Sprintf("did you mean %s? ", guess)
				}
				d.Hint += "settings of " + section + ": " + strings.Join(known, ", ")
				diags = append(diags, d)
			}
			continue
		}
		if err := doc.override(path, name, vars[name]); err != nil {
			diags = append(diags, Diagnostic{Pos: Pos{File: doc.file, Env: name}, Path: pathString(path), Message: err.Error(), Hint: "set it to a plain value"})
		}
	}
	return diags
}

// rawField is a field as written; Default keeps its node for positions.
type rawField struct {
	Type        FieldType `yaml:"type"`
	Required    bool      `yaml:"required"`
	Unique      bool      `yaml:"unique"`
	Many        bool      `yaml:"many"`
	Default     yaml.Node `yaml:"default"`
	Nullable    bool      `yaml:"nullable"`
	Min         *float64  `yaml:"min"`
	Max         *float64  `yaml:"max"`
	Pattern     string    `yaml:"pattern"`
	Values      []string  `yaml:"values"`
	Collection  string    `yaml:"collection"`
	OnDelete    string    `yaml:"on_delete"`
	RenamedFrom string    `yaml:"renamed_from"`
	MaxSize     ByteSize  `yaml:"max_size"`
	MIMETypes   []string  `yaml:"mime_types"`
}

type rawIndex struct {
	Fields []string `yaml:"fields"`
	Unique bool     `yaml:"unique"`
	Name   string   `yaml:"name"`
}

type rawRole struct {
	Description string   `yaml:"description"`
	Permissions []string `yaml:"permissions"`
	Default     bool     `yaml:"default"`
}

// decode turns a schema-valid document into a Config. Mappings whose order
// matters (collections, fields, roles) are walked by hand.
func decode(doc *document) (*Config, Diagnostics) {
	// Settings whose zero value is meaningful get their default before the
	// file is decoded over them.
	cfg := &Config{Auth: Auth{Password: Password{MinScore: 3}}}
	var diags Diagnostics
	into := func(path []string, n *yaml.Node, v any) {
		if err := resolve(n).Decode(v); err != nil {
			diags = append(diags, Diagnostic{Pos: doc.pos(n), Path: pathString(path), Message: strings.TrimPrefix(err.Error(), "yaml: "), Hint: "see config.example.yaml for this setting's form"})
		}
	}
	if _, n := lookup(doc.root, []string{"server"}); n != nil {
		into([]string{"server"}, n, &cfg.Server)
	}
	if _, n := lookup(doc.root, []string{"database"}); n != nil {
		into([]string{"database"}, n, &cfg.Database)
	}
	if _, n := lookup(doc.root, []string{"auth"}); n != nil {
		into([]string{"auth"}, n, &cfg.Auth)
	}
	if _, n := lookup(doc.root, []string{"mail"}); n != nil {
		into([]string{"mail"}, n, &cfg.Mail)
	}
	if _, n := lookup(doc.root, []string{"realtime"}); n != nil {
		into([]string{"realtime"}, n, &cfg.Realtime)
	}
	if _, n := lookup(doc.root, []string{"storage"}); n != nil {
		into([]string{"storage"}, n, &cfg.Storage)
	}
	if _, n := lookup(doc.root, []string{"jobs"}); n != nil {
		into([]string{"jobs"}, n, &cfg.Jobs)
	}
	if _, n := lookup(doc.root, []string{"hosting"}); n != nil {
		into([]string{"hosting"}, n, &cfg.Hosting)
	}
	if _, n := lookup(doc.root, []string{"webhooks"}); n != nil {
		into([]string{"webhooks"}, n, &cfg.Webhooks)
	}
	if _, roles := lookup(doc.root, []string{"roles"}); roles != nil {
		for _, e := range entries(resolve(roles)) {
			k, v := e[0], e[1]
			var r rawRole
			into([]string{"roles", k.Value}, v, &r)
			cfg.Roles = append(cfg.Roles, &Role{Name: k.Value, Description: r.Description, Permissions: r.Permissions, Default: r.Default, Pos: doc.pos(k)})
		}
	}
	if _, cols := lookup(doc.root, []string{"collections"}); cols != nil {
		for _, e := range entries(resolve(cols)) {
			cfg.Collections = append(cfg.Collections, decodeCollection(doc, e[0], resolve(e[1]), into))
		}
	}
	return cfg, diags
}

func decodeCollection(doc *document, key, n *yaml.Node, into func([]string, *yaml.Node, any)) *Collection {
	c := &Collection{Name: key.Value, Pos: doc.pos(key)}
	base := []string{"collections", c.Name}
	if _, fields := lookup(n, []string{"fields"}); fields != nil {
		for _, e := range entries(resolve(fields)) {
			fk, fv := e[0], resolve(e[1])
			var rf rawField
			into(append(base, "fields", fk.Value), fv, &rf)
			f := &Field{
				Name: fk.Value, Type: rf.Type, Required: rf.Required, Unique: rf.Unique, Many: rf.Many, Nullable: rf.Nullable,
				Min: rf.Min, Max: rf.Max, Pattern: rf.Pattern, Values: rf.Values,
				Collection: rf.Collection, OnDelete: rf.OnDelete, RenamedFrom: rf.RenamedFrom,
				MaxSize: int64(rf.MaxSize), MIMETypes: rf.MIMETypes,
				Pos: doc.pos(fk),
			}
			if _, dv := lookup(fv, []string{"default"}); dv != nil {
				var none Diagnostics
				f.Default = doc.toValue(dv, nil, &none)
			}
			f.Rules.Read = ruleAt(doc, fv, "rules", "read")
			f.Rules.Update = ruleAt(doc, fv, "rules", "update")
			c.Fields = append(c.Fields, f)
		}
	}
	if _, idx := lookup(n, []string{"indexes"}); idx != nil && resolve(idx).Kind == yaml.SequenceNode {
		for i, item := range resolve(idx).Content {
			var ri rawIndex
			into(append(base, "indexes", fmt.Sprint(i)), item, &ri)
			c.Indexes = append(c.Indexes, &Index{Name: ri.Name, Fields: ri.Fields, Unique: ri.Unique, Pos: doc.pos(item)})
		}
	}
	c.Rules = Rules{
		List:   ruleAt(doc, n, "rules", "list"),
		Read:   ruleAt(doc, n, "rules", "read"),
		Create: ruleAt(doc, n, "rules", "create"),
		Update: ruleAt(doc, n, "rules", "update"),
		Delete: ruleAt(doc, n, "rules", "delete"),
	}
	if _, rt := lookup(n, []string{"realtime"}); rt != nil {
		into(append(base, "realtime"), rt, &c.Realtime)
	}
	if _, rf := lookup(n, []string{"renamed_from"}); rf != nil {
		into(append(base, "renamed_from"), rf, &c.RenamedFrom)
	}
	if _, hooks := lookup(n, []string{"webhooks"}); hooks != nil && resolve(hooks).Kind == yaml.SequenceNode {
		for i, item := range resolve(hooks).Content {
			w := &Webhook{Pos: doc.pos(item)}
			into(append(base, "webhooks", fmt.Sprint(i)), item, w)
			w.Filter = ruleAt(doc, resolve(item), "filter")
			c.Webhooks = append(c.Webhooks, w)
		}
	}
	return c
}

// entries lists the key/value pairs of a mapping, keeping the first of
// duplicate keys (the duplicates were reported when the file was read).
func entries(m *yaml.Node) [][2]*yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	var out [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode || seen[k.Value] {
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, m.Content[i+1]})
	}
	return out
}

func ruleAt(doc *document, n *yaml.Node, path ...string) *Rule {
	_, v := lookup(n, path)
	if v == nil {
		return nil
	}
	v = resolve(v)
	return &Rule{Expr: v.Value, Pos: doc.pos(v), Quoted: v.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0}
}

// Dir returns the directory of the configuration file: the project
// directory, where `abe dev` keeps .abe/.
func (c *Config) Dir() string {
	if c.File == "" {
		return "."
	}
	return filepath.Dir(c.File)
}
