// Package cookie reads and writes cookies byte-for-byte the way NextAuth v4 does through the
// `cookie@0.7` npm package: values percent-encoded with encodeURIComponent, attributes in
// cookie@0.7's fixed order, the parse rules of cookie.parse, the default cookie names and
// options, and the chunking of large session cookies.
//
// net/http's own cookie code is deliberately not used: it neither encodes nor decodes values,
// quotes some of them, and orders attributes differently, so browsers and NextAuth apps sharing
// a domain with the gateway would see different cookies.
//
// This package only formats and parses. It must never decide what a cookie means, hold state
// between requests, or emit a value that is not percent-encoded.
package cookie

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Options are the attributes of a Set-Cookie line. The zero value writes no attributes.
type Options struct {
	Path   string
	Domain string
	// Expires is omitted when zero. It is written in UTC with second precision, like
	// JavaScript's Date.prototype.toUTCString.
	Expires time.Time
	// MaxAge is omitted when nil; MaxAge(0) writes "Max-Age=0", which deletes the cookie.
	MaxAge   *int
	HttpOnly bool
	Secure   bool
	// SameSite is "Lax", "Strict" or "None" (any case); empty or anything else writes nothing.
	SameSite string
}

// MaxAge returns a pointer for Options.MaxAge.
func MaxAge(seconds int) *int { return &seconds }

// expiresLayout is Date.prototype.toUTCString's format, identical to http.TimeFormat.
const expiresLayout = "Mon, 02 Jan 2006 15:04:05 GMT"

// EncodeValue percent-encodes s exactly like JavaScript's encodeURIComponent: the
// unreserved set A–Z a–z 0–9 - _ . ! ~ * ' ( ) is kept and every other byte of the UTF-8
// encoding becomes %XX (upper-case hex). url.QueryEscape is not the same: it writes space
// as + and escapes !*'(). Bytes that are not valid UTF-8 (which a JavaScript string cannot
// hold) are escaped one by one.
func EncodeValue(s string) string {
	i := 0
	for i < len(s) && unreserved(s[i]) {
		i++
	}
	if i == len(s) { // the common case (JWEs, hex tokens): no allocation
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*(len(s)-i))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

func unreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '!', '~', '*', '\'', '(', ')':
		return true
	}
	return false
}

// DecodeValue is JavaScript's decodeURIComponent. It reports false where decodeURIComponent
// would throw: a '%' not followed by two hex digits, or percent-escaped bytes that are not
// well-formed UTF-8 (each run of escapes must decode to whole characters, surrogates and
// overlong forms excluded).
func DecodeValue(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] != '%' {
			out = append(out, s[i])
			i++
			continue
		}
		// Collect one run of consecutive escapes: decodeURIComponent demands that a
		// multi-byte character be escaped as a whole, so validity is judged per run.
		start := len(out)
		for i < len(s) && s[i] == '%' {
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			out = append(out, hi<<4|lo)
			i += 3
		}
		if !utf8.Valid(out[start:]) {
			return "", false
		}
	}
	return string(out), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Serialize returns a Set-Cookie value in cookie@0.7's attribute order:
// name=value; Max-Age; Domain; Path; Expires; HttpOnly; Secure; SameSite.
// value is percent-encoded here; pass it raw. name is written as is, so it must come
// from configuration that was checked with ValidName.
func Serialize(name, value string, o Options) string {
	var b strings.Builder
	b.Grow(len(name) + len(value) + 96)
	b.WriteString(name)
	b.WriteByte('=')
	b.WriteString(EncodeValue(value))
	if o.MaxAge != nil {
		b.WriteString("; Max-Age=")
		b.WriteString(strconv.Itoa(*o.MaxAge))
	}
	if o.Domain != "" {
		b.WriteString("; Domain=")
		b.WriteString(o.Domain)
	}
	if o.Path != "" {
		b.WriteString("; Path=")
		b.WriteString(o.Path)
	}
	if !o.Expires.IsZero() {
		b.WriteString("; Expires=")
		b.WriteString(o.Expires.UTC().Format(expiresLayout))
	}
	if o.HttpOnly {
		b.WriteString("; HttpOnly")
	}
	if o.Secure {
		b.WriteString("; Secure")
	}
	switch strings.ToLower(o.SameSite) {
	case "lax":
		b.WriteString("; SameSite=Lax")
	case "strict":
		b.WriteString("; SameSite=Strict")
	case "none":
		b.WriteString("; SameSite=None")
	}
	return b.String()
}

// ValidName reports whether name is an RFC 6265 cookie-name (an HTTP token), the same check
// cookie@0.7's serialize applies before it writes a name.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Cookie is one cookie to send.
type Cookie struct {
	Name    string
	Value   string
	Options Options
}

// String is the Set-Cookie header value.
func (c Cookie) String() string { return Serialize(c.Name, c.Value, c.Options) }

// Write adds one Set-Cookie header per cookie, in order.
func Write(h http.Header, cookies ...Cookie) {
	for _, c := range cookies {
		h.Add("Set-Cookie", c.String())
	}
}

// Jar is the parsed Cookie header of one request, in order of first appearance.
// The zero value is an empty jar.
type Jar struct {
	names  []string
	values map[string]string
}

// Parse reads every Cookie header of a request the way cookie.parse does. Several Cookie
// headers are joined with "; ", as Node.js does before NextAuth sees them.
func Parse(h http.Header) Jar {
	return ParseString(strings.Join(h.Values("Cookie"), "; "))
}

// ParseString is cookie.parse over one header value: pairs split on ';', name and value
// split at the first '=', surrounding spaces and tabs trimmed, the first occurrence of a
// name wins, one pair of surrounding double quotes is removed, and a value holding '%' is
// percent-decoded unless decoding fails, in which case it is kept raw.
func ParseString(s string) Jar {
	var j Jar
	eachPair(s, func(key string) bool {
		_, seen := j.values[key]
		return !seen
	}, func(key, val string) {
		if j.values == nil {
			j.values = make(map[string]string)
		}
		j.names = append(j.names, key)
		j.values[key] = val
	})
	return j
}

// eachPair walks a Cookie header value as cookie.parse does. For each pair it asks want
// about the name, and for the names it wants, passes the decoded value to use.
func eachPair(s string, want func(key string) bool, use func(key, val string)) {
	if len(s) < 2 {
		return
	}
	index := 0
	for index < len(s) {
		eq := indexFrom(s, '=', index)
		if eq < 0 {
			break
		}
		end := indexFrom(s, ';', index)
		if end < 0 {
			end = len(s)
		} else if eq > end {
			// This pair has no '='; resume at the pair that holds the '=' we found.
			index = strings.LastIndexByte(s[:eq], ';') + 1
			continue
		}
		keyStart := skipBlanks(s, index, eq)
		key := s[keyStart:trimBlanksEnd(s, eq, keyStart)]
		if want(key) {
			valStart := skipBlanks(s, eq+1, end)
			valEnd := trimBlanksEnd(s, end, valStart)
			val := ""
			if valEnd-valStart >= 2 && s[valStart] == '"' && s[valEnd-1] == '"' {
				val = s[valStart+1 : valEnd-1]
			} else if !(valEnd-valStart == 1 && s[valStart] == '"') {
				// A lone '"' is both the opening and closing quote in cookie.parse,
				// which leaves an empty value.
				val = s[valStart:valEnd]
			}
			if decoded, ok := DecodeValue(val); ok {
				val = decoded
			}
			use(key, val)
		}
		index = end + 1
	}
}

func indexFrom(s string, c byte, from int) int {
	i := strings.IndexByte(s[from:], c)
	if i < 0 {
		return -1
	}
	return from + i
}

// skipBlanks returns the first index in [i, max) that is not a space or tab, or max.
func skipBlanks(s string, i, max int) int {
	for ; i < max; i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return i
		}
	}
	return max
}

// trimBlanksEnd returns the end of s[min:i] with trailing spaces and tabs removed.
func trimBlanksEnd(s string, i, min int) int {
	for i > min && (s[i-1] == ' ' || s[i-1] == '\t') {
		i--
	}
	return i
}

// Get returns the decoded value of the first cookie called name.
func (j Jar) Get(name string) (string, bool) {
	v, ok := j.values[name]
	return v, ok
}

// Names returns the cookie names in order of first appearance.
func (j Jar) Names() []string { return append([]string(nil), j.names...) }

// WithPrefix returns, in order of first appearance, the names that start with prefix.
func (j Jar) WithPrefix(prefix string) []string {
	var out []string
	for _, n := range j.names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// Len is the number of distinct cookie names.
func (j Jar) Len() int { return len(j.names) }
