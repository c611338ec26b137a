package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	celtypes "github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/abe-stack/abe/schema"
)

// Names of the values rules see, and of what macros expand to.
const (
	varAuth    = "auth"
	varRecord  = "record"
	varBefore  = "before"
	varChanges = "changes"
	varRequest = "request"
	// Hidden variables that macros expand to: the per-evaluation loader of
	// get() and exists(), and the principal's roles and permissions.
	varLoader = "__loader"
	varRoles  = "__roles"
	varPerms  = "__perms"

	fnHasPermission = "__has_permission"
	getPrefix       = "__get_"
	existsPrefix    = "__exists_"

	authTypeName    = "abe.Auth"
	requestTypeName = "abe.Request"
	loaderTypeName  = "abe.Loader"
)

func recordTypeName(collection string) string { return "abe.record." + collection }

// usersFields are the fields of the built-in accounts that rules may read
// through get('users', id).
var usersFields = []*schema.Field{
	{Name: "email", Type: schema.Email, Required: true},
	{Name: "name", Type: schema.Text, Required: true},
	{Name: "email_verified", Type: schema.Bool, Required: true},
}

// celType is the CEL type of a field. Optional fields are nullable, so
// rules can compare them with null.
func celType(f *schema.Field) *cel.Type {
	var t *cel.Type
	switch f.Type {
	case schema.Number:
		t = cel.DoubleType
	case schema.Integer:
		t = cel.IntType
	case schema.Bool:
		t = cel.BoolType
	case schema.Timestamp:
		t = cel.TimestampType
	case schema.JSON:
		return cel.DynType
	default: // text, email, url, select, relation (a uuid), file
		t = cel.StringType
	}
	if f.Many {
		return cel.ListType(t)
	}
	if !f.Required {
		return cel.NullableType(t)
	}
	return t
}

// systemFields are the columns every record has, with their CEL types.
var systemFields = map[string]*cel.Type{
	"id":         cel.StringType,
	"version":    cel.IntType,
	"created_at": cel.TimestampType,
	"updated_at": cel.TimestampType,
}

// provider declares the record, auth and request types over the standard
// registry. Values at run time are map[string]any; fields are read from
// them by name.
type provider struct {
	*celtypes.Registry
	structs map[string]map[string]*celtypes.FieldType
}

func mapField(name string, t *cel.Type) *celtypes.FieldType {
	return &celtypes.FieldType{
		Type: t,
		IsSet: func(target any) bool {
			m, ok := target.(map[string]any)
			return ok && m[name] != nil
		},
		GetFrom: func(target any) (any, error) {
			m, ok := target.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("no such field %q", name)
			}
			return m[name], nil
		},
	}
}

func newProvider(cfg *schema.Config) (*provider, error) {
	reg, err := celtypes.NewRegistry()
	if err != nil {
		return nil, err
	}
	p := &provider{Registry: reg, structs: map[string]map[string]*celtypes.FieldType{}}
	record := func(name string, fields []*schema.Field) {
		m := map[string]*celtypes.FieldType{}
		for f, t := range systemFields {
			m[f] = mapField(f, t)
		}
		for _, f := range fields {
			m[f.Name] = mapField(f.Name, celType(f))
		}
		p.structs[recordTypeName(name)] = m
	}
	for _, c := range cfg.Collections {
		record(c.Name, c.Fields)
	}
	record(schema.UsersCollection, usersFields)
	p.structs[authTypeName] = map[string]*celtypes.FieldType{
		"id":       mapField("id", cel.StringType),
		"email":    mapField("email", cel.StringType),
		"roles":    mapField("roles", cel.ListType(cel.StringType)),
		"verified": mapField("verified", cel.BoolType),
		"mfa":      mapField("mfa", cel.BoolType),
	}
	p.structs[requestTypeName] = map[string]*celtypes.FieldType{
		"method": mapField("method", cel.StringType),
		"ip":     mapField("ip", cel.StringType),
		"time":   mapField("time", cel.TimestampType),
	}
	return p, nil
}

// FindStructType reports the declared types.
func (p *provider) FindStructType(name string) (*celtypes.Type, bool) {
	if _, ok := p.structs[name]; ok {
		return celtypes.NewTypeTypeWithParam(celtypes.NewObjectType(name)), true
	}
	return p.Registry.FindStructType(name)
}

// FindStructFieldNames lists a declared type's fields.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if fields, ok := p.structs[name]; ok {
		names := make([]string, 0, len(fields))
		for f := range fields {
			names = append(names, f)
		}
		slices.Sort(names)
		return names, true
	}
	return p.Registry.FindStructFieldNames(name)
}

// FindStructFieldType types a field of a declared type.
func (p *provider) FindStructFieldType(name, field string) (*celtypes.FieldType, bool) {
	if fields, ok := p.structs[name]; ok {
		ft, ok := fields[field]
		return ft, ok
	}
	return p.Registry.FindStructFieldType(name, field)
}

// collectionMacros turns get('c', id) and exists('c', id) into calls of
// the per-collection functions, so that get() is typed by the collection
// it names, and has_role/has_permission into checks of the principal.
func collectionMacros(names []string) []cel.Macro {
	relation := func(fn, prefix string) cel.Macro {
		return cel.GlobalMacro(fn, 2, func(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
			lit := args[0]
			if lit.Kind() != ast.LiteralKind {
				return nil, eh.NewError(lit.ID(), fmt.Sprintf("%s() takes the collection name in quotes, like %s('projects', record.project)", fn, fn))
			}
			name, ok := lit.AsLiteral().(celtypes.String)
			if !ok || !slices.Contains(names, string(name)) {
				return nil, eh.NewError(lit.ID(), fmt.Sprintf("%s(): unknown collection %v; the collections are %s", fn, lit.AsLiteral(), strings.Join(names, ", ")))
			}
			return eh.NewCall(prefix+string(name), eh.NewIdent(varLoader), args[1]), nil
		})
	}
	return []cel.Macro{
		relation("get", getPrefix),
		relation("exists", existsPrefix),
		cel.GlobalMacro("has_role", 1, func(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
			return eh.NewCall("@in", args[0], eh.NewIdent(varRoles)), nil
		}),
		cel.GlobalMacro("has_permission", 1, func(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
			return eh.NewCall(fnHasPermission, eh.NewIdent(varPerms), args[0]), nil
		}),
	}
}

// hasPermission is has_permission: "*" grants every permission.
func hasPermission(perms, perm ref.Val) ref.Val {
	list, ok := perms.Value().([]string)
	if !ok {
		return celtypes.NewErr("permissions are not a list of strings")
	}
	p, ok := perm.(celtypes.String)
	if !ok {
		return celtypes.NewErr("has_permission takes a string")
	}
	return celtypes.Bool(slices.Contains(list, "*") || slices.Contains(list, string(p)))
}

// envKind says which variables an environment declares.
type envKind int

const (
	envRule   envKind = iota // auth, record, before, changes, request
	envFilter                // auth, request, and each field by name
)

// newEnv builds the CEL environment for one collection.
func newEnv(p *provider, cfg *schema.Config, col *schema.Collection, kind envKind, ld *loaderFuncs) (*cel.Env, error) {
	names := []string{schema.UsersCollection}
	for _, c := range cfg.Collections {
		names = append(names, c.Name)
	}
	loaderType := cel.OpaqueType(loaderTypeName)
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(p),
		cel.CustomTypeAdapter(p),
		cel.Macros(collectionMacros(names)...),
		// Macros are kept as written, for the playground (explain.go).
		cel.EnableMacroCallTracking(),
		cel.CrossTypeNumericComparisons(true),
		cel.Variable(varAuth, cel.ObjectType(authTypeName)),
		cel.Variable(varRequest, cel.ObjectType(requestTypeName)),
		cel.Variable(varLoader, loaderType),
		cel.Variable(varRoles, cel.ListType(cel.StringType)),
		cel.Variable(varPerms, cel.ListType(cel.StringType)),
		cel.Function(fnHasPermission, cel.Overload(fnHasPermission+"_list_string",
			[]*cel.Type{cel.ListType(cel.StringType), cel.StringType}, cel.BoolType, cel.BinaryBinding(hasPermission))),
	}
	for _, name := range names {
		opts = append(opts,
			cel.Function(getPrefix+name, cel.Overload(getPrefix+name+"_loader_string",
				[]*cel.Type{loaderType, cel.NullableType(cel.StringType)}, cel.ObjectType(recordTypeName(name)), cel.BinaryBinding(ld.get(name)))),
			cel.Function(existsPrefix+name, cel.Overload(existsPrefix+name+"_loader_string",
				[]*cel.Type{loaderType, cel.NullableType(cel.StringType)}, cel.BoolType, cel.BinaryBinding(ld.exists(name)))),
		)
	}
	switch kind {
	case envRule:
		opts = append(opts,
			cel.Variable(varRecord, cel.ObjectType(recordTypeName(col.Name))),
			cel.Variable(varBefore, cel.ObjectType(recordTypeName(col.Name))),
			cel.Variable(varChanges, cel.ListType(cel.StringType)),
		)
	case envFilter:
		for f, t := range systemFields {
			opts = append(opts, cel.Variable(f, t))
		}
		for _, f := range col.Fields {
			opts = append(opts, cel.Variable(f.Name, celType(f)))
		}
	}
	return cel.NewEnv(opts...)
}
