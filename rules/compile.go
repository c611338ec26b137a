package rules

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"

	"github.com/abe-stack/abe/schema"
)

// Op is an operation a rule guards.
type Op string

// The operations of collection rules.
const (
	List   Op = "list"
	Read   Op = "read"
	Create Op = "create"
	Update Op = "update"
	Delete Op = "delete"
)

// Ops lists the operations in the order abe.yaml presents them.
var Ops = []Op{List, Read, Create, Update, Delete}

// program is a compiled, type-checked expression.
type program struct {
	src  string
	path string
	pos  schema.Pos
	ast  *cel.Ast
	prg  cel.Program
	// consts are programs for the subexpressions that depend only on the
	// principal and the request: the SQL translation evaluates them and
	// binds their values.
	consts map[int64]cel.Program
	// translateErr is why the expression cannot become SQL ("" when it can).
	translateErr string
}

// collection holds the compiled rules of one collection.
type collection struct {
	schema      *schema.Collection
	table       string // qualified, quoted
	env         *cel.Env
	filterEnv   *cel.Env
	ops         map[Op]*program
	fieldRead   map[string]*program
	fieldUpdate map[string]*program

	filtersMu sync.Mutex
	filters   map[string]*Filter
}

// Engine holds the compiled rules of every collection.
type Engine struct {
	cfg   *schema.Config
	colls map[string]*collection
	// tables maps collection names (and "users") to their tables.
	tables map[string]string
	loader *loaderFuncs
	dev    bool
}

// Options tune an Engine.
type Options struct {
	// Dev puts the rule that denied an operation into denials, to help
	// while writing rules.
	Dev bool
}

// Compile type-checks every rule of cfg against its collection and
// prepares it for evaluation and SQL translation. Problems come back as
// schema.Diagnostics, with the file position of the expression. A list
// rule that cannot become SQL is a problem, so that a list never has to
// scan and filter in memory.
func Compile(cfg *schema.Config, opts *Options) (*Engine, error) {
	p, err := newProvider(cfg)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	e := &Engine{cfg: cfg, colls: map[string]*collection{}, tables: map[string]string{}, loader: &loaderFuncs{adapter: p}}
	if opts != nil {
		e.dev = opts.Dev
	}
	e.tables[schema.UsersCollection] = schema.UsersTable
	for _, c := range cfg.Collections {
		e.tables[c.Name] = schema.TableName(cfg.Database.Schema, c.Name)
	}
	var diags schema.Diagnostics
	for _, c := range cfg.Collections {
		col := &collection{schema: c, table: e.tables[c.Name], ops: map[Op]*program{}, fieldRead: map[string]*program{}, fieldUpdate: map[string]*program{}, filters: map[string]*Filter{}}
		if col.env, err = newEnv(p, cfg, c, envRule, e.loader); err != nil {
			return nil, fmt.Errorf("rules for %s: %w", c.Name, err)
		}
		if col.filterEnv, err = newEnv(p, cfg, c, envFilter, e.loader); err != nil {
			return nil, fmt.Errorf("filters for %s: %w", c.Name, err)
		}
		base := "collections." + c.Name
		rules := map[Op]*schema.Rule{List: c.Rules.List, Read: c.Rules.Read, Create: c.Rules.Create, Update: c.Rules.Update, Delete: c.Rules.Delete}
		for _, op := range Ops {
			r := rules[op]
			if r == nil {
				continue
			}
			prg, d := e.compile(col, col.env, r, base+".rules."+string(op))
			diags = append(diags, d...)
			if prg == nil {
				continue
			}
			if op == List && prg.translateErr != "" {
				diags = append(diags, schema.Diagnostic{Pos: r.Pos, Path: prg.path,
					Message: "the list rule cannot be translated to SQL: " + prg.translateErr,
					Hint:    "lists filter in the database; use comparisons, &&, ||, !, in, has(), startsWith/endsWith/contains, size(), get() and exists() (see docs/rules.md)"})
			}
			col.ops[op] = prg
		}
		for _, f := range c.Fields {
			for _, fr := range []struct {
				kind string
				r    *schema.Rule
			}{{"read", f.Rules.Read}, {"update", f.Rules.Update}} {
				kind, r := fr.kind, fr.r
				if r == nil {
					continue
				}
				prg, d := e.compile(col, col.env, r, base+".fields."+f.Name+".rules."+kind)
				diags = append(diags, d...)
				if prg == nil {
					continue
				}
				if kind == "read" {
					col.fieldRead[f.Name] = prg
				} else {
					col.fieldUpdate[f.Name] = prg
				}
			}
		}
		e.colls[c.Name] = col
	}
	diags = append(diags, e.checkWebhookFilters(cfg)...)
	if len(diags) > 0 {
		return nil, diags
	}
	return e, nil
}

// checkWebhookFilters compiles the filter of every webhook, as a client's
// list filter would be, so that a broken one is reported with the rules.
func (e *Engine) checkWebhookFilters(cfg *schema.Config) schema.Diagnostics {
	var diags schema.Diagnostics
	for _, c := range cfg.Collections {
		if e.colls[c.Name] == nil {
			continue
		}
		for i, w := range c.Webhooks {
			if w.Filter == nil {
				continue
			}
			_, err := e.Filter(c.Name, w.Filter.Expr)
			var fe *FilterError
			if err == nil || !errors.As(err, &fe) {
				continue
			}
			pos := w.Filter.Pos
			if fe.Column > 0 {
				pos = exprPos(w.Filter, 1, fe.Column-1)
			}
			diags = append(diags, schema.Diagnostic{Pos: pos, Path: fmt.Sprintf("collections.%s.webhooks[%d].filter", c.Name, i),
				Message: fe.Message, Hint: "write it as a list filter over the collection's fields, like done == true (see docs/records.md)"})
		}
	}
	return diags
}

// compile checks one expression; problems are diagnostics at its position.
func (e *Engine) compile(col *collection, env *cel.Env, r *schema.Rule, path string) (*program, schema.Diagnostics) {
	src, pos := r.Expr, r.Pos
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		var diags schema.Diagnostics
		for _, ce := range iss.Errors() {
			diags = append(diags, schema.Diagnostic{Pos: exprPos(r, ce.Location.Line(), ce.Location.Column()), Path: path,
				Message: "invalid rule: " + cleanCELMessage(ce.Message), Hint: e.hint(col, env, src, ce)})
		}
		return nil, diags
	}
	if !checked.OutputType().IsExactType(cel.BoolType) && !checked.OutputType().IsExactType(cel.NullableType(cel.BoolType)) {
		return nil, schema.Diagnostics{{Pos: pos, Path: path, Message: fmt.Sprintf("the rule gives %s, not a bool", checked.OutputType()),
			Hint: "a rule must be true or false, like record.owner == auth.id"}}
	}
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, schema.Diagnostics{{Pos: pos, Path: path, Message: "invalid rule: " + err.Error(), Hint: "see docs/rules.md"}}
	}
	p := &program{src: src, path: path, pos: pos, ast: checked, prg: prg, consts: map[int64]cel.Program{}}
	if err := e.prepareConsts(env, p); err != nil {
		return nil, schema.Diagnostics{{Pos: pos, Path: path, Message: "invalid rule: " + err.Error(), Hint: "see docs/rules.md"}}
	}
	// A dry run with an anonymous principal finds what cannot become SQL.
	tr := &translator{eng: e, col: col, prog: p, in: &SQLInput{}, q: &SQL{}, dry: true}
	if _, err := tr.boolean(checked.NativeRep().Expr(), false); err != nil {
		p.translateErr = err.Error()
	}
	return p, nil
}

// exprPos maps a position inside an expression (line 1-based, column
// 0-based) to the file: exact for expressions on one line, plain or
// quoted; the line within a multi-line value otherwise.
func exprPos(r *schema.Rule, line, col int) schema.Pos {
	start := r.Pos
	if start.Line == 0 || start.Env != "" {
		return start
	}
	if strings.Contains(r.Expr, "\n") {
		return schema.Pos{File: start.File, Line: start.Line + line, Column: 0}
	}
	if r.Quoted {
		col++ // the value starts at its quote
	}
	return schema.Pos{File: start.File, Line: start.Line, Column: start.Column + col}
}

var wrapperRE = regexp.MustCompile(`wrapper\((\w+)\)`)

func cleanCELMessage(msg string) string {
	msg = wrapperRE.ReplaceAllString(msg, "$1")
	for old, repl := range map[string]string{
		getPrefix: "get_", existsPrefix: "exists_", varLoader + ", ": "", varRoles: "roles", varPerms: "permissions",
		"abe.record.": "", "abe.Auth": "auth", "abe.Request": "request",
	} {
		msg = strings.ReplaceAll(msg, old, repl)
	}
	return msg
}

func celHint(msg string) string {
	switch {
	case strings.Contains(msg, "undefined field"):
		return "check the field name against the collection's fields (and id, version, created_at, updated_at)"
	case strings.Contains(msg, "undeclared reference"):
		return "rules see auth, record, before, changes and request, and the functions get, exists, has_role and has_permission"
	case strings.Contains(msg, "no matching overload"):
		return "the two sides have different types: compare text with text, numbers with numbers"
	case strings.Contains(msg, "Syntax error"):
		return "check the expression's syntax: quotes, parentheses, && and ||"
	}
	return "see docs/rules.md"
}

// prepareConsts finds the maximal subexpressions that depend only on the
// principal and the request, and compiles each on its own.
func (e *Engine) prepareConsts(env *cel.Env, p *program) error {
	a := p.ast.NativeRep()
	var walk func(x ast.Expr) error
	walk = func(x ast.Expr) error {
		if isConst(x) {
			if x.Kind() == ast.LiteralKind {
				return nil
			}
			src, err := cel.ExprToString(x, a.SourceInfo())
			if err != nil {
				return err
			}
			checked, iss := env.Compile(src)
			if iss != nil && iss.Err() != nil {
				return iss.Err()
			}
			prg, err := env.Program(checked)
			if err != nil {
				return err
			}
			p.consts[x.ID()] = prg
			return nil
		}
		for _, c := range children(x) {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(a.Expr())
}

// isConst reports whether x depends only on the principal, the request
// and literals (so it has one value for a whole query).
func isConst(x ast.Expr) bool {
	switch x.Kind() {
	case ast.LiteralKind:
		return true
	case ast.IdentKind:
		switch x.AsIdent() {
		case varAuth, varRequest, varRoles, varPerms:
			return true
		}
		return false
	case ast.SelectKind:
		return isConst(x.AsSelect().Operand())
	case ast.CallKind:
		c := x.AsCall()
		if strings.HasPrefix(c.FunctionName(), getPrefix) || strings.HasPrefix(c.FunctionName(), existsPrefix) {
			return false
		}
		if c.IsMemberFunction() && !isConst(c.Target()) {
			return false
		}
		for _, a := range c.Args() {
			if !isConst(a) {
				return false
			}
		}
		return true
	case ast.ListKind:
		for _, el := range x.AsList().Elements() {
			if !isConst(el) {
				return false
			}
		}
		return true
	}
	return false
}

func children(x ast.Expr) []ast.Expr {
	switch x.Kind() {
	case ast.SelectKind:
		return []ast.Expr{x.AsSelect().Operand()}
	case ast.CallKind:
		c := x.AsCall()
		out := c.Args()
		if c.IsMemberFunction() {
			out = append([]ast.Expr{c.Target()}, out...)
		}
		return out
	case ast.ListKind:
		return x.AsList().Elements()
	case ast.ComprehensionKind:
		c := x.AsComprehension()
		return []ast.Expr{c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()}
	case ast.MapKind:
		var out []ast.Expr
		for _, en := range x.AsMap().Entries() {
			out = append(out, en.AsMapEntry().Key(), en.AsMapEntry().Value())
		}
		return out
	}
	return nil
}

func (e *Engine) collection(name string) (*collection, error) {
	c := e.colls[name]
	if c == nil {
		return nil, fmt.Errorf("rules: no collection %q", name)
	}
	return c, nil
}

// Decision is the outcome of a rule check.
type Decision struct {
	Allowed bool
	// Reason says why it was denied: no rule, the rule was false, or the
	// rule failed (a null field, a missing related record). Rule is the
	// expression. Both are for logs and, in development, for the client.
	Reason, Rule string
}

// Allow checks op on a record of collection.
func (e *Engine) Allow(ctx context.Context, collection string, op Op, in *Input, loads *Loads) (Decision, error) {
	col, err := e.collection(collection)
	if err != nil {
		return Decision{}, err
	}
	return decide(col.ops[op], in, loads, nil, fmt.Sprintf("%s has no %s rule, so only principals with the * permission may %s", collection, op, op))
}

func decide(p *program, in *Input, loads *Loads, fields map[string]any, noRule string) (Decision, error) {
	if p == nil {
		if in.Auth.superuser() {
			return Decision{Allowed: true}, nil
		}
		return Decision{Reason: noRule}, nil
	}
	ok, reason, err := eval(p.prg, in, loads, fields)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Allowed: ok, Rule: p.src}
	if !ok {
		d.Reason = "the rule is false"
		if reason != "" {
			d.Reason = "the rule failed: " + reason
		}
	}
	return d, nil
}

// HiddenFields lists the fields of in.Record whose read rule denies the
// principal; they must be left out of what the principal sees.
func (e *Engine) HiddenFields(ctx context.Context, collection string, in *Input, loads *Loads) ([]string, error) {
	col, err := e.collection(collection)
	if err != nil {
		return nil, err
	}
	var hidden []string
	for _, f := range col.schema.Fields {
		p := col.fieldRead[f.Name]
		if p == nil {
			continue
		}
		ok, _, err := eval(p.prg, in, loads, nil)
		if err != nil {
			return nil, err
		}
		if !ok {
			hidden = append(hidden, f.Name)
		}
	}
	return hidden, nil
}

// ListIsRead reports whether the collection's list rule is its read rule
// (the same expression, or neither given), so that a record's read check
// answers its list check too.
func (e *Engine) ListIsRead(collection string) bool {
	c := e.colls[collection]
	if c == nil {
		return false
	}
	l, r := c.ops[List], c.ops[Read]
	return l == r || (l != nil && r != nil && l.src == r.src)
}

// HasFieldReadRules reports whether any field of the collection has a read
// rule, so callers can skip HiddenFields.
func (e *Engine) HasFieldReadRules(collection string) bool {
	c := e.colls[collection]
	return c != nil && len(c.fieldRead) > 0
}

// HasFieldReadRule reports whether field of collection has a read rule.
func (e *Engine) HasFieldReadRule(collection, field string) bool {
	c := e.colls[collection]
	return c != nil && c.fieldRead[field] != nil
}

// HasFieldUpdateRules reports whether any field of the collection has an
// update rule.
func (e *Engine) HasFieldUpdateRules(collection string) bool {
	c := e.colls[collection]
	return c != nil && len(c.fieldUpdate) > 0
}

// DeniedUpdates lists the fields in in.Changes whose update rule denies
// the principal; a write that changes any of them must be refused.
func (e *Engine) DeniedUpdates(ctx context.Context, collection string, in *Input, loads *Loads) ([]string, error) {
	col, err := e.collection(collection)
	if err != nil {
		return nil, err
	}
	var denied []string
	for _, name := range in.Changes {
		p := col.fieldUpdate[name]
		if p == nil {
			continue
		}
		ok, _, err := eval(p.prg, in, loads, nil)
		if err != nil {
			return nil, err
		}
		if !ok {
			denied = append(denied, name)
		}
	}
	return denied, nil
}

// Dev reports whether denials may carry their rule to the client.
func (e *Engine) Dev() bool { return e.dev }
