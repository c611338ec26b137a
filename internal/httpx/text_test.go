package httpx

import (
	"encoding/json"
	"testing"
)

func TestCheckText(t *testing.T) {
	t.Parallel()
	type inner struct {
		Code string `json:"code"`
	}
	type body struct {
		Email string            `json:"email"`
		Tags  []string          `json:"tags"`
		Meta  map[string]any    `json:"meta"`
		Ptr   *string           `json:"ptr"`
		Skip  string            `json:"-"`
		Attrs map[string]string `json:"attrs"`
		inner
	}
	for _, c := range []struct {
		in    string
		field string // "" for no problem
	}{
		{`{"email":"a@b.test","tags":["x"],"meta":{"k":[1,"v"]},"ptr":"p","attrs":{"a":"b"},"code":"123456"}`, ""},
		{`{"email":"a\u0000@b.test"}`, "email"},
		{`{"tags":["ok","b\u0000"]}`, "tags[1]"},
		{`{"meta":{"k":[1,{"deep":"\u0000"}]}}`, "meta.k[1].deep"},
		{`{"meta":{"k\u0000":1}}`, "meta"},
		{`{"ptr":"\u0000"}`, "ptr"},
		{`{"code":"12\u00003"}`, "code"},
		{`{"email":"the text \\u0000 is not a NUL"}`, ""},
	} {
		var b body
		if err := json.Unmarshal([]byte(c.in), &b); err != nil {
			t.Fatal(err)
		}
		p := CheckText(&b)
		switch {
		case c.field == "" && p != nil:
			t.Errorf("%s: %+v", c.in, p)
		case c.field != "" && (p == nil || p.Status != 400 || p.Errors[0].Field != c.field):
			t.Errorf("%s: %+v, want field %s", c.in, p, c.field)
		}
	}
	var anyBody any
	_ = json.Unmarshal([]byte(`["a","\u0000"]`), &anyBody)
	if p := CheckText(anyBody); p == nil || p.Errors[0].Field != "[1]" {
		t.Errorf("a bare array: %+v", p)
	}
}
