package webhooks

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestGuardAllowed(t *testing.T) {
	t.Parallel()
	def, err := NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := NewGuard([]string{"10.1.0.0/16", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr       string
		def, allow bool
	}{
		{"93.184.215.14", true, true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true, true},
		{"127.0.0.1", false, false},
		{"127.9.9.9", false, false},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, false},
		{"10.1.2.3", false, true},
		{"::ffff:10.1.2.3", false, true},
		{"10.2.0.1", false, false},
		{"172.16.0.1", false, false},
		{"192.168.1.1", false, false},
		{"169.254.169.254", false, false}, // cloud metadata
		{"fe80::1", false, false},
		{"fd00::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"100.64.0.1", false, false},
		{"224.0.0.1", false, false},
		{"255.255.255.255", false, false},
		{"64:ff9b::7f00:1", false, false}, // NAT64 of 127.0.0.1
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := def.Allowed(a); got != tc.def {
			t.Errorf("default guard, %s: %v, want %v", tc.addr, got, tc.def)
		}
		if got := allow.Allowed(a); got != tc.allow {
			t.Errorf("allowing guard, %s: %v, want %v", tc.addr, got, tc.allow)
		}
	}
}

// TestGuardDials: the check is on the address dialled, so a name that
// resolves to loopback (localhost) is refused like the address, and the
// allow-list opens either by address or by name.
func TestGuardDials(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		allow []string
		host  string
		ok    bool
	}{
		{nil, "127.0.0.1", false},
		{nil, "localhost", false},
		{[]string{"127.0.0.1/32"}, "127.0.0.1", true},
		{[]string{"127.0.0.1/32"}, "localhost", true}, // when it resolves to 127.0.0.1
		{[]string{"localhost"}, "localhost", true},
		{[]string{"localhost"}, "127.0.0.1", false},
		{[]string{"10.0.0.0/8"}, "127.0.0.1", false},
	} {
		g, err := NewGuard(tc.allow)
		if err != nil {
			t.Fatal(err)
		}
		res, err := g.newClient().Get(fmt.Sprintf("http://%s:%d/", tc.host, port))
		if err == nil {
			res.Body.Close()
		}
		if tc.ok && err != nil {
			t.Errorf("allow %v, %s: %v, want it reached", tc.allow, tc.host, err)
		}
		if !tc.ok && !errors.Is(err, ErrRefusedTarget) {
			t.Errorf("allow %v, %s: %v, want ErrRefusedTarget", tc.allow, tc.host, err)
		}
	}
}
