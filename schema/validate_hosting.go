package schema

import (
	"io/fs"
	"strings"
	"time"
)

// checkHosting checks the hosting section. Whether hosting.dir exists is
// checked when abe starts, not here: `abe validate` and `abe migrate` run
// before the web app is built as often as after.
func (c *checker) checkHosting() {
	h := &c.cfg.Hosting
	if sw := h.ServiceWorker; !fs.ValidPath(sw) || strings.ContainsAny(sw, `\`) || hasDotSegment(sw) {
		c.add([]string{"hosting", "service_worker"}, false, "%q is not the path of a file in hosting.dir", "write it relative to the directory, like sw.js or app/sw.js, with no '..' and no part starting with a dot", sw)
	}
	if h.MaxAge != nil && time.Duration(*h.MaxAge) > 365*24*time.Hour {
		c.add([]string{"hosting", "max_age"}, false, "max_age must be at most 365d, not %s", "files without a hash in their names change between releases; keep it short, like 5m", *h.MaxAge)
	}
	if strings.ContainsFunc(h.CSP, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		c.add([]string{"hosting", "csp"}, false, "the policy holds a line break or control character", "write the policy on one line, directives separated by ';'")
	}
}

// hasDotSegment tells whether a slash-separated path has a part starting
// with a dot (a hidden file, or . and ..).
func hasDotSegment(p string) bool {
	for part := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}
