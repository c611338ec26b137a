package rules

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	celtypes "github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
	"github.com/google/cel-go/parser"
)

// The rules playground (docs/rules.md, "Rules playground API") shows why a
// rule allows or refuses: the value of every subexpression and the records
// get() and exists() loaded. It runs the compiled rule itself, never a
// copy: the decision is the one Allow makes, and a second, exhaustive run
// of the same checked expression with cel-go's state tracking gives the
// values, including those of branches the real run skipped.

// Explanation is why a rule allows or refuses.
type Explanation struct {
	// Rule is the expression; empty when the operation has no rule.
	Rule string `json:"rule"`
	// Allowed is the decision, as Allow makes it.
	Allowed bool `json:"allowed"`
	// Reason says why it was refused (as in Decision).
	Reason string `json:"reason,omitempty"`
	// Tree holds the value of every subexpression; nil without a rule.
	Tree *Node `json:"tree"`
	// Loads are the records get() and exists() loaded, in order.
	Loads []Load `json:"loads"`
}

// Node is one subexpression of a rule and its value.
type Node struct {
	ID int64 `json:"id"`
	// Expr is the subexpression, written out from the checked expression
	// (get(), has_role() and other macros as written).
	Expr string `json:"expr"`
	// Start and End are its span in the rule, in characters (Unicode code
	// points) from 0, End excluded.
	Start int `json:"start"`
	End   int `json:"end"`
	// Evaluated is false for what the evaluation never reached.
	Evaluated bool `json:"evaluated"`
	// Value is the JSON form of the value; Error, the error instead.
	Value    any     `json:"value"`
	Error    string  `json:"error,omitempty"`
	Children []*Node `json:"children,omitempty"`
}

// Load is a record get() or exists() loaded for a rule.
type Load struct {
	Collection string `json:"collection"`
	ID         string `json:"id"`
	Found      bool   `json:"found"`
	// Record is the record as the rule saw it (nil when not found).
	Record map[string]any `json:"record"`
	// Error is why loading failed.
	Error string `json:"error,omitempty"`
}

// recordingLoader notes every load of an explanation.
type recordingLoader struct {
	next  Loader
	mu    sync.Mutex
	loads []Load
}

func (l *recordingLoader) Load(ctx context.Context, collection, id string) (map[string]any, error) {
	rec, err := l.next.Load(ctx, collection, id)
	ld := Load{Collection: collection, ID: id, Found: rec != nil, Record: jsonRecord(rec)}
	if err != nil {
		ld.Error = err.Error()
	}
	l.mu.Lock()
	l.loads = append(l.loads, ld)
	l.mu.Unlock()
	return rec, err
}

// Explain evaluates the rule of op on collection for in, loading through
// loader, and explains the outcome.
func (e *Engine) Explain(ctx context.Context, collection string, op Op, in *Input, loader Loader) (*Explanation, error) {
	col, err := e.collection(collection)
	if err != nil {
		return nil, err
	}
	noRule := fmt.Sprintf("%s has no %s rule, so only principals with the * permission may %s", collection, op, op)
	return e.explain(ctx, col, col.ops[op], in, loader, noRule)
}

// FieldRule is the rule of a field, and whether it holds.
type FieldRule struct {
	Field string `json:"field"`
	// Kind is read or update.
	Kind string `json:"kind"`
	*Explanation
}

// ExplainFieldRules explains the field rules of kind ("read" or "update")
// of collection for in; for update, only those of the fields in
// in.Changes, as DeniedUpdates checks them.
func (e *Engine) ExplainFieldRules(ctx context.Context, collection, kind string, in *Input, loader Loader) ([]FieldRule, error) {
	col, err := e.collection(collection)
	if err != nil {
		return nil, err
	}
	rules := col.fieldRead
	if kind == "update" {
		rules = col.fieldUpdate
	}
	out := []FieldRule{}
	for _, f := range col.schema.Fields {
		p := rules[f.Name]
		if p == nil || (kind == "update" && !slices.Contains(in.Changes, f.Name)) {
			continue
		}
		x, err := e.explain(ctx, col, p, in, loader, "")
		if err != nil {
			return nil, err
		}
		out = append(out, FieldRule{Field: f.Name, Kind: kind, Explanation: x})
	}
	return out, nil
}

func (e *Engine) explain(ctx context.Context, col *collection, p *program, in *Input, loader Loader, noRule string) (*Explanation, error) {
	rl := &recordingLoader{next: loader}
	d, err := decide(p, in, NewLoads(ctx, rl), nil, noRule)
	if err != nil {
		return nil, err
	}
	x := &Explanation{Allowed: d.Allowed, Reason: d.Reason, Loads: rl.loads}
	if x.Loads == nil {
		x.Loads = []Load{}
	}
	if p == nil {
		return x, nil
	}
	x.Rule = p.src
	// The exhaustive run reads through its own memo over the same loader,
	// so that what it loads beyond the real run does not show as loaded.
	tracked, err := col.env.Program(p.ast, cel.EvalOptions(cel.OptExhaustiveEval))
	if err != nil {
		return nil, fmt.Errorf("rules: explain %s: %w", p.path, err)
	}
	act := &activation{in: in, loader: &loaderVal{loads: NewLoads(ctx, loader), seen: map[[2]string]bool{}}}
	_, det, _ := tracked.Eval(act) //nolint:errcheck // the values, errors included, are in the state
	x.Tree = newTreeBuilder(p, det.State(), act).build(p.ast.NativeRep().Expr())
	return x, nil
}

// treeBuilder turns the evaluation state into a Node tree.
type treeBuilder struct {
	src   []rune
	info  *ast.SourceInfo
	state interpreter.EvalState
	act   *activation
	index map[int64]ast.Expr
}

func newTreeBuilder(p *program, state interpreter.EvalState, act *activation) *treeBuilder {
	a := p.ast.NativeRep()
	b := &treeBuilder{src: []rune(p.src), info: a.SourceInfo(), state: state, act: act, index: map[int64]ast.Expr{}}
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(x ast.Expr) { b.index[x.ID()] = x }))
	return b
}

// build makes the node of x. A macro (get, exists, has_role, has, all, ...)
// shows as written, with its arguments as children, not its expansion.
func (b *treeBuilder) build(x ast.Expr) *Node {
	n := &Node{ID: x.ID()}
	// Written out on one line (no operator wraps it).
	n.Expr, _ = parser.Unparse(x, b.info, parser.WrapOnOperators()) //nolint:errcheck // an expression that type-checked unparses
	var kids []ast.Expr
	if call, ok := b.info.GetMacroCall(x.ID()); ok {
		c := call.AsCall()
		args := c.Args()
		if c.IsMemberFunction() {
			args = append([]ast.Expr{c.Target()}, args...)
		}
		for _, a := range args {
			if y, ok := b.index[a.ID()]; ok {
				a = y
			}
			if a.Kind() != ast.UnspecifiedExprKind {
				kids = append(kids, a)
			}
		}
	} else {
		kids = children(x)
	}
	for _, k := range kids {
		n.Children = append(n.Children, b.build(k))
	}
	n.Start, n.End = b.span(x, n.Children)
	b.value(n, x)
	return n
}

// value sets the node's value from the state. Names the interpreter
// resolves together with their fields (record.owner) have no value of
// their own there, so a top-level name is read from the activation.
func (b *treeBuilder) value(n *Node, x ast.Expr) {
	v, ok := b.state.Value(x.ID())
	if !ok {
		switch x.Kind() {
		case ast.LiteralKind:
			v, ok = x.AsLiteral(), true
		case ast.IdentKind:
			var native any
			if native, ok = b.act.ResolveName(x.AsIdent()); ok {
				v = celtypes.DefaultTypeAdapter.NativeToValue(native)
				if native == nil || isNilMap(native) {
					v = celtypes.NullValue
				}
			}
		}
	}
	if !ok {
		return
	}
	n.Evaluated = true
	if err, isErr := v.(*celtypes.Err); isErr {
		n.Error = cleanCELMessage(err.Error())
		return
	}
	if celtypes.IsUnknown(v) {
		n.Error = "unknown"
		return
	}
	n.Value = jsonValue(v)
}

func isNilMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && m == nil
}

// span is where x is in the rule: what its own token and its children
// cover, stretched over a selected field's name and closing brackets.
func (b *treeBuilder) span(x ast.Expr, kids []*Node) (int, int) {
	start, end := -1, -1
	if o, ok := b.info.GetOffsetRange(x.ID()); ok {
		start, end = int(o.Start), int(o.Stop)
	}
	for _, k := range kids {
		if k.Start >= 0 && (start < 0 || k.Start < start) {
			start = k.Start
		}
		if k.End > end {
			end = k.End
		}
	}
	if start < 0 {
		return 0, 0
	}
	end = min(end, len(b.src))
	_, macro := b.info.GetMacroCall(x.ID())
	switch {
	case x.Kind() == ast.LiteralKind:
		// The parser measures a token's end in bytes: find a string's
		// closing quote instead.
		if le := b.literalEnd(start); le > start {
			end = le
		}
	case x.Kind() == ast.SelectKind && !macro:
		// The token is the dot: take the field's name after it.
		i := b.skipSpace(end)
		for i < len(b.src) && isIdentRune(b.src[i]) {
			i++
		}
		end = i
	case macro, x.Kind() == ast.ListKind, x.Kind() == ast.MapKind, x.Kind() == ast.StructKind,
		x.Kind() == ast.CallKind && !isOperator(x.AsCall().FunctionName()):
		if i := b.skipSpace(end); i < len(b.src) && (b.src[i] == ')' || b.src[i] == ']' || b.src[i] == '}') {
			end = i + 1
		}
		// A global call's token is its parenthesis: take its name before it.
		if start < len(b.src) && b.src[start] == '(' {
			i := start
			for i > 0 && unicode.IsSpace(b.src[i-1]) {
				i--
			}
			for i > 0 && isIdentRune(b.src[i-1]) {
				i--
			}
			start = i
		}
	}
	return b.balance(start, end)
}

// literalEnd is where a string or bytes literal starting at i ends (i when
// it is no such literal).
func (b *treeBuilder) literalEnd(i int) int {
	j := i
	for j < len(b.src) && j-i < 2 && (b.src[j] == 'r' || b.src[j] == 'R' || b.src[j] == 'b' || b.src[j] == 'B') {
		j++
	}
	if j >= len(b.src) || (b.src[j] != '\'' && b.src[j] != '"') {
		return i
	}
	q := string(b.src[j])
	if j+2 < len(b.src) && string(b.src[j:j+3]) == q+q+q {
		q += q + q
	}
	raw := j > i && (b.src[i] == 'r' || b.src[i] == 'R' || (j-i == 2 && (b.src[i+1] == 'r' || b.src[i+1] == 'R')))
	for k := j + len(q); k+len(q) <= len(b.src); k++ {
		if b.src[k] == '\\' && !raw {
			k++
			continue
		}
		if string(b.src[k:k+len(q)]) == q {
			return k + len(q)
		}
	}
	return len(b.src)
}

// balance widens a span over the parentheses it opens or closes but does
// not hold whole, as in (a || b) && c, whose children start after "(".
func (b *treeBuilder) balance(start, end int) (int, int) {
	for range len(b.src) {
		opens, closes := b.unmatched(start, end)
		switch {
		case closes > 0 && start > 0:
			i := start
			for i > 0 && b.src[i-1] != '(' {
				i--
			}
			start = max(i-1, 0)
		case opens > 0 && end < len(b.src):
			i := end
			for i < len(b.src) && b.src[i] != ')' {
				i++
			}
			end = min(i+1, len(b.src))
		default:
			return start, end
		}
	}
	return start, end
}

// unmatched counts the parentheses of src[start:end] that open and are not
// closed in it, and that close what it did not open, outside strings.
func (b *treeBuilder) unmatched(start, end int) (opens, closes int) {
	for i := start; i < end; i++ {
		switch r := b.src[i]; r {
		case '\'', '"':
			if e := b.literalEnd(i); e > i {
				i = e - 1
			}
		case '(':
			opens++
		case ')':
			if opens > 0 {
				opens--
			} else {
				closes++
			}
		}
	}
	return opens, closes
}

func isIdentRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func (b *treeBuilder) skipSpace(i int) int {
	for i < len(b.src) && unicode.IsSpace(b.src[i]) {
		i++
	}
	return i
}

func isOperator(fn string) bool {
	return len(fn) > 0 && (fn[0] == '_' || fn[0] == '!' || fn[0] == '-' || fn == "@in")
}

// jsonValue is the JSON form of a CEL value.
func jsonValue(v ref.Val) any {
	switch x := v.(type) {
	case celtypes.Null:
		return nil
	case celtypes.Bool:
		return bool(x)
	case celtypes.Int:
		return int64(x)
	case celtypes.Uint:
		return uint64(x)
	case celtypes.Double:
		return float64(x)
	case celtypes.String:
		return string(x)
	case celtypes.Bytes:
		return base64.StdEncoding.EncodeToString(x)
	case celtypes.Timestamp:
		return x.Time.UTC().Format(time.RFC3339Nano)
	case celtypes.Duration:
		return x.Duration.String()
	case *loaderVal:
		return nil
	}
	switch x := v.(type) {
	case traits.Mapper:
		out := map[string]any{}
		it := x.Iterator()
		for it.HasNext() == celtypes.True {
			k := it.Next()
			out[fmt.Sprint(jsonValue(k))] = jsonValue(x.Get(k))
		}
		return out
	case traits.Lister:
		out := []any{}
		it := x.Iterator()
		for it.HasNext() == celtypes.True {
			out = append(out, jsonValue(it.Next()))
		}
		return out
	case ref.Type:
		return x.TypeName()
	}
	return jsonNative(v.Value())
}

// jsonNative is the JSON form of a Go value of a record.
func jsonNative(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case map[string]any:
		return jsonRecord(x)
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = jsonNative(it)
		}
		return out
	case ref.Val:
		return jsonValue(x)
	}
	return v
}

func jsonRecord(rec map[string]any) map[string]any {
	if rec == nil {
		return nil
	}
	out := make(map[string]any, len(rec))
	for k, v := range rec {
		out[k] = jsonNative(v)
	}
	return out
}
