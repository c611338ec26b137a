package schema

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The YAML parser names the line where the mapping or list around a
// syntax error began (0-based, for most errors), not where the error is,
// and no column. The fault is where the text stops parsing: the first
// line, and in it the first character, whose prefix of the file fails
// with the same complaint as the whole file.

var yamlErrRE = regexp.MustCompile(`^yaml: (?:line (\d+)(?:, column (\d+))?: )?(.*)$`)

// locateBudget bounds the search for a fault, in bytes parsed: each step
// parses the file up to where it tries. Real files are found well within
// it; a pathological one keeps the parser's line.
const locateBudget = 32 << 20

func syntaxDiagnostic(file string, data []byte, err error) Diagnostic {
	d := Diagnostic{Pos: Pos{File: file, Line: 1}, Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	problem := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlErrRE.FindStringSubmatch(err.Error()); m != nil {
		d.Pos.Line, _ = strconv.Atoi(m[1])
		d.Pos.Line = max(d.Pos.Line, 1)
		problem = m[3]
		d.Message = "invalid YAML: " + problem
	}
	line, col, text := locateSyntaxError(data, problem, d.Pos.Line)
	if line > 0 {
		// An unclosed { or [ is reported where the parser gave up
		// inside it; the opening bracket is what to look at.
		switch {
		case strings.Contains(problem, "expected ',' or '}'"):
			col = opener(text, col, '{', '}')
		case strings.Contains(problem, "expected ',' or ']'"):
			col = opener(text, col, '[', ']')
		case strings.HasPrefix(problem, "unknown anchor"):
			// The name ends where the search found it; the alias starts at *.
			runes := []rune(text)
			if i := strings.LastIndex(string(runes[:min(col, len(runes))]), "*"); i >= 0 {
				col = utf8.RuneCountInString(text[:i]) + 1
			}
		}
		d.Pos.Line, d.Pos.Column = line, col
	}
	d.Hint = syntaxHint(problem, text, col)
	return d
}

// locateSyntaxError finds the line and column (1-based, in characters)
// of the fault, searching from the line the parser named; it returns the
// text of that line too. line is 0 when the fault was not found.
func locateSyntaxError(data []byte, problem string, from int) (line, col int, text string) {
	budget := locateBudget
	fails := func(prefix string) bool {
		budget -= len(prefix)
		err := decodeAll(prefix)
		return err != nil && strings.HasSuffix(err.Error(), problem)
	}
	lines := strings.SplitAfter(string(data), "\n")
	// The parser's line is the start of the enclosing block or value, 0-
	// or 1-based, or the line after it: the fault is not before the line
	// above it.
	start := max(from-1, 1)
	if start > len(lines) {
		return 0, 0, ""
	}
	prefix := strings.Join(lines[:start-1], "")
	for k := start; k <= len(lines) && budget > 0; k++ {
		l := lines[k-1]
		if !fails(prefix + l) {
			prefix += l
			continue
		}
		text = strings.TrimRight(l, "\r\n")
		// The shortest part of the line that fails ends with the
		// character at fault.
		for end := 1; end <= len(l) && budget > 0; end++ {
			if end < len(l) && !utf8.RuneStart(l[end]) {
				continue
			}
			if fails(prefix + l[:end]) {
				return k, utf8.RuneCountInString(l[:end]), text
			}
		}
		return k, 0, text
	}
	return 0, 0, ""
}

// opener returns the column of the last bracket open before col in
// text, or col when there is none.
func opener(text string, col int, open, close rune) int {
	var stack []int
	for i, r := range []rune(text) {
		if i >= col {
			break
		}
		switch r {
		case open:
			stack = append(stack, i+1)
		case close:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if len(stack) == 0 {
		return col
	}
	return stack[len(stack)-1]
}

// decodeAll parses every document of src, for the search above.
func decodeAll(src string) error {
	dec := yaml.NewDecoder(strings.NewReader(src))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// syntaxHint says how to fix the commonest syntax errors; text is the
// line at fault and col the column in it (both may be unknown).
func syntaxHint(problem, text string, col int) string {
	at := ""
	if col > 0 && col <= utf8.RuneCountInString(text) {
		at = string([]rune(text)[col-1])
	}
	switch {
	case at == "\t" || (strings.Contains(problem, "cannot start any token") && strings.HasPrefix(strings.TrimLeft(text, " "), "\t")):
		return "indent with spaces: YAML does not allow tabs for indentation"
	case strings.Contains(problem, "did not find expected key"), strings.Contains(problem, "did not find expected '-' indicator"):
		return "indent this line like the keys beside it: a key belongs to the mapping whose keys start in the same column"
	case strings.Contains(problem, "mapping values are not allowed"):
		return "quote a value that contains `: `, like title: \"a: b\"; or, if this is a key, indent it under a key that ends with `:` and no value"
	case strings.Contains(problem, "did not find expected ',' or '}'"):
		return "close the { ... } on this line with }, and separate its entries with commas"
	case strings.Contains(problem, "did not find expected ',' or ']'"):
		return "close the [ ... ] on this line with ], and separate its items with commas"
	case strings.Contains(problem, "found unexpected end of stream"), strings.Contains(problem, "found unexpected end of"):
		return "close the quote that starts here"
	case strings.Contains(problem, "cannot start any token"):
		return "quote the value: a plain value cannot start with " + strconv.Quote(at)
	case strings.Contains(problem, "unknown anchor"):
		return "define the anchor (&name) before the alias (*name) that uses it"
	}
	return "fix the YAML syntax; indent with spaces, and quote values that contain `: ` or start with a special character"
}
