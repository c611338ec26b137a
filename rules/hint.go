package rules

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"

	"github.com/abe-stack/abe/schema"
)

var (
	undefinedFieldRE    = regexp.MustCompile(`undefined field '([^']+)'`)
	undeclaredRE        = regexp.MustCompile(`undeclared reference to '([^']+)'`)
	unknownCollectionRE = regexp.MustCompile(`unknown collection (\S+); the collections are (.*)$`)
	ruleNames           = []string{varAuth, varRecord, varBefore, varChanges, varRequest, "get", "exists", "has_role", "has_permission"}
)

// hint says how to fix a compile error of src. An unknown field is
// answered with the fields of what it was read from (the record, auth,
// request, a get()) and a "did you mean" when one is close.
func (e *Engine) hint(col *collection, env *cel.Env, src string, ce *cel.Error) string {
	if m := undefinedFieldRE.FindStringSubmatch(ce.Message); m != nil {
		if h := e.fieldHint(col, env, src, ce.ExprID, m[1]); h != "" {
			return h
		}
	}
	if m := undeclaredRE.FindStringSubmatch(ce.Message); m != nil {
		if guess := schema.Suggest(m[1], ruleNames); guess != "" {
			return fmt.Sprintf("did you mean %s? %s", guess, celHint(ce.Message))
		}
	}
	if m := unknownCollectionRE.FindStringSubmatch(ce.Message); m != nil {
		if guess := schema.Suggest(m[1], strings.Split(m[2], ", ")); guess != "" {
			return fmt.Sprintf("did you mean '%s'? name a declared collection, in quotes", guess)
		}
		return "name a declared collection, in quotes"
	}
	return celHint(ce.Message)
}

func (e *Engine) fieldHint(col *collection, env *cel.Env, src string, id int64, field string) string {
	parsed, iss := env.Parse(src)
	if iss != nil && iss.Err() != nil {
		return ""
	}
	// The select the checker refused: by its id, or the only one of
	// that field.
	var sel ast.Expr
	var byName []ast.Expr
	var walk func(x ast.Expr)
	walk = func(x ast.Expr) {
		if x.Kind() == ast.SelectKind && x.AsSelect().FieldName() == field {
			if x.ID() == id {
				sel = x
			}
			byName = append(byName, x)
		}
		for _, c := range children(x) {
			walk(c)
		}
	}
	walk(parsed.NativeRep().Expr())
	if sel == nil && len(byName) == 1 {
		sel = byName[0]
	}
	if sel == nil {
		return ""
	}
	var of string      // what the field was read from, as written
	var names []string // the fields it has
	op := sel.AsSelect().Operand()
	switch {
	case op.Kind() == ast.IdentKind && op.AsIdent() == varAuth:
		of, names = "auth", []string{"id", "email", "roles", "verified", "mfa"}
	case op.Kind() == ast.IdentKind && op.AsIdent() == varRequest:
		of, names = "request", []string{"method", "ip", "time"}
	case op.Kind() == ast.IdentKind && (op.AsIdent() == varRecord || op.AsIdent() == varBefore):
		of, names = op.AsIdent(), e.fieldNames(col.schema.Name)
	case op.Kind() == ast.CallKind && strings.HasPrefix(op.AsCall().FunctionName(), getPrefix):
		name := strings.TrimPrefix(op.AsCall().FunctionName(), getPrefix)
		of, names = fmt.Sprintf("get('%s', ...)", name), e.fieldNames(name)
	default:
		return ""
	}
	has := of + " has " + strings.Join(names, ", ")
	if strings.HasPrefix(of, "get(") || of == "record" || of == "before" {
		coll := col.schema.Name
		if strings.HasPrefix(of, "get(") {
			coll = strings.TrimPrefix(op.AsCall().FunctionName(), getPrefix)
		}
		has = "the fields of " + coll + " are " + strings.Join(names, ", ")
	}
	if guess := schema.Suggest(field, names); guess != "" {
		return fmt.Sprintf("did you mean %s.%s? %s", of, guess, has)
	}
	return has
}

// fieldNames lists the fields a record of collection has, its own first.
func (e *Engine) fieldNames(collection string) []string {
	var names []string
	fields := usersFields
	if c := e.cfg.Collection(collection); c != nil {
		fields = c.Fields
	}
	for _, f := range fields {
		names = append(names, f.Name)
	}
	return append(names, schema.SystemFields...)
}
