package schema

import (
	"net/netip"
	"strings"
	"testing"
)

var allowCases = []struct {
	in     string
	prefix string
	host   string
	bad    bool
}{
	{in: "127.0.0.1", prefix: "127.0.0.1/32"},
	{in: "10.1.2.3/8", prefix: "10.0.0.0/8"},
	{in: "::1", prefix: "::1/128"},
	{in: "::ffff:10.0.0.0/104", prefix: "10.0.0.0/8"},
	{in: "::ffff:127.0.0.1", prefix: "127.0.0.1/32"},
	{in: "fd00::/8", prefix: "fd00::/8"},
	{in: "Hooks.Internal.", host: "hooks.internal"},
	{in: "localhost", host: "localhost"},
	{in: "", bad: true},
	{in: "10.0.0.0/33", bad: true},
	{in: "1.2.3", bad: true},
	{in: "fe80::1%eth0", bad: true},
	{in: "a..b", bad: true},
	{in: "-a.example", bad: true},
	{in: "under_score.example", bad: true},
	{in: "http://hooks.example", bad: true},
}

func TestParseWebhookAllow(t *testing.T) {
	t.Parallel()
	for _, tc := range allowCases {
		p, host, err := ParseWebhookAllow(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: got %v %q, want an error", tc.in, p, host)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if tc.prefix != "" && p.String() != tc.prefix || host != tc.host {
			t.Errorf("%q: got %v %q, want %s %q", tc.in, p, host, tc.prefix, tc.host)
		}
	}
}

// FuzzParseWebhookAllow: an accepted entry is a masked, unmapped prefix
// or a lower-case host name without dots at its ends, never both; and it
// reads the same when written back.
func FuzzParseWebhookAllow(f *testing.F) {
	for _, tc := range allowCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, host, err := ParseWebhookAllow(s)
		if err != nil {
			return
		}
		switch {
		case p.IsValid() == (host != ""):
			t.Fatalf("%q: prefix %v and host %q", s, p, host)
		case p.IsValid():
			if p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("%q: prefix %v is not canonical", s, p)
			}
			again, _, err := ParseWebhookAllow(p.String())
			if err != nil || again != p {
				t.Fatalf("%q: %v reads back as %v, %v", s, p, again, err)
			}
		default:
			if host != strings.ToLower(host) || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") || strings.ContainsAny(host, " /:%_") {
				t.Fatalf("%q: host %q is not canonical", s, host)
			}
			if _, err := netip.ParseAddr(host); err == nil {
				t.Fatalf("%q: host %q is an address", s, host)
			}
		}
	})
}
