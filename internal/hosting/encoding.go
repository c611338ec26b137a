package hosting

import (
	"cmp"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// encodings are the precompressed siblings looked for, by the
// Content-Encoding they are sent with.
var encodings = map[string]string{"br": ".br", "gzip": ".gz"}

// acceptedEncodings lists the encodings of encodings that an
// Accept-Encoding header accepts, most preferred first: by q-value, and br
// before gzip at equal ones. q=0 refuses an encoding, and * stands for
// those the header does not name.
func acceptedEncodings(header string) []string {
	if header == "" {
		return nil
	}
	q := map[string]float64{}
	star := -1.0
	for item := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(item, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		weight := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				weight = f
			}
		}
		switch name {
		case "*":
			star = weight
		case "x-gzip":
			q["gzip"] = weight
		default:
			q[name] = weight
		}
	}
	var out []string
	for _, enc := range []string{"br", "gzip"} {
		w, ok := q[enc]
		if !ok {
			w = star
		}
		if w > 0 {
			q[enc] = w
			out = append(out, enc)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(q[b], q[a]) })
	return out
}

// DefaultCSP is the Content-Security-Policy of hosted files, for a page
// served at host: scripts, styles, images, fonts, workers and the manifest
// from the page's origin only (images also data: and blob:, which QR codes
// and canvases make; fonts data:), no plugins, no framing, forms and
// <base> only to the origin. connect-src names the WebSocket origins of
// the host beside 'self', since the realtime socket is ws:// beside an
// http:// page (abe dev) and wss:// beside https://, and browsers before
// CSP Level 3 do not count them as 'self'. host is put in only when it is
// a plain host[:port]; otherwise the policy keeps 'self' alone.
func DefaultCSP(host string) string {
	connect := "'self'"
	if hostRE.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self' data:; " +
		"connect-src " + connect + "; worker-src 'self'; manifest-src 'self'; object-src 'none'; " +
		"frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
}

// hostRE is a host name or IP address (v6 in brackets) and a port.
var hostRE = regexp.MustCompile(`^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

func (h *Handler) csp(r *http.Request) string {
	if h.cfg.CSP != "" {
		return h.cfg.CSP
	}
	return DefaultCSP(r.Host)
}
