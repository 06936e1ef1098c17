// Package urlpolicy is the one place where the gateway decides what a request names: the
// canonical path and host a request is judged and routed on, and whether a URL a script
// or a client chose may be a redirect target. The engine, the reverse proxy, forward-auth
// and the script configuration all use it, so that the policy and the app behind the
// gateway never read two different paths.
//
// The path rule (written down for operators in docs/proxy.md, "The canonical request"):
//
//   - The path must start with "/". Percent-escapes must be well formed (two hex digits).
//   - Escapes of unreserved characters (A–Z a–z 0–9 - . _ ~) are decoded: /%61dmin is /admin
//     and /%2e%2e/ is a dot segment. Every other escape stays encoded, with upper-case hex.
//   - Refused (400), because apps disagree on what they mean: an encoded "/" (%2F) or "\"
//     (%5C), a raw "\", a ";" raw or encoded (Tomcat and Spring strip ";params" from
//     segments: /public/..;/admin), NUL and every other control character raw or encoded,
//     a raw space, "#", bytes that do not decode to valid UTF-8 (overlong forms such as
//     %C0%AE included), and a segment that ends in "." other than "." and "..", or in a
//     space (Windows and IIS drop trailing dots and spaces: /admin. is /admin there).
//   - Raw bytes outside RFC 3986's pchar set (non-ASCII, " < > ^ ` { | } [ ]) are
//     percent-encoded.
//   - Empty segments are merged (/a///b is /a/b) and dot segments are resolved; ".."
//     never climbs above the root. Refused, because parsers read them two ways: a path
//     starting with "//" (a URL parser reads an authority: //admin/x is host "admin"),
//     and a ".." after an empty segment (/a/b//../c is /a/b/c to Node and RFC 3986,
//     /a/c to nginx).
//
// The result is what routes are matched on, what the authorized callback sees as
// request.path, and what goes upstream.
package urlpolicy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidPath is wrapped by every refusal of CanonicalPath.
var ErrInvalidPath = errors.New("invalid request path")

// pathError says which rule a path broke; it wraps ErrInvalidPath.
type pathError struct{ reason string }

func (e *pathError) Error() string { return "invalid request path: " + e.reason }
func (e *pathError) Unwrap() error { return ErrInvalidPath }

func refuse(format string, args ...any) error {
	return &pathError{reason: fmt.Sprintf(format, args...)}
}

// MaxPathLength bounds the paths CanonicalPath accepts. Go's server already bounds the
// request line by its header limit; a forwarded URI arrives as a header of the same size.
const MaxPathLength = 8 << 10

// CanonicalPath turns the path of a request target, exactly as sent (escaped, without the
// query), into its canonical form, or refuses it with an error wrapping ErrInvalidPath.
// It is idempotent: CanonicalPath(CanonicalPath(p)) == CanonicalPath(p).
func CanonicalPath(raw string) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", refuse("must start with /")
	}
	if len(raw) > MaxPathLength {
		return "", refuse("longer than %d bytes", MaxPathLength)
	}
	if isPlain(raw) {
		// The common case: nothing to decode, encode, merge or resolve.
		return raw, nil
	}
	// First pass: decode unreserved escapes, normalise the rest, encode what must be
	// encoded, and check the decoded bytes. Segments are split on raw "/" only: an escaped
	// slash was refused above, so no decoded byte can start a segment.
	var (
		b       strings.Builder
		decoded []byte // the whole path decoded, for the UTF-8 check
	)
	b.Grow(len(raw) + 8)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", refuse("malformed percent-escape at byte %d", i)
			}
			d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
			switch {
			case d == '/' || d == '\\':
				return "", refuse("encoded %q", d)
			case d == ';':
				return "", refuse("encoded ;")
			case d < 0x20 || d == 0x7f:
				return "", refuse("encoded control character %#02x", d)
			}
			decoded = append(decoded, d)
			if isUnreserved(d) {
				b.WriteByte(d)
			} else {
				writeEscape(&b, d)
			}
		case c == '\\':
			return "", refuse("backslash")
		case c == ';':
			return "", refuse("; path parameter")
		case c == '#':
			return "", refuse("fragment in path")
		case c <= 0x20 || c == 0x7f:
			return "", refuse("control character or space %#02x", c)
		case c >= 0x80 || !isPchar(c) && c != '/':
			decoded = append(decoded, c)
			writeEscape(&b, c)
		default:
			decoded = append(decoded, c)
			b.WriteByte(c)
		}
	}
	if !utf8.Valid(decoded) {
		return "", refuse("not valid UTF-8 once decoded")
	}
	out, err := resolveSegments(b.String())
	if err == nil && len(out) > MaxPathLength {
		// Encoding raw bytes can triple a path; the bound holds for the result too, so
		// that the canonical path is itself accepted (CanonicalPath stays idempotent).
		return "", refuse("longer than %d bytes once encoded", MaxPathLength)
	}
	return out, err
}

// resolveSegments merges empty segments and resolves dot segments of an already escaped
// path (RFC 3986 section 5.2.4, with ".." stopping at the root), and refuses segments that
// end in a dot or an (escaped) space.
func resolveSegments(p string) (string, error) {
	if strings.HasPrefix(p, "//") {
		// A URL parser given "//admin/x" against a base reads "admin" as a host.
		return "", refuse("starts with //")
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailingSlash := false
	merged := false // an empty segment was merged before this one
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "":
			// An empty segment: merged, except that a path ending in "/" keeps it.
			if last {
				trailingSlash = true
			} else {
				merged = true
			}
			continue
		case s == ".":
			trailingSlash = last
			continue
		case s == "..":
			if merged {
				// "/a/b//../c" is /a/b/c to RFC 3986 and Node (".." removes the empty
				// segment) and /a/c to nginx (slashes merged first): two readings.
				return "", refuse("a .. after an empty segment")
			}
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailingSlash = last
			continue
		case s[len(s)-1] == '.':
			return "", refuse("segment %q ends in a dot", s)
		case strings.HasSuffix(s, "%20"):
			return "", refuse("segment %q ends in a space", s)
		}
		trailingSlash = false
		out = append(out, s)
	}
	if len(out) == 0 {
		return "/", nil
	}
	res := "/" + strings.Join(out, "/")
	if trailingSlash {
		res += "/"
	}
	return res, nil
}

// isPlain reports whether p is already canonical without looking further: only pchar
// bytes and "/", no escapes, no empty or dot segments.
func isPlain(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' {
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return false
			}
			continue
		}
		if c == '%' || c == ';' || c >= 0x80 || !isPchar(c) {
			return false
		}
		if c == '.' && (i+1 == len(p) || p[i+1] == '/') {
			return false // a segment that ends in a dot
		}
	}
	return true
}

// isPchar is RFC 3986's pchar without pct-encoded: unreserved, sub-delims, ":" and "@".
// ";" is a sub-delim but is refused before this is asked.
func isPchar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

const upperHex = "0123456789ABCDEF"

func writeEscape(b *strings.Builder, c byte) {
	b.WriteByte('%')
	b.WriteByte(upperHex[c>>4])
	b.WriteByte(upperHex[c&15])
}

// HasPrefix is the segment-wise prefix match routes use: "/app" covers /app and /app/x,
// not /apple; "/" covers everything. With fold, ASCII letters match in either case, so a
// protected /admin also covers /ADMIN for apps that route case-insensitively. Both
// arguments are canonical paths.
func HasPrefix(path, prefix string, fold bool) bool {
	if prefix == "/" {
		return true
	}
	if len(path) < len(prefix) {
		return false
	}
	head := path[:len(prefix)]
	if fold {
		if !strings.EqualFold(head, prefix) {
			return false
		}
	} else if head != prefix {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}

// SplitTarget splits an origin-form request target ("/path?query", as in a request line or
// a forwarded-URI header) into its canonical path and its raw query. A fragment, a target
// that is not origin-form, or a query with control characters or spaces is refused.
func SplitTarget(target string) (path, rawQuery string, err error) {
	p, q, _ := strings.Cut(target, "?")
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= 0x20 || c == 0x7f || c == '#' {
			return "", "", refuse("control character, space or # in the query")
		}
	}
	path, err = CanonicalPath(p)
	if err != nil {
		return "", "", err
	}
	return path, q, nil
}
