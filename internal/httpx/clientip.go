package httpx

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientKey is the context key of the clientInfo that ClientIP stores.
type clientKey struct{}

type clientInfo struct {
	addr  netip.Addr
	https bool
}

// ClientIP returns middleware that stores the client's address and whether
// the request came over HTTPS.
//
// The peer is the client unless it is inside one of the trusted prefixes
// (the reverse proxies in front of abe). Then the hop chain of Forwarded
// (RFC 7239), else X-Forwarded-For, is walked from the right, skipping
// trusted hops: the first untrusted hop is the client. The left part of the
// chain is whatever the client sent, so it is never believed. A hop that
// does not parse (obfuscated, "unknown") ends the walk at the nearest
// trusted hop to its right. When every hop is trusted, the leftmost is the
// client. Headers from an untrusted peer are ignored.
func ClientIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	prefixes := make([]netip.Prefix, 0, len(trusted))
	for _, p := range trusted {
		if !p.IsValid() {
			continue
		}
		// Addresses are compared unmapped, so a v4-mapped prefix must be
		// too, or it would never contain anything.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		prefixes = append(prefixes, p.Masked())
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := clientInfo{addr: remoteAddr(r.RemoteAddr), https: r.TLS != nil}
			if info.addr.IsValid() && isTrusted(info.addr) {
				hops, proto := forwarded(r.Header)
				info.addr = pickClient(hops, info.addr, isTrusted)
				if !info.https && strings.EqualFold(proto, "https") {
					info.https = true
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, info)))
		})
	}
}

// ClientAddr returns the client address stored by ClientIP, or the zero
// Addr when there is none.
func ClientAddr(ctx context.Context) netip.Addr {
	info, _ := ctx.Value(clientKey{}).(clientInfo)
	return info.addr
}

// ClientIPString returns the client address stored by ClientIP, falling
// back to the host of RemoteAddr when ClientIP did not run.
func ClientIPString(r *http.Request) string {
	if a := ClientAddr(r.Context()); a.IsValid() {
		return a.String()
	}
	if a := remoteAddr(r.RemoteAddr); a.IsValid() {
		return a.String()
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// IsHTTPS tells whether the request came over TLS, to abe or, as a trusted
// proxy reported, to that proxy.
func IsHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	info, _ := r.Context().Value(clientKey{}).(clientInfo)
	return info.https
}

// remoteAddr parses RemoteAddr, which is host:port from net/http but may be
// a bare address from tests or other servers.
func remoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr())
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a)
	}
	return netip.Addr{}
}

func normalize(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// pickClient walks hops from the right, starting next to peer.
func pickClient(hops []string, peer netip.Addr, isTrusted func(netip.Addr) bool) netip.Addr {
	nearest := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return nearest
		}
		if !isTrusted(a) {
			return a
		}
		nearest = a
	}
	return nearest
}

// forwarded returns the hop chain, left to right, and the protocol reported
// by the hop nearest to us. Forwarded wins over X-Forwarded-For when it
// names any hop.
func forwarded(h http.Header) (hops []string, proto string) {
	var elems []map[string]string
	for _, line := range h.Values("Forwarded") {
		elems = append(elems, parseForwarded(line)...)
	}
	named := false
	for _, e := range elems {
		if _, ok := e["for"]; ok {
			named = true
			break
		}
	}
	if named {
		for _, e := range elems {
			// An element without for= is a hop we cannot place: it parses
			// as garbage and ends the walk.
			hops = append(hops, e["for"])
		}
	} else {
		for _, line := range h.Values("X-Forwarded-For") {
			for v := range strings.SplitSeq(line, ",") {
				hops = append(hops, v)
			}
		}
	}
	if len(elems) > 0 {
		proto = elems[len(elems)-1]["proto"]
	}
	if proto == "" {
		if lines := h.Values("X-Forwarded-Proto"); len(lines) > 0 {
			last := lines[len(lines)-1]
			proto = strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])
		}
	}
	return hops, proto
}

// parseForwarded splits one Forwarded header line into its elements, each
// a map of lower-cased parameter names to unquoted values. Commas and
// semicolons inside quoted strings do not split. Malformed parts are kept
// as best it can; parseHop rejects what makes no sense.
func parseForwarded(s string) []map[string]string {
	var elems []map[string]string
	elem := map[string]string{}
	var name strings.Builder
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ',':
			elems = append(elems, elem)
			elem = map[string]string{}
			name.Reset()
			i++
		case c == ';':
			name.Reset()
			i++
		case c == '=':
			i++
			val, n := forwardedValue(s[i:])
			i += n
			key := strings.ToLower(strings.TrimSpace(name.String()))
			if _, dup := elem[key]; !dup && key != "" {
				elem[key] = val
			}
			name.Reset()
		default:
			name.WriteByte(c)
			i++
		}
	}
	return append(elems, elem)
}

// forwardedValue reads a token or quoted-string at the start of s and
// returns it with the number of bytes consumed.
func forwardedValue(s string) (string, int) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i < len(s) && s[i] == '"' {
		var b strings.Builder
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				if j+1 < len(s) {
					j++
					b.WriteByte(s[j])
				}
			case '"':
				return b.String(), j + 1
			default:
				b.WriteByte(s[j])
			}
		}
		// An unterminated quote spoils the rest of the line; an empty value
		// is a hop parseHop refuses.
		return "", len(s)
	}
	j := i
	for j < len(s) && s[j] != ',' && s[j] != ';' {
		j++
	}
	return strings.TrimSpace(s[i:j]), j
}

// parseHop reads one node of a hop chain: an IPv4 or IPv6 address,
// optionally bracketed (IPv6) and with a port. Obfuscated identifiers,
// "unknown" and garbage are not addresses.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		var port string
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return netip.Addr{}, false
			}
			port = port[1:]
			if !validPort(port) {
				return netip.Addr{}, false
			}
		}
	} else if strings.Count(s, ":") == 1 {
		// One colon is IPv4 with a port; IPv6 has at least two.
		var port string
		host, port, _ = strings.Cut(s, ":")
		if !validPort(port) {
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return normalize(a), true
}

// validPort accepts a port number or an RFC 7239 obfuscated port.
func validPort(p string) bool {
	if p == "" {
		return false
	}
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			if !isObfChar(p[i]) {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	for i := range len(p) {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func isObfChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
