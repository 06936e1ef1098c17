package urlpolicy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ErrInvalidHost is wrapped by every refusal of CanonicalHost.
var ErrInvalidHost = errors.New("invalid host")

// Host is a canonical host: the name lower-cased and without a trailing dot (DNS reads
// "wiki.test." and "wiki.test" as one name, so routes must too), and the port when one was
// given ("" otherwise). IPv6 literals keep their brackets.
type Host struct {
	Name string
	Port string
}

// String is name[:port].
func (h Host) String() string {
	if h.Port == "" {
		return h.Name
	}
	return h.Name + ":" + h.Port
}

// CanonicalHost parses a Host header (or X-Forwarded-Host, or a route's configured host)
// into its canonical form, or refuses it: empty names, characters that a host name or
// address cannot hold, and ports that are not 1–65535.
func CanonicalHost(s string) (Host, error) {
	if s == "" {
		return Host{}, fmt.Errorf("%w: empty", ErrInvalidHost)
	}
	name, port := s, ""
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Host{}, fmt.Errorf("%w: %q: unclosed [", ErrInvalidHost, s)
		}
		name = strings.ToLower(s[:end+1])
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return Host{}, fmt.Errorf("%w: %q", ErrInvalidHost, s)
			}
			port = rest[1:]
		}
		if net.ParseIP(name[1:len(name)-1]) == nil {
			return Host{}, fmt.Errorf("%w: %q is not an IPv6 address", ErrInvalidHost, s)
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			name, port = s[:i], s[i+1:]
		}
		name = strings.TrimSuffix(strings.ToLower(name), ".")
		if name == "" {
			return Host{}, fmt.Errorf("%w: %q has no name", ErrInvalidHost, s)
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
				return Host{}, fmt.Errorf("%w: %q: byte %q", ErrInvalidHost, s, c)
			}
		}
		// One trailing dot is the DNS root and was dropped; any other empty label
		// ("wiki.test..", ".wiki.test", "wiki..test") names no host.
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
			return Host{}, fmt.Errorf("%w: %q: empty label", ErrInvalidHost, s)
		}
	}
	if port != "" || strings.HasSuffix(s, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return Host{}, fmt.Errorf("%w: %q: bad port", ErrInvalidHost, s)
		}
	}
	return Host{Name: name, Port: port}, nil
}
