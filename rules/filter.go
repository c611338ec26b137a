package rules

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	celtypes "github.com/google/cel-go/common/types"
)

// MaxFilterLen bounds a client filter's length.
const MaxFilterLen = 4096

// maxCachedFilters bounds the compiled filters kept per collection.
const maxCachedFilters = 1000

// Filter is a client's filter over a collection's fields (done == false
// && title.startsWith('a')), compiled and type-checked. It is translated to
// SQL like the list rule, and can be matched against one record (for
// realtime subscriptions).
type Filter struct {
	col  *collection
	prog *program
	eng  *Engine
	// loads is set when the filter calls get() or exists(), which Match
	// must route through the read rules.
	loads bool
}

// FilterError is a filter that does not compile or has no SQL form; it
// says where, for the client.
type FilterError struct {
	// Column is the 1-based position in the filter, 0 when unknown.
	Column  int
	Message string
}

func (e *FilterError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("invalid filter at column %d: %s", e.Column, e.Message)
	}
	return "invalid filter: " + e.Message
}

// Filter compiles src for collection, or returns a *FilterError.
func (e *Engine) Filter(collection, src string) (*Filter, error) {
	col, err := e.collection(collection)
	if err != nil {
		return nil, err
	}
	src = strings.TrimSpace(src)
	if len(src) > MaxFilterLen {
		return nil, &FilterError{Message: fmt.Sprintf("the filter is longer than %d characters", MaxFilterLen)}
	}
	col.filtersMu.Lock()
	f := col.filters[src]
	col.filtersMu.Unlock()
	if f != nil {
		return f, nil
	}
	checked, iss := col.filterEnv.Compile(src)
	if iss != nil && iss.Err() != nil {
		ce := iss.Errors()[0]
		return nil, &FilterError{Column: ce.Location.Column() + 1, Message: cleanCELMessage(ce.Message)}
	}
	out := checked.OutputType()
	if !out.IsExactType(cel.BoolType) && !out.IsExactType(cel.NullableType(cel.BoolType)) {
		return nil, &FilterError{Message: fmt.Sprintf("the filter gives %s, not a bool", out)}
	}
	prg, err := col.filterEnv.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &FilterError{Message: err.Error()}
	}
	if nulInLiterals(checked.NativeRep().Expr()) {
		return nil, &FilterError{Message: "strings in a filter cannot hold the NUL character (\\x00), and no stored text does"}
	}
	p := &program{src: src, ast: checked, prg: prg, consts: map[int64]cel.Program{}}
	if err := e.prepareConsts(col.filterEnv, p); err != nil {
		return nil, &FilterError{Message: err.Error()}
	}
	f = &Filter{col: col, prog: p, eng: e, loads: callsLoader(checked.NativeRep().Expr())}
	// Filters always run in the database; one that cannot is refused now.
	if _, err := f.SQL(&SQLInput{}, &SQL{}); err != nil {
		return nil, err
	}
	col.filtersMu.Lock()
	if len(col.filters) >= maxCachedFilters {
		col.filters = map[string]*Filter{}
	}
	col.filters[src] = f
	col.filtersMu.Unlock()
	return f, nil
}

// SQL translates the filter into a boolean over the collection's table,
// as the principal sees it (visible.go). A failure is a *FilterError.
func (f *Filter) SQL(in *SQLInput, q *SQL) (string, error) {
	tr := &translator{eng: f.eng, col: f.col, prog: f.prog, in: in, q: q, filter: true}
	s, err := tr.boolean(f.prog.ast.NativeRep().Expr(), false)
	if err != nil {
		return "", &FilterError{Message: "it cannot run in the database: " + err.Error()}
	}
	return s, nil
}

// Match evaluates the filter on in.Record as in.Auth sees it: without the
// fields it may not read, with get() and exists() finding only records it
// may read, as the SQL does.
func (f *Filter) Match(in *Input, loads *Loads) (bool, error) {
	ctx := context.Background()
	if loads != nil {
		ctx = loads.ctx
	}
	rec, err := f.eng.filterView(ctx, f.col, in, loads, in.Record)
	if err != nil {
		return false, err
	}
	if loads != nil && f.loads {
		loads = &Loads{ctx: ctx, loader: &readableLoader{eng: f.eng, in: in, loads: loads}, memo: map[[2]string]map[string]any{}}
	}
	ok, _, err := eval(f.prog.prg, in, loads, rec)
	return ok, err
}

// nulInLiterals reports whether a string or bytes literal of x holds a NUL,
// which no stored text can: PostgreSQL refuses it as a parameter.
func nulInLiterals(x ast.Expr) bool {
	found := false
	ast.PreOrderVisit(x, ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.LiteralKind {
			return
		}
		switch v := e.AsLiteral().(type) {
		case celtypes.String:
			found = found || strings.ContainsRune(string(v), 0)
		case celtypes.Bytes:
			found = found || bytes.IndexByte(v, 0) >= 0
		}
	}))
	return found
}

// Source is the filter's text.
func (f *Filter) Source() string { return f.prog.src }

// callsLoader reports whether x calls get() or exists().
func callsLoader(x ast.Expr) bool {
	found := false
	ast.PreOrderVisit(x, ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.CallKind {
			fn := e.AsCall().FunctionName()
			found = found || strings.HasPrefix(fn, getPrefix) || strings.HasPrefix(fn, existsPrefix)
		}
	}))
	return found
}
