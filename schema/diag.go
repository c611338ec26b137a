package schema

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Pos is where a value came from: a line and column in a file, or an
// environment variable that overrode it.
type Pos struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Env    string
}

func (p Pos) String() string {
	switch {
	case p.Env != "":
		return "$" + p.Env
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
}

// Diagnostic is one problem found in a configuration file: where it is, what
// is wrong and how to fix it.
type Diagnostic struct {
	Pos     Pos
	Path    string // dotted path of the key, e.g. collections.todos.fields.title
	Message string
	Hint    string
}

func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	if d.Hint != "" {
		b.WriteString("\n    fix: ")
		b.WriteString(d.Hint)
	}
	return b.String()
}

// Diagnostics is every problem found in one file. It is returned as an
// error so that callers report all of them at once.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// sorted orders diagnostics by position so a report reads top to bottom.
func (ds Diagnostics) sorted() Diagnostics {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if (a.Env == "") != (b.Env == "") {
			return a.Env == ""
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return ds
}

// Merge adds the problems of a later check that ds does not report
// already (one inside a value ds has a problem with would only repeat it)
// and orders them all by position.
func (ds Diagnostics) Merge(more Diagnostics) Diagnostics {
	out := slices.Clip(ds)
	for _, d := range more {
		if !coveredBy(d, ds) {
			out = append(out, d)
		}
	}
	return out.sorted()
}

func coveredBy(d Diagnostic, reported Diagnostics) bool {
	for _, r := range reported {
		if r.Path != "" && (d.Path == r.Path || strings.HasPrefix(d.Path, r.Path+".") || strings.HasPrefix(d.Path, r.Path+"[")) {
			return true
		}
	}
	return false
}

// pathString renders a key path the way users write it in YAML.
func pathString(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if isIndex(p) {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Suggest returns the candidate s is most likely a misspelling of, for
// "did you mean" hints, or "" when none is close enough to be right: at
// most one edit in a short name, two from 6 characters, three from 12,
// where an edit inserts, deletes or changes a letter or swaps two
// neighbours. Case is ignored.
func Suggest(s string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		if c == s {
			continue
		}
		a, b := strings.ToLower(s), strings.ToLower(c)
		longest, shortest := max(len(a), len(b)), min(len(a), len(b))
		limit := min(1+longest/6, shortest-1)
		if d := editDistance(a, b); d <= limit && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: Levenshtein's,
// with a swap of neighbours as one edit (titel -> title).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
