package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/abe-stack/abe/schema"
)

// ErrRefusedTarget is a connection to an address webhooks may not reach.
var ErrRefusedTarget = errors.New("refused target")

// refused are the ranges no webhook reaches unless webhooks.allow lists
// them: they are the deployment's own network, not another service's.
var refused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network", unspecified
	netip.MustParsePrefix("10.0.0.0/8"),     // private
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT, often internal
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),  // private
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // private
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking, used internally
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: embeds IPv4, maybe a refused one
	netip.MustParsePrefix("64:ff9b:1::/48"), // local NAT64
	netip.MustParsePrefix("fc00::/7"),       // unique local (private)
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("ff00::/8"),       // multicast
}

// Guard decides which addresses webhooks may connect to.
type Guard struct {
	allowNets  []netip.Prefix
	allowHosts []string
}

// NewGuard reads webhooks.allow (checked by package schema).
func NewGuard(allow []string) (*Guard, error) {
	g := &Guard{}
	for _, a := range allow {
		p, host, err := schema.ParseWebhookAllow(a)
		if err != nil {
			return nil, fmt.Errorf("webhooks.allow %q: %w", a, err)
		}
		if host != "" {
			g.allowHosts = append(g.allowHosts, host)
		} else {
			g.allowNets = append(g.allowNets, p)
		}
	}
	return g, nil
}

// Allowed reports whether addr may be dialled.
func (g *Guard) Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range g.allowNets {
		if p.Contains(addr) {
			return true
		}
	}
	for _, p := range refused {
		if p.Contains(addr) {
			return false
		}
	}
	return addr.IsGlobalUnicast()
}

// hostAllowed reports whether a host name is on the allow-list: its
// addresses are then trusted, whatever they are.
func (g *Guard) hostAllowed(host string) bool {
	return slices.Contains(g.allowHosts, strings.TrimSuffix(strings.ToLower(host), "."))
}

// dialContext dials addr ("host:port") refusing what the guard refuses.
// The check runs in the dialer's Control, on the address each connection
// is about to use after resolution, so a name whose DNS answer changes
// between a check and the connection (rebinding) cannot slip through.
func (g *Guard) dialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		trusted := g.hostAllowed(host)
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error {
				if trusted {
					return nil
				}
				ip, _, err := net.SplitHostPort(address)
				if err != nil {
					return err
				}
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return fmt.Errorf("%w: %q is not an address", ErrRefusedTarget, ip)
				}
				if !g.Allowed(a) {
					return fmt.Errorf("%w: %s is a private, loopback, link-local or reserved address; list it in webhooks.allow to reach it", ErrRefusedTarget, a.Unmap())
				}
				return nil
			}}
		return d.DialContext(ctx, network, addr)
	}
}

// newClient is the HTTP client of deliveries: guarded dials, no proxy
// from the environment (a proxy would be dialled instead of the target,
// defeating the guard), no cookies, and no redirects: the receiver's
// answer is the 3xx itself, a failure. Following one would let a target
// send the request (and its signed body) where the operator never named,
// an internal address included.
func (g *Guard) newClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialContext(10 * time.Second),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // the request's context bounds it
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
