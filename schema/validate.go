package schema

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// celReserved are words CEL refuses as identifiers; a field so named could
// never appear in a rule.
var celReserved = []string{"as", "break", "const", "continue", "else", "false", "for", "function", "if", "import", "in", "let", "loop", "package", "namespace", "null", "return", "true", "var", "void", "while"}

const maxIdentLen = 63 // Postgres truncates longer identifiers

// checker collects semantic problems: the ones a JSON Schema cannot see.
type checker struct {
	doc   *document
	cfg   *Config
	diags Diagnostics
}

func check(doc *document, cfg *Config) Diagnostics {
	c := &checker{doc: doc, cfg: cfg}
	c.checkServer()
	c.checkDatabase()
	c.checkAuth()
	c.checkRoles()
	for _, col := range cfg.Collections {
		c.checkCollection(col)
	}
	return c.diags
}

func (c *checker) add(path []string, atKey bool, msg, hint string, args ...any) {
	pos := c.doc.at(path)
	if atKey {
		pos = c.doc.keyAt(path)
	}
	c.diags = append(c.diags, Diagnostic{Pos: pos, Path: pathString(path), Message: fmt.Sprintf(msg, args...), Hint: hint})
}

func (c *checker) checkServer() {
	path := []string{"server", "listen"}
	_, port, err := net.SplitHostPort(c.cfg.Server.Listen)
	if err != nil {
		c.add(path, false, "%q is not a host:port address", "write it like 127.0.0.1:8090, or :8090 for every interface", c.cfg.Server.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		c.add(path, false, "port %q is not a number from 0 to 65535", "write it like 127.0.0.1:8090", port)
	}
}

func (c *checker) checkDatabase() {
	if u := c.cfg.Database.URL; u != "" {
		if _, err := pgx.ParseConfig(u); err != nil {
			c.add([]string{"database", "url"}, false, "invalid database URL: %s", "write it like postgres://user:password@host:5432/dbname", redactParseError(err))
		}
	}
	s := c.cfg.Database.Schema
	switch {
	case !identRE.MatchString(s) || len(s) > maxIdentLen:
		c.add([]string{"database", "schema"}, false, "%q is not a valid schema name", "use lower-case letters, digits and underscores, starting with a letter", s)
	case s == "abe" || strings.HasPrefix(s, "pg_") || s == "information_schema":
		c.add([]string{"database", "schema"}, false, "schema %q is reserved", "collections need a schema of their own, like public or app", s)
	}
}

// redactParseError keeps pgx's reason but drops the URL it quotes, which
// may hold a password.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "cannot parse") {
		return msg[i+2:]
	}
	return msg
}

// MinSecretLen is the shortest auth.secret accepted.
const MinSecretLen = 32

func (c *checker) checkAuth() {
	if s := c.cfg.Auth.Secret; s != "" && len(s) < MinSecretLen {
		c.add([]string{"auth", "secret"}, false, "the secret is %d characters; it needs at least %d", "generate one with `openssl rand -base64 48` and pass it as ${ABE_AUTH_SECRET}", len(s), MinSecretLen)
	}
}

var (
	permissionRE = regexp.MustCompile(`^(\*|[a-z0-9_-]+(:[a-z0-9_*-]+)*)$`)
	roleRE       = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

func (c *checker) checkRoles() {
	for _, r := range c.cfg.Roles {
		path := []string{"roles", r.Name}
		if !roleRE.MatchString(r.Name) || len(r.Name) > maxIdentLen {
			c.add(path, true, "%q is not a valid role name", "use lower-case letters, digits, - and _, starting with a letter", r.Name)
		}
		for i, p := range r.Permissions {
			if !permissionRE.MatchString(p) {
				c.add(append(path, "permissions", strconv.Itoa(i)), false, "%q is not a valid permission", "write * or names like todos:moderate (lower-case, parts separated by :)", p)
			}
		}
	}
}

func (c *checker) checkIdent(path []string, what, name string) bool {
	hint := "use lower-case letters, digits and underscores, starting with a letter (at most 63 characters)"
	switch {
	case !identRE.MatchString(name):
		c.add(path, true, "%q is not a valid %s name", hint, name, what)
	case len(name) > maxIdentLen:
		c.add(path, true, "%s name %q is longer than %d characters", hint, what, name, maxIdentLen)
	case slices.Contains(celReserved, name):
		c.add(path, true, "%q is a reserved word in rules and cannot name a %s", "choose another name, like "+name+"_", name, what)
	default:
		return true
	}
	return false
}

func (c *checker) collectionNames() []string {
	names := []string{UsersCollection}
	for _, col := range c.cfg.Collections {
		if col.Name != UsersCollection {
			names = append(names, col.Name)
		}
	}
	return names
}

func (c *checker) checkCollection(col *Collection) {
	base := []string{"collections", col.Name}
	if c.checkIdent(base, "collection", col.Name) {
		switch {
		case col.Name == UsersCollection:
			c.add(base, true, "%q is the built-in accounts collection and cannot be declared", "relate to accounts with `type: relation, collection: users`; name your own collection differently, like profiles", col.Name)
		case strings.HasPrefix(col.Name, "pg_") || strings.HasPrefix(col.Name, "abe_"):
			c.add(base, true, "collection names starting with %q are reserved", "choose another name", col.Name[:strings.IndexByte(col.Name, '_')+1])
		}
	}
	if rf := col.RenamedFrom; rf != "" {
		path := append(slices.Clone(base), "renamed_from")
		if c.checkIdent(path, "collection", rf) && c.cfg.Collection(rf) != nil {
			c.add(path, false, "renamed_from %q names a collection that is still declared", "a rename needs the old name to be gone from the file", rf)
		}
	}
	if len(col.Fields) == 0 {
		c.add(append(slices.Clone(base), "fields"), true, "collection %q has no fields", "declare at least one field, like `title: { type: text }`", col.Name)
	}
	for _, f := range col.Fields {
		c.checkField(col, f)
	}
	c.checkIndexes(col)
}

func (c *checker) checkField(col *Collection, f *Field) {
	path := []string{"collections", col.Name, "fields", f.Name}
	sub := func(key string) []string { return append(slices.Clone(path), key) }
	if c.checkIdent(path, "field", f.Name) && slices.Contains(SystemFields, f.Name) {
		c.add(path, true, "%q is a field every collection already has (id, version, created_at, updated_at)", "remove it, or choose another name", f.Name)
	}
	if rf := f.RenamedFrom; rf != "" && c.checkIdent(sub("renamed_from"), "field", rf) && col.Field(rf) != nil {
		c.add(sub("renamed_from"), false, "renamed_from %q names a field that is still declared", "a rename needs the old name to be gone from the collection", rf)
	}

	list := f.Many
	if f.Many && f.Type != Relation && f.Type != Select && f.Type != File {
		c.add(sub("many"), false, "many is for relation, select and file fields, not %s", "use a json field to hold a list of other values", f.Type)
		list = false
	}
	bounded := list || f.Type == Number || f.Type == Integer || f.Type == Text || f.Type == Email || f.Type == URL
	for _, k := range []string{"min", "max"} {
		v := f.Min
		if k == "max" {
			v = f.Max
		}
		if v == nil {
			continue
		}
		switch {
		case !bounded:
			c.add(sub(k), false, "%s does not apply to a %s field", "min and max bound numbers, text length and the number of items of a many field", k, f.Type)
		case (list || f.Type != Number) && (*v != math.Trunc(*v) || *v < 0):
			c.add(sub(k), false, "%s must be a whole number of at least 0 here", "it counts characters or items", k)
		}
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		c.add(sub("min"), false, "min (%v) is greater than max (%v)", "swap them, or widen the range", *f.Min, *f.Max)
	}
	if f.Pattern != "" {
		if f.Type != Text && f.Type != Email && f.Type != URL {
			c.add(sub("pattern"), false, "pattern applies to text fields, not %s", "remove it", f.Type)
		} else if _, err := regexp.Compile(f.Pattern); err != nil {
			c.add(sub("pattern"), false, "invalid pattern: %v", "write a regular expression like ^[a-z]+$", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		} else if strings.ContainsRune(f.Pattern, 0) {
			c.add(sub("pattern"), false, "the pattern holds a NUL character", "remove it")
		}
	}
	switch {
	case f.Type == Select && len(f.Values) == 0:
		c.add(path, true, "select field %q has no values", "list the allowed values: `values: [draft, published]`", f.Name)
	case f.Type != Select && f.Values != nil:
		c.add(sub("values"), false, "values apply to select fields, not %s", "use `type: select`, or remove values", f.Type)
	case f.Type == Select:
		seen := map[string]bool{}
		for i, v := range f.Values {
			if seen[v] {
				c.add(append(sub("values"), strconv.Itoa(i)), false, "value %q is listed twice", "remove one", v)
			}
			if v == "" || strings.ContainsRune(v, 0) {
				c.add(append(sub("values"), strconv.Itoa(i)), false, "a select value must be non-empty text", "remove it")
			}
			seen[v] = true
		}
	}
	switch {
	case f.Type == Relation && f.Collection == "":
		c.add(path, true, "relation field %q does not say which collection it points at", "add `collection: <name>`; users is the built-in accounts", f.Name)
	case f.Type == Relation && !slices.Contains(c.collectionNames(), f.Collection):
		hint := "declare the collection, or point at one of: " + strings.Join(c.collectionNames(), ", ")
		if guess := suggest(f.Collection, c.collectionNames()); guess != "" {
			hint = fmt.Sprintf("did you mean %q? %s", guess, hint)
		}
		c.add(sub("collection"), false, "relation to unknown collection %q", hint, f.Collection)
	case f.Type != Relation && f.Collection != "":
		c.add(sub("collection"), false, "collection applies to relation fields, not %s", "use `type: relation`, or remove collection", f.Type)
	}
	if f.Type != Relation && f.OnDelete != "" {
		c.add(sub("on_delete"), false, "on_delete applies to relation fields, not %s", "remove it", f.Type)
	}
	if f.Type == Relation && !f.Many && f.Required && f.OnDelete == OnDeleteSetNull {
		c.add(sub("on_delete"), false, "a required relation cannot be set to null when its record is deleted", "use on_delete: cascade or restrict, or make the field optional")
	}
	if f.Unique && (f.Many || f.Type == JSON) {
		c.add(sub("unique"), false, "unique does not apply to a %s field", "declare a unique index over plain fields instead", describe(f))
	}
	if f.Default != nil {
		if msg, hint := c.checkDefault(f); msg != "" {
			c.add(sub("default"), false, "%s", hint, msg)
		}
	}
}

func describe(f *Field) string {
	if f.Many {
		return "many " + string(f.Type)
	}
	return string(f.Type)
}

// checkDefault says what is wrong with a field's default, if anything.
func (c *checker) checkDefault(f *Field) (msg, hint string) {
	if f.Many {
		items, ok := f.Default.([]any)
		if !ok {
			return fmt.Sprintf("the default of a many %s field must be a list", f.Type), "write it like [a, b], or [] for none"
		}
		if f.Max != nil && float64(len(items)) > *f.Max {
			return fmt.Sprintf("the default has %d items, more than max (%v)", len(items), *f.Max), "shorten it"
		}
		single := *f
		single.Many = false
		for _, item := range items {
			single.Default = item
			if msg, hint := c.checkDefault(&single); msg != "" {
				return "list item: " + msg, hint
			}
		}
		return "", ""
	}
	v := f.Default
	switch f.Type {
	case Text, Email, URL:
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("the default of a %s field must be text, not %v", f.Type, v), "quote it: default: \"...\""
		}
		if strings.ContainsRune(s, 0) {
			return "the default holds a NUL character", "remove it"
		}
		n := float64(utf8.RuneCountInString(s))
		if (f.Min != nil && n < *f.Min) || (f.Max != nil && n > *f.Max) {
			return fmt.Sprintf("the default %q has %v characters, outside min/max", s, n), "change the default or the bounds"
		}
		if re, err := regexp.Compile(f.Pattern); err == nil && f.Pattern != "" && !re.MatchString(s) {
			return fmt.Sprintf("the default %q does not match the pattern", s), "change the default or the pattern"
		}
		if f.Type == Email && !emailRE.MatchString(s) {
			return fmt.Sprintf("the default %q is not an email address", s), "write it like someone@example.com"
		}
		if f.Type == URL && !urlRE.MatchString(s) {
			return fmt.Sprintf("the default %q is not an http(s) URL", s), "write it like https://example.com"
		}
	case Number, Integer:
		var n float64
		switch x := v.(type) {
		case int64:
			n = float64(x)
		case float64:
			n = x
		default:
			return fmt.Sprintf("the default of a %s field must be a number, not %q", f.Type, fmt.Sprint(v)), "write a number without quotes"
		}
		if f.Type == Integer && n != math.Trunc(n) {
			return fmt.Sprintf("the default of an integer field must be a whole number, not %v", n), "round it, or use type: number"
		}
		if math.IsInf(n, 0) || math.IsNaN(n) {
			return "the default must be a finite number", "write a number"
		}
		if (f.Min != nil && n < *f.Min) || (f.Max != nil && n > *f.Max) {
			return fmt.Sprintf("the default %v is outside min/max", n), "change the default or the bounds"
		}
	case Bool:
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("the default of a bool field must be true or false, not %q", fmt.Sprint(v)), "write true or false without quotes"
		}
	case Timestamp:
		s, ok := v.(string)
		if !ok {
			return "the default of a timestamp field must be \"now\" or a date", "write now, or a time like 2024-01-31T09:00:00Z"
		}
		if s != "now" {
			if _, err := timeOf(s); err != nil {
				return fmt.Sprintf("the default %q is not a timestamp", s), "write now, or a time like 2024-01-31T09:00:00Z"
			}
		}
	case Select:
		s, ok := v.(string)
		if !ok || !slices.Contains(f.Values, s) {
			return fmt.Sprintf("the default %q is not one of the values (%s)", fmt.Sprint(v), strings.Join(f.Values, ", ")), "choose one of the values"
		}
	case Relation:
		s, ok := v.(string)
		if _, err := uuid.Parse(s); !ok || err != nil {
			return fmt.Sprintf("the default of a relation must be a record id (a UUID), not %q", fmt.Sprint(v)), "write a UUID, or remove the default"
		}
	case File:
		return "file fields cannot have a default", "remove it"
	}
	return "", ""
}

var (
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)
	urlRE   = regexp.MustCompile(`^https?://[^\s]+$`)
)

func (c *checker) checkIndexes(col *Collection) {
	seen := map[string]int{}
	for i, idx := range col.Indexes {
		path := []string{"collections", col.Name, "indexes", strconv.Itoa(i)}
		if idx.Name != "" {
			c.checkIdent(append(slices.Clone(path), "name"), "index", idx.Name)
		}
		used := map[string]bool{}
		for j, name := range idx.Fields {
			fpath := append(slices.Clone(path), "fields", strconv.Itoa(j))
			if used[name] {
				c.add(fpath, false, "field %q appears twice in this index", "list each field once", name)
			}
			used[name] = true
			if col.Field(name) == nil && !slices.Contains(SystemFields, name) {
				var names []string
				for _, f := range col.Fields {
					names = append(names, f.Name)
				}
				names = append(names, SystemFields...)
				hint := "index one of: " + strings.Join(names, ", ")
				if guess := suggest(name, names); guess != "" {
					hint = fmt.Sprintf("did you mean %q? %s", guess, hint)
				}
				c.add(fpath, false, "index over unknown field %q", hint, name)
			}
		}
		key := fmt.Sprint(idx.Unique, idx.Fields)
		if prev, dup := seen[key]; dup {
			c.add(path, false, "this index repeats index %d", "remove one of them", prev)
		}
		seen[key] = i
	}
}
