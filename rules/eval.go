package rules

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	celtypes "github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// Principal is who asks, as rules see it (auth in a rule).
type Principal struct {
	ID, Email     string
	Roles         []string
	Verified, MFA bool
	// Permissions are those the roles grant; "*" grants every permission.
	Permissions []string

	once sync.Once
	val  map[string]any
}

func (p *Principal) value() any {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		roles := p.Roles
		if roles == nil {
			roles = []string{}
		}
		p.val = map[string]any{"id": p.ID, "email": p.Email, "roles": roles, "verified": p.Verified, "mfa": p.MFA}
	})
	return p.val
}

func (p *Principal) roles() []string {
	if p == nil || p.Roles == nil {
		return []string{}
	}
	return p.Roles
}

func (p *Principal) perms() []string {
	if p == nil || p.Permissions == nil {
		return []string{}
	}
	return p.Permissions
}

// superuser reports whether p holds "*", which passes operations that have
// no rule.
func (p *Principal) superuser() bool {
	return p != nil && slices.Contains(p.Permissions, "*")
}

// Request is what rules see of the request (request in a rule).
type Request struct {
	Method, IP string
	Time       time.Time
}

func (r Request) value() map[string]any {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	return map[string]any{"method": r.Method, "ip": r.IP, "time": t}
}

// Input is what one rule evaluation sees.
type Input struct {
	Auth *Principal
	// Record is the record the operation acts on: the stored one for read
	// and delete, the new one for create and update. Values are Go values:
	// string, int64, float64, bool, time.Time, []string, and for json
	// fields whatever encoding/json decodes; nil for null.
	Record map[string]any
	// Before is the stored record, for updates.
	Before map[string]any
	// Changes are the names of the fields an update changes.
	Changes []string
	Request Request
}

// Loader reads records for get() and exists(). It returns nil (no error)
// for a record that does not exist, including for ids that are not UUIDs.
type Loader interface {
	Load(ctx context.Context, collection, id string) (map[string]any, error)
}

// MaxLoads is how many distinct records one evaluation may load.
const MaxLoads = 10

// Loads memoises get() and exists() for one request: records loaded for
// one rule are not loaded again for the next.
type Loads struct {
	ctx    context.Context
	loader Loader
	mu     sync.Mutex
	memo   map[[2]string]map[string]any
}

// NewLoads returns the load memo of one request.
func NewLoads(ctx context.Context, loader Loader) *Loads {
	return &Loads{ctx: ctx, loader: loader, memo: map[[2]string]map[string]any{}}
}

// ErrTooManyLoads is returned when a rule loads more than MaxLoads records.
var ErrTooManyLoads = fmt.Errorf("the rule loads more than %d records with get() and exists(); simplify it", MaxLoads)

// loaderVal is a per-evaluation handle on the request's Loads, passed to
// the get and exists functions as a hidden variable. It counts distinct
// loads against MaxLoads.
type loaderVal struct {
	loads *Loads
	seen  map[[2]string]bool
	err   error
}

var loaderType = cel.OpaqueType(loaderTypeName)

func (l *loaderVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("the loader has no native form")
}
func (l *loaderVal) ConvertToType(ref.Type) ref.Val {
	return celtypes.NewErr("the loader cannot be converted")
}
func (l *loaderVal) Equal(other ref.Val) ref.Val { return celtypes.Bool(other == ref.Val(l)) }
func (l *loaderVal) Type() ref.Type              { return loaderType }
func (l *loaderVal) Value() any                  { return l }

func (l *loaderVal) load(collection, id string) (map[string]any, error) {
	if l == nil || l.loads == nil || l.loads.loader == nil {
		return nil, errors.New("get() and exists() cannot load records here")
	}
	key := [2]string{collection, id}
	if !l.seen[key] {
		if len(l.seen) >= MaxLoads {
			l.err = ErrTooManyLoads
			return nil, ErrTooManyLoads
		}
		l.seen[key] = true
	}
	rec, err := l.loads.get(collection, id)
	if err != nil {
		l.err = fmt.Errorf("load %s %s for a rule: %w", collection, id, err)
		return nil, l.err
	}
	return rec, nil
}

// get loads a record through the memo.
func (ls *Loads) get(collection, id string) (map[string]any, error) {
	key := [2]string{collection, id}
	ls.mu.Lock()
	rec, ok := ls.memo[key]
	ls.mu.Unlock()
	if ok {
		return rec, nil
	}
	rec, err := ls.loader.Load(ls.ctx, collection, id)
	if err != nil {
		return nil, err
	}
	ls.mu.Lock()
	ls.memo[key] = rec
	ls.mu.Unlock()
	return rec, nil
}

// loaderFuncs are the bindings of the per-collection get and exists
// functions.
type loaderFuncs struct {
	adapter celtypes.Adapter
}

func (f *loaderFuncs) get(collection string) func(lv, id ref.Val) ref.Val {
	return func(lv, id ref.Val) ref.Val {
		l, _ := lv.(*loaderVal)
		s, ok := id.(celtypes.String)
		if !ok {
			return celtypes.NullValue
		}
		rec, err := l.load(collection, string(s))
		if err != nil {
			return celtypes.NewErr("%v", err)
		}
		if rec == nil {
			return celtypes.NullValue
		}
		return f.adapter.NativeToValue(rec)
	}
}

func (f *loaderFuncs) exists(collection string) func(lv, id ref.Val) ref.Val {
	return func(lv, id ref.Val) ref.Val {
		l, _ := lv.(*loaderVal)
		s, ok := id.(celtypes.String)
		if !ok {
			return celtypes.False
		}
		rec, err := l.load(collection, string(s))
		if err != nil {
			return celtypes.NewErr("%v", err)
		}
		return celtypes.Bool(rec != nil)
	}
}

// activation resolves the variables of one evaluation without building a
// map.
type activation struct {
	in     *Input
	loader *loaderVal
	fields map[string]any // filters: the record's fields by name
	req    map[string]any
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varAuth:
		return a.in.Auth.value(), true
	case varRecord:
		return a.in.Record, true
	case varBefore:
		return a.in.Before, true
	case varChanges:
		if a.in.Changes == nil {
			return []string{}, true
		}
		return a.in.Changes, true
	case varRequest:
		if a.req == nil {
			a.req = a.in.Request.value()
		}
		return a.req, true
	case varLoader:
		return a.loader, true
	case varRoles:
		return a.in.Auth.roles(), true
	case varPerms:
		return a.in.Auth.perms(), true
	}
	if a.fields != nil {
		v, ok := a.fields[name]
		return v, ok
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// eval runs a compiled expression and says whether it is true. An error
// inside the expression (a null field, a missing related record) makes it
// false, with the error as the reason; err is a failure to load a record,
// which is the server's problem, not the rule's.
func eval(prg cel.Program, in *Input, loads *Loads, fields map[string]any) (ok bool, reason string, err error) {
	lv := &loaderVal{loads: loads, seen: map[[2]string]bool{}}
	out, _, evalErr := prg.Eval(&activation{in: in, loader: lv, fields: fields})
	if lv.err != nil {
		if errors.Is(lv.err, ErrTooManyLoads) {
			return false, lv.err.Error(), nil
		}
		return false, "", lv.err
	}
	if evalErr != nil {
		return false, evalErr.Error(), nil
	}
	b, isBool := out.(celtypes.Bool)
	return isBool && bool(b), "", nil
}
