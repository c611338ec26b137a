package schema

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a loaded and checked abe.yaml.
type Config struct {
	// File is the path the configuration was read from.
	File string

	Server   Server
	Database Database
	Auth     Auth
	// Roles in the order the file declares them.
	Roles []*Role
	// Collections in the order the file declares them.
	Collections []*Collection
}

// Server configures the HTTP server.
type Server struct {
	Listen string `yaml:"listen"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Database configures the Postgres connection.
type Database struct {
	// URL is a postgres:// URL or key=value DSN. Empty in `abe dev` means the
	// local cluster in .abe/pg.
	URL string `yaml:"url"`
	// Schema is the Postgres schema that holds collection tables.
	Schema string `yaml:"schema"`
	// MaxConns caps the connection pool.
	MaxConns int32 `yaml:"max_conns"`
}

// Auth configures accounts and tokens.
type Auth struct {
	// Secret signs tokens. `abe dev` makes one when empty; `abe serve`
	// refuses to start without one.
	Secret string `yaml:"secret"`
}

// Role is a named set of permissions.
type Role struct {
	Name        string
	Description string
	Permissions []string
	// Default roles are given to every new account.
	Default bool
	Pos     Pos
}

// Collection is a declared table of records.
type Collection struct {
	Name        string
	Fields      []*Field
	Indexes     []*Index
	Rules       Rules
	Realtime    bool
	RenamedFrom string
	Pos         Pos
}

// Field returns the field called name, or nil.
func (c *Collection) Field(name string) *Field {
	for _, f := range c.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Rules are the CEL expressions that guard each operation. A nil rule denies
// everyone but principals holding the "*" permission.
type Rules struct {
	List, Read, Create, Update, Delete *Rule
}

// Rule is one CEL expression and where it was written.
type Rule struct {
	Expr string
	Pos  Pos
}

// FieldRules restrict one field.
type FieldRules struct {
	Read, Update *Rule
}

// FieldType is the declared type of a field.
type FieldType string

// The field types a collection may declare.
const (
	Text      FieldType = "text"
	Number    FieldType = "number"
	Integer   FieldType = "integer"
	Bool      FieldType = "bool"
	Timestamp FieldType = "timestamp"
	JSON      FieldType = "json"
	Select    FieldType = "select"
	Relation  FieldType = "relation"
	File      FieldType = "file"
	Email     FieldType = "email"
	URL       FieldType = "url"
)

// FieldTypes lists every field type, in the order the docs present them.
var FieldTypes = []FieldType{Text, Number, Integer, Bool, Timestamp, JSON, Select, Relation, File, Email, URL}

// What a relation does to its records when the record it points at is
// deleted.
const (
	OnDeleteCascade  = "cascade"
	OnDeleteSetNull  = "set_null"
	OnDeleteRestrict = "restrict"
)

// Field is a declared column of a collection.
type Field struct {
	Name     string
	Type     FieldType
	Required bool
	Unique   bool
	// Many makes a relation, select or file field hold a list.
	Many bool
	// Default is the decoded YAML default (string, int64, float64, bool,
	// []any, map[string]any), or nil when there is none.
	Default any
	// Min and Max bound numbers, the length of text, or the number of items
	// of a list.
	Min, Max *float64
	Pattern  string
	Values   []string
	// Collection is the target of a relation: a declared collection or
	// "users", the built-in accounts.
	Collection  string
	OnDelete    string
	RenamedFrom string
	Rules       FieldRules
	Pos         Pos
}

// Index is a declared index over one or more fields.
type Index struct {
	Name   string
	Fields []string
	Unique bool
	Pos    Pos
}

// UsersCollection is the name relations use for the built-in accounts.
const UsersCollection = "users"

// SystemFields are the columns every collection has.
var SystemFields = []string{"id", "version", "created_at", "updated_at"}

// Defaults for settings the file leaves out.
const (
	DefaultListen          = "127.0.0.1:8090"
	DefaultSchema          = "public"
	DefaultMaxConns        = 20
	DefaultShutdownTimeout = 15 * time.Second
)

// withDefaults fills in every setting the file left out.
func (c *Config) withDefaults() {
	c.Server.Listen = cmp.Or(c.Server.Listen, DefaultListen)
	c.Server.ShutdownTimeout = cmp.Or(c.Server.ShutdownTimeout, Duration(DefaultShutdownTimeout))
	c.Database.Schema = cmp.Or(c.Database.Schema, DefaultSchema)
	c.Database.MaxConns = cmp.Or(c.Database.MaxConns, DefaultMaxConns)
	for _, col := range c.Collections {
		for _, f := range col.Fields {
			if f.Type == Relation && f.OnDelete == "" {
				// A required relation cannot be cleared, so deleting its
				// target must be refused rather than leave it dangling.
				f.OnDelete = OnDeleteSetNull
				if f.Required {
					f.OnDelete = OnDeleteRestrict
				}
			}
		}
	}
}

// Collection returns the collection called name, or nil.
func (c *Config) Collection(name string) *Collection {
	for _, col := range c.Collections {
		if col.Name == name {
			return col
		}
	}
	return nil
}

// Duration is a time.Duration written as "15m", "168h" or "7d".
type Duration time.Duration

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration accepts Go durations plus a whole number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q: write a whole number of days, like 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid duration %q: write a number and a unit, like 30s, 15m, 168h or 7d", s)
	}
	return v, nil
}
