package hosting

import (
	"io/fs"
	"path"
	"strings"
)

// Clean turns the path of a request into the name of a file under the
// hosted directory (an fs.ValidPath: no leading slash, "." for the
// directory itself), or reports that no file may be served for it.
// urlPath is the decoded path (url.URL.Path), rawPath the path as sent
// when it differs (url.URL.RawPath).
//
// It refuses rather than repairs: ".." and "." parts, parts starting with
// a dot (.env, .git/), empty parts (//), backslashes, control characters,
// and slashes or backslashes sent encoded (%2F, %5C), which would name
// another path than the one the request shows. A trailing slash is kept
// off the name; Dir tells the caller it was there.
func Clean(urlPath, rawPath string) (name string, dir bool, ok bool) {
	if !strings.HasPrefix(urlPath, "/") || len(urlPath) > 4096 {
		return "", false, false
	}
	if raw := strings.ToLower(rawPath); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return "", false, false
	}
	if strings.ContainsFunc(urlPath, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' || r == 0xfffd }) {
		return "", false, false
	}
	name = urlPath[1:]
	if name == "" {
		return ".", true, true
	}
	name, dir = strings.CutSuffix(name, "/")
	for part := range strings.SplitSeq(name, "/") {
		if part == "" || strings.HasPrefix(part, ".") {
			return "", false, false
		}
	}
	if !fs.ValidPath(name) || path.Clean(name) != name {
		return "", false, false
	}
	return name, dir, true
}

// hashed tells whether the file's name carries a hash of its content, as
// bundlers name what they emit (app-3f9a1c2b.js, assets/index-DiwrgTda.js,
// main.8e1f0a7c.css), so that it can be cached for good: another content
// gets another name. The hash is the last part before the extension, after
// a '-' or '.', of 8 to 64 letters, digits and '_', and it must look
// random: a digit in it, or an upper-case letter after its first
// character. A name in doubt is not hashed: caching it for a year would
// keep a changed file from users.
func hashed(name string) bool {
	base := path.Base(name)
	base = strings.TrimSuffix(base, ".map")
	dot := strings.LastIndexByte(base, '.')
	if dot <= 0 {
		return false
	}
	stem := base[:dot]
	cut := strings.LastIndexAny(stem, "-.")
	if cut <= 0 {
		return false
	}
	h := stem[cut+1:]
	if len(h) < 8 || len(h) > 64 {
		return false
	}
	random := false
	for i, r := range h {
		switch {
		case r >= '0' && r <= '9':
			random = true
		case r >= 'A' && r <= 'Z':
			random = random || i > 0
		case r >= 'a' && r <= 'z', r == '_':
		default:
			return false
		}
	}
	return random
}

// navigation tells whether the last part of the path names no file type,
// as the routes of a single-page app do (/projects/42), unlike files
// (/logo.png).
func navigation(name string) bool {
	return !strings.Contains(path.Base(name), ".")
}
