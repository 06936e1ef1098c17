// Package clientaddr tells who a request really comes from when the gateway runs behind
// load balancers or proxies: the peer address, or, when the peer is a configured trusted
// proxy, the client that proxy names in X-Forwarded-For (or RFC 7239 Forwarded).
//
// The reverse proxy (request.ip, X-Forwarded-*) and the sign-in limits (counting failed
// attempts per client) use this one definition so they always agree on the client.
// It must never believe a forwarding header from a peer that is not a trusted proxy:
// anyone can send one, and a believed forgery would let a client pick its own address.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/callgate/callgate/config"
)

// Resolver knows the trusted proxies. The zero value and nil trust no one. Safe for
// concurrent use; it never changes after New.
type Resolver struct {
	trusted []*net.IPNet
}

// New parses the trusted proxies: CIDRs or single addresses (config.ParseCIDR).
func New(trustedProxies []string) (*Resolver, error) {
	r := &Resolver{}
	for _, c := range trustedProxies {
		n, err := config.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy: %w", err)
		}
		r.trusted = append(r.trusted, n)
	}
	return r, nil
}

// IsTrusted reports whether remoteAddr (host:port or a bare address) is a trusted proxy.
func (r *Resolver) IsTrusted(remoteAddr string) bool {
	if r == nil || len(r.trusted) == 0 {
		return false
	}
	ip := net.ParseIP(HostOnly(remoteAddr))
	return ip != nil && r.contains(ip)
}

func (r *Resolver) contains(ip net.IP) bool {
	for _, n := range r.trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ClientIP is the peer address of req, or, when the peer is a trusted proxy, the
// right-most address in X-Forwarded-For (else Forwarded for=) that is not itself a trusted
// proxy. Right-most, because every address left of the last untrusted hop was written by
// someone the gateway cannot vouch for.
func (r *Resolver) ClientIP(req *http.Request) string {
	peer := HostOnly(req.RemoteAddr)
	if !r.IsTrusted(req.RemoteAddr) {
		return peer
	}
	var chain []string
	for _, v := range req.Header.Values("X-Forwarded-For") {
		for part := range strings.SplitSeq(v, ",") {
			chain = append(chain, strings.TrimSpace(part))
		}
	}
	if len(chain) == 0 {
		for _, el := range ForwardedElements(req.Header) {
			if f := el["for"]; f != "" {
				chain = append(chain, strings.Trim(HostOnly(strings.Trim(f, `"`)), "[]"))
			}
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		ip := net.ParseIP(chain[i])
		if ip == nil {
			break
		}
		if !r.contains(ip) || i == 0 {
			return chain[i]
		}
	}
	return peer
}

// HostOnly drops the port from addr, if it has one.
func HostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// ForwardedElements parses RFC 7239 Forwarded headers into one map per element, keys
// lower-cased, quotes removed.
func ForwardedElements(h http.Header) []map[string]string {
	var out []map[string]string
	for _, v := range h.Values("Forwarded") {
		for el := range strings.SplitSeq(v, ",") {
			m := map[string]string{}
			for pair := range strings.SplitSeq(el, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok {
					m[strings.ToLower(k)] = strings.Trim(val, `"`)
				}
			}
			out = append(out, m)
		}
	}
	return out
}
