package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Decode reads a JSON array of operations, strictly: besides malformed
// JSON it rejects unknown, duplicate or misspelt keys (key names are
// case-sensitive), wrong types, a missing "value" (null is allowed for
// set only), an empty path or one deeper than MaxPathDepth, a bad "where"
// or one on an op other than listInsert, and more than MaxOps ops. The
// error is a *DecodeError naming the op.
func Decode(data []byte) ([]Op, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, &DecodeError{Index: -1, Message: "ops must be a JSON array of operations"}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, &DecodeError{Index: -1, Message: "ops are not valid JSON: " + jsonMessage(err)}
	}
	if len(raws) > MaxOps {
		return nil, &DecodeError{Index: -1, Message: fmt.Sprintf("%d ops; at most %d are allowed at once", len(raws), MaxOps)}
	}
	out := make([]Op, len(raws))
	for i, raw := range raws {
		op, err := parseOp(raw)
		if err != nil {
			return nil, &DecodeError{Index: i, Message: err.Error()}
		}
		out[i] = op
	}
	return out, nil
}

// UnmarshalJSON reads one operation with the rules of Decode.
func (o *Op) UnmarshalJSON(data []byte) error {
	op, err := parseOp(data)
	if err != nil {
		return fmt.Errorf("invalid operation: %w", err)
	}
	*o = op
	return nil
}

// MarshalJSON writes the op as {"op", "path", "value", "where"}; an op that
// breaks the rules of Decode is an error, so that what is sent decodes.
func (o Op) MarshalJSON() ([]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"op":`)
	if err := writeJSON(&b, o.Op); err != nil {
		return nil, err
	}
	b.WriteString(`,"path":`)
	if err := writeJSON(&b, o.Path); err != nil {
		return nil, err
	}
	b.WriteString(`,"value":`)
	if err := writeJSON(&b, o.Value); err != nil {
		return nil, fmt.Errorf("value of %s %s: %w", o.Op, formatPath(o.Path), err)
	}
	if o.Where != nil {
		b.WriteString(`,"where":`)
		if err := writeJSON(&b, o.Where); err != nil {
			return nil, fmt.Errorf("where of %s %s: %w", o.Op, formatPath(o.Path), err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MarshalJSON writes a key as a string and an index as a number.
func (p PathElem) MarshalJSON() ([]byte, error) {
	if p.IsIndex {
		return json.Marshal(p.Index)
	}
	return json.Marshal(p.Key)
}

// UnmarshalJSON reads a string as a key and a whole number from 0 to
// MaxIndex as an index.
func (p *PathElem) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("path step: %s", jsonMessage(err))
	}
	e, err := pathElem(v)
	if err != nil {
		return fmt.Errorf("path step %w", err)
	}
	*p = e
	return nil
}

// MarshalJSON writes "append", "prepend", {"before": anchor} or
// {"after": anchor}.
func (w Where) MarshalJSON() ([]byte, error) {
	switch w.Pos {
	case Append, Prepend:
		if w.Anchor != nil {
			return nil, fmt.Errorf("where %q takes no anchor", w.Pos)
		}
		return json.Marshal(string(w.Pos))
	case Before, After:
		var b bytes.Buffer
		b.WriteString(`{"` + string(w.Pos) + `":`)
		if err := writeJSON(&b, w.Anchor); err != nil {
			return nil, fmt.Errorf("anchor: %w", err)
		}
		b.WriteByte('}')
		return b.Bytes(), nil
	default:
		return nil, fmt.Errorf("unknown where %q: want append, prepend, before or after", w.Pos)
	}
}

// UnmarshalJSON reads the forms MarshalJSON writes.
func (w *Where) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("where: %s", jsonMessage(err))
	}
	got, err := where(v)
	if err != nil {
		return err
	}
	*w = *got
	return nil
}

// writeJSON appends v as JSON.
func writeJSON(b *bytes.Buffer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(data)
	return nil
}

// opKeys are the keys an op object may have.
const opKeys = "op, path, value, where"

// parseOp reads one op object. It walks the tokens itself because
// encoding/json matches keys case-insensitively and lets a duplicate key
// override the first.
func parseOp(data []byte) (Op, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return Op{}, errors.New("invalid JSON: " + jsonMessage(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return Op{}, errors.New("an op must be a JSON object")
	}
	fields := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Op{}, errors.New("invalid JSON: " + jsonMessage(err))
		}
		key, _ := tok.(string)
		switch key {
		case "op", "path", "value", "where":
		default:
			return Op{}, fmt.Errorf("unknown key %q: an op has %s", key, opKeys)
		}
		if _, dup := fields[key]; dup {
			return Op{}, fmt.Errorf("duplicate key %q", key)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return Op{}, fmt.Errorf("%s: invalid JSON: %s", key, jsonMessage(err))
		}
		fields[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return Op{}, errors.New("invalid JSON: " + jsonMessage(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Op{}, errors.New("invalid JSON: data after the op object")
	}

	var op Op
	name, ok := fields["op"]
	if !ok {
		return Op{}, errors.New(`"op" is missing: want set, listInsert or listRemove`)
	}
	if op.Op, ok = name.(string); !ok {
		return Op{}, fmt.Errorf(`"op" is %s: want the string set, listInsert or listRemove`, kind(name, true))
	}
	switch op.Op {
	case OpSet, OpListInsert, OpListRemove:
	default:
		return Op{}, fmt.Errorf("unknown op %q: want set, listInsert or listRemove", op.Op)
	}

	p, ok := fields["path"]
	if !ok {
		return Op{}, errors.New(`"path" is missing: want an array such as ["title"] or ["meta", "tags", 0]`)
	}
	steps, ok := p.([]any)
	if !ok {
		return Op{}, fmt.Errorf(`"path" is %s: want an array such as ["title"] or ["meta", "tags", 0]`, kind(p, true))
	}
	if len(steps) > MaxPathDepth {
		return Op{}, fmt.Errorf("the path has %d steps; at most %d are allowed", len(steps), MaxPathDepth)
	}
	op.Path = make([]PathElem, len(steps))
	for i, s := range steps {
		if op.Path[i], err = pathElem(s); err != nil {
			return Op{}, fmt.Errorf("path[%d] %w", i, err)
		}
	}

	if op.Value, ok = fields["value"]; !ok {
		return Op{}, fmt.Errorf(`"value" is missing: %s needs one`, op.Op)
	}
	if w, ok := fields["where"]; ok {
		if op.Where, err = where(w); err != nil {
			return Op{}, err
		}
	}
	if err := op.validate(); err != nil {
		var ie *invalidError
		if errors.As(err, &ie) {
			return Op{}, errors.New(ie.msg)
		}
		return Op{}, err
	}
	return op, nil
}

func pathElem(v any) (PathElem, error) {
	switch x := v.(type) {
	case string:
		return PathElem{Key: x}, nil
	case float64:
		// A whole number however it is written (2, 2.0, 2e0), as
		// JavaScript reads them all as 2.
		if x < 0 || x > MaxIndex || x != math.Trunc(x) {
			n, _ := json.Marshal(x)
			return PathElem{}, fmt.Errorf("is %s: an index must be a whole number from 0 to %d", n, MaxIndex)
		}
		return PathElem{Index: int(x), IsIndex: true}, nil
	default:
		return PathElem{}, fmt.Errorf("is %s: want a string (a key) or a number (an index)", kind(v, true))
	}
}

func where(v any) (*Where, error) {
	const want = `want "append", "prepend", {"before": item} or {"after": item}`
	switch x := v.(type) {
	case string:
		if x == string(Append) || x == string(Prepend) {
			return &Where{Pos: Position(x)}, nil
		}
		return nil, fmt.Errorf(`unknown where %q: %s`, x, want)
	case map[string]any:
		if len(x) == 1 {
			for k, anchor := range x {
				if k == string(Before) || k == string(After) {
					return &Where{Pos: Position(k), Anchor: anchor}, nil
				}
			}
		}
		return nil, errors.New(`where as an object must have one key, "before" or "after"`)
	default:
		return nil, fmt.Errorf(`where is %s: %s`, kind(v, true), want)
	}
}

// jsonMessage drops the "json: " prefix of encoding/json errors, which
// means nothing to a client.
func jsonMessage(err error) string {
	s := err.Error()
	if len(s) > 6 && s[:6] == "json: " {
		return s[6:]
	}
	return s
}
