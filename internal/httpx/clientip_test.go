package httpx

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

var testProxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix // testProxies when nil
		remote  string
		header  http.Header
		tls     bool
		want    string
		https   bool
	}{
		{name: "no proxy", remote: "203.0.113.5:1234", want: "203.0.113.5"},
		{name: "untrusted peer spoofing every header", remote: "203.0.113.5:1234", header: http.Header{
			"X-Forwarded-For": {"1.1.1.1"}, "Forwarded": {"for=2.2.2.2;proto=https"}, "X-Forwarded-Proto": {"https"},
		}, want: "203.0.113.5"},
		{name: "one trusted proxy", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"198.51.100.7"}}, want: "198.51.100.7"},
		{name: "two trusted proxies", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"198.51.100.7, 10.0.0.2"}}, want: "198.51.100.7"},
		{name: "spoofed left entries", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7, 10.0.0.2"}}, want: "198.51.100.7"},
		{name: "all trusted: leftmost", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"10.0.0.3, 10.0.0.2"}}, want: "10.0.0.3"},
		{name: "trusted peer without headers", remote: "10.0.0.1:5555", want: "10.0.0.1"},
		{name: "garbage stops at the nearest trusted hop", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"198.51.100.7, garbage, 10.0.0.2"}}, want: "10.0.0.2"},
		{name: "garbage next to the peer", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"198.51.100.7, not-an-ip"}}, want: "10.0.0.1"},
		{name: "empty entry", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"198.51.100.7, "}}, want: "10.0.0.1"},
		{name: "xff with port", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"198.51.100.7:4000"}}, want: "198.51.100.7"},
		{name: "xff bare ipv6", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"2001:db8::2"}}, want: "2001:db8::2"},
		{name: "xff several lines in order", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7", "10.0.0.2"}}, want: "198.51.100.7"},
		{name: "xff several lines, client on the last", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"10.0.0.3", "198.51.100.7"}}, want: "198.51.100.7"},
		{name: "forwarded quoted ipv6 with port", remote: "10.0.0.1:5555", header: http.Header{
			"Forwarded": {`for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2;proto=https`},
		}, want: "2001:db8:cafe::17", https: true},
		{name: "forwarded quoted ipv4 with port", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {`for="198.51.100.7:8080"`}}, want: "198.51.100.7"},
		{name: "forwarded obfuscated port", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {`for="198.51.100.7:_port1"`}}, want: "198.51.100.7"},
		{name: "forwarded unknown", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {"for=198.51.100.7, for=unknown"}}, want: "10.0.0.1"},
		{name: "forwarded obfuscated node", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {"for=198.51.100.7, for=_hidden, for=10.0.0.2"}}, want: "10.0.0.2"},
		{name: "forwarded element without for", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {"for=198.51.100.7, by=10.0.0.9"}}, want: "10.0.0.1"},
		{name: "forwarded unterminated quote", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {`for=198.51.100.7, for="10.0.0.2\"`}}, want: "10.0.0.1"},
		{name: "forwarded quoted separators", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {`for=198.51.100.7;by="a,b;c", for=10.0.0.2`}}, want: "198.51.100.7"},
		{name: "forwarded case-insensitive names", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {"For=198.51.100.7;Proto=HTTPS"}}, want: "198.51.100.7", https: true},
		{name: "forwarded several lines", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {"for=6.6.6.6, for=198.51.100.7", "for=10.0.0.2"}}, want: "198.51.100.7"},
		{name: "forwarded wins over xff", remote: "10.0.0.1:5555", header: http.Header{
			"Forwarded": {"for=198.51.100.7"}, "X-Forwarded-For": {"198.51.100.8"},
		}, want: "198.51.100.7"},
		{name: "forwarded without for falls back to xff", remote: "10.0.0.1:5555", header: http.Header{
			"Forwarded": {"proto=https"}, "X-Forwarded-For": {"198.51.100.8"},
		}, want: "198.51.100.8", https: true},
		{name: "v4-mapped peer and hop", remote: "[::ffff:10.0.0.1]:443", header: http.Header{"X-Forwarded-For": {"::ffff:198.51.100.7, ::ffff:10.0.0.2"}}, want: "198.51.100.7"},
		{name: "v4-mapped trusted prefix", trusted: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, remote: "10.0.0.1:443",
			header: http.Header{"X-Forwarded-For": {"198.51.100.7"}}, want: "198.51.100.7"},
		{name: "ipv6 untrusted peer", remote: "[2001:db8::1]:443", header: http.Header{"X-Forwarded-For": {"1.1.1.1"}}, want: "2001:db8::1"},
		{name: "ipv6 trusted peer", remote: "[fd00::1]:443", header: http.Header{"X-Forwarded-For": {"2001:db8::2, fd00::2"}}, want: "2001:db8::2"},
		{name: "zone stripped", remote: "[fe80::1%eth0]:80", want: "fe80::1"},
		{name: "zone stripped from a hop", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"fe80::2%eth0"}}, want: "fe80::2"},
		{name: "unparseable peer", remote: "pipe", header: http.Header{"X-Forwarded-For": {"1.1.1.1"}}, want: ""},
		{name: "tls", remote: "203.0.113.5:1234", tls: true, want: "203.0.113.5", https: true},
		{name: "proto from a trusted proxy", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-For": {"198.51.100.7"}, "X-Forwarded-Proto": {"https"}}, want: "198.51.100.7", https: true},
		{name: "proto of the nearest hop", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-Proto": {"https, http"}}, want: "10.0.0.1"},
		{name: "proto of the nearest line", remote: "10.0.0.1:5555", header: http.Header{"X-Forwarded-Proto": {"http", "https"}}, want: "10.0.0.1", https: true},
		{name: "spoofed forwarded proto on a far hop", remote: "10.0.0.1:5555", header: http.Header{"Forwarded": {"for=1.1.1.1;proto=https, for=198.51.100.7"}}, want: "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			trusted := tc.trusted
			if trusted == nil {
				trusted = testProxies
			}
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.remote
			req.Header = tc.header
			if req.Header == nil {
				req.Header = http.Header{}
			}
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			}
			var got netip.Addr
			var https bool
			ClientIP(trusted)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				got, https = ClientAddr(r.Context()), IsHTTPS(r)
			})).ServeHTTP(httptest.NewRecorder(), req)
			if tc.want == "" {
				if got.IsValid() {
					t.Errorf("client %v, want none", got)
				}
			} else if got.String() != tc.want {
				t.Errorf("client %v, want %s", got, tc.want)
			}
			if https != tc.https {
				t.Errorf("https %v, want %v", https, tc.https)
			}
		})
	}
}

func TestClientIPString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ remote, want string }{
		{"203.0.113.5:1234", "203.0.113.5"},
		{"[::ffff:203.0.113.5]:1234", "203.0.113.5"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"name:80", "name"},
		{"pipe", "pipe"},
	} {
		// Without the middleware, RemoteAddr is all there is.
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = tc.remote
		if got := ClientIPString(req); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.remote, got, tc.want)
		}
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "10.0.0.1:80"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	var got string
	ClientIP(testProxies)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = ClientIPString(r) })).ServeHTTP(httptest.NewRecorder(), req)
	if got != "198.51.100.7" {
		t.Errorf("behind a proxy: %q", got)
	}
}

func FuzzForwarded(f *testing.F) {
	for _, s := range [][2]string{
		{`for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2`, ""},
		{`for=unknown, for=_hidden;by="a,b"`, "1.2.3.4"},
		{`for="unterminated`, "::ffff:1.2.3.4, [::1]:80, fe80::1%eth0"},
		{"", "198.51.100.7, 10.0.0.2"},
		{`for="\"[::1]\""`, " , ,,"},
	} {
		f.Add(s[0], s[1])
	}
	mw := ClientIP(testProxies)
	f.Fuzz(func(t *testing.T, fwd, xff string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = "10.0.0.1:5555"
		req.Header = http.Header{"Forwarded": {fwd}, "X-Forwarded-For": {xff}}
		var got netip.Addr
		mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = ClientAddr(r.Context()) })).ServeHTTP(httptest.NewRecorder(), req)
		if got.IsValid() && (got.Is4In6() || got.Zone() != "") {
			t.Errorf("not normalised: %v", got)
		}
		for _, line := range []string{fwd, xff} {
			for _, e := range parseForwarded(line) {
				if a, ok := parseHop(e["for"]); ok && !a.IsValid() {
					t.Errorf("parseHop(%q) accepted an invalid address", e["for"])
				}
			}
		}
	})
}
