package httpx

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// CheckText looks through a decoded request body (a struct, map, slice or
// string, as ReadJSON fills them) for text PostgreSQL cannot store: a NUL
// character, which JSON can carry as \u0000 but neither text nor jsonb
// accepts. It returns nil or a 400 naming the field, so such a value is
// refused before it reaches a query rather than failing there.
func CheckText(v any) *Problem {
	field, ok := findNUL(reflect.ValueOf(v), "")
	if !ok {
		return nil
	}
	if field == "" {
		field = "body"
	}
	return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidData, Detail: "the request body holds a NUL character (\\u0000), which cannot be stored",
		Errors: []FieldError{{Field: field, Message: "must not contain a NUL character"}}}
}

func findNUL(v reflect.Value, path string) (string, bool) {
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch v.Kind() {
	case reflect.String:
		return path, strings.IndexByte(v.String(), 0) >= 0
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", false
		}
		return findNUL(v.Elem(), path)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			p := path
			if !f.Anonymous || name != "" {
				p = join(cmpOr(name, f.Name))
			}
			if field, ok := findNUL(v.Field(i), p); ok {
				return field, true
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			key := ""
			if k.Kind() == reflect.String {
				key = k.String()
				if strings.IndexByte(key, 0) >= 0 {
					return path, true
				}
			}
			if field, ok := findNUL(iter.Value(), join(key)); ok {
				return field, true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false // bytes, not text
		}
		for i := range v.Len() {
			if field, ok := findNUL(v.Index(i), path+"["+strconv.Itoa(i)+"]"); ok {
				return field, true
			}
		}
	}
	return "", false
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
