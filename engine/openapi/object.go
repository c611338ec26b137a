package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// object is a JSON object that keeps its members in the order they were
// set. A Go map would sort them, and the document reads best, and diffs
// best, with collections and fields in the order abe.yaml declares them.
type object struct {
	keys []string
	vals map[string]any
}

// obj makes an object from key, value pairs. A nil value leaves its key
// out, so optional members can be written inline.
func obj(kv ...any) *object {
	if len(kv)%2 != 0 {
		panic("openapi: obj needs key, value pairs")
	}
	o := &object{vals: map[string]any{}}
	for i := 0; i < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

// set adds or replaces a member; a replaced member keeps its place.
func (o *object) set(key string, v any) *object {
	if v == nil {
		return o
	}
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = v
	return o
}

// get returns a member, or nil.
func (o *object) get(key string) any { return o.vals[key] }

// MarshalJSON writes the members in order.
func (o *object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := encode(&buf, k); err != nil {
			return nil, err
		}
		buf.WriteByte(':')
		if err := encode(&buf, o.vals[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// encode appends v as JSON without escaping <, > and &: the outer encoder
// keeps what a Marshaler returns, and descriptions and patterns are meant
// to be read as written.
func encode(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode ends the value with a newline
	return nil
}
