package hosting

import (
	"io/fs"
	"net/url"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	t.Parallel()
	for _, c := range cleanCases {
		u, err := url.ParseRequestURI(c.target)
		if err != nil {
			t.Fatalf("%s: %v", c.target, err)
		}
		name, dir, ok := Clean(u.Path, u.RawPath)
		if name != c.name || dir != c.dir || ok != c.ok {
			t.Errorf("Clean(%q) = %q %v %v, want %q %v %v", c.target, name, dir, ok, c.name, c.dir, c.ok)
		}
	}
}

var cleanCases = []struct {
	target string
	name   string
	dir    bool
	ok     bool
}{
	{"/", ".", true, true},
	{"/index.html", "index.html", false, true},
	{"/assets/index-DiwrgTda.js", "assets/index-DiwrgTda.js", false, true},
	{"/docs/", "docs", true, true},
	{"/a%20b.txt", "a b.txt", false, true},
	{"/caf%C3%A9", "café", false, true},
	{"/a..b", "a..b", false, true},
	{"/..", "", false, false},
	{"/../etc/passwd", "", false, false},
	{"/%2e%2e/etc/passwd", "", false, false},
	{"/a/./b", "", false, false},
	{"/a/../b", "", false, false},
	{"/a%2fb", "", false, false},
	{"/a%2Fb", "", false, false},
	{"/a%5cb", "", false, false},
	{"/a\\b", "", false, false},
	{"//etc/passwd", "", false, false},
	{"/a//b", "", false, false},
	{"/.env", "", false, false},
	{"/.git/config", "", false, false},
	{"/a/.hidden/b", "", false, false},
	{"/%00", "", false, false},
	{"/a%0d%0ab", "", false, false},
	{"/%ff", "", false, false},
	{"/a/", "a", true, true},
}

// FuzzClean: whatever the path, a name Clean accepts is a path inside
// the directory, with no hidden part and nothing a slash was hidden in.
func FuzzClean(f *testing.F) {
	for _, c := range cleanCases {
		if u, err := url.ParseRequestURI(c.target); err == nil {
			f.Add(u.Path, u.RawPath)
		}
	}
	f.Add("/a/b/", "")
	f.Add("/a/b", "/a%2Fb")
	f.Fuzz(func(t *testing.T, urlPath, rawPath string) {
		name, dir, ok := Clean(urlPath, rawPath)
		if !ok {
			if name != "" || dir {
				t.Fatalf("refused with %q %v", name, dir)
			}
			return
		}
		if !fs.ValidPath(name) || strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") {
			t.Fatalf("Clean(%q) = %q, not a path inside the directory", urlPath, name)
		}
		if name == "." {
			if urlPath != "/" {
				t.Fatalf("Clean(%q) = the directory itself", urlPath)
			}
			return
		}
		if hasDot(name) {
			t.Fatalf("Clean(%q) = %q, with a hidden part", urlPath, name)
		}
		if want := "/" + name; urlPath != want && !(dir && urlPath == want+"/") {
			t.Fatalf("Clean(%q) = %q %v: another path than the request's", urlPath, name, dir)
		}
		if strings.Contains(strings.ToLower(rawPath), "%2f") {
			t.Fatalf("Clean(%q, %q) accepted an encoded slash", urlPath, rawPath)
		}
	})
}

func hasDot(name string) bool {
	for part := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}
