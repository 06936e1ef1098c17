package cookie

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Definition is a cookie's name and the options every Set-Cookie for it carries.
type Definition struct {
	Name    string
	Options Options
}

// Set holds the cookies NextAuth v4 uses, keyed as in its `cookies` option.
type Set struct {
	SessionToken     Definition
	CallbackURL      Definition
	CSRFToken        Definition
	PKCECodeVerifier Definition
	State            Definition
	Nonce            Definition
}

// checkCookieMaxAge is the lifetime NextAuth gives the PKCE and state cookies (15 minutes).
const checkCookieMaxAge = 15 * 60

// Defaults returns NextAuth v4's default cookies. With secure (an https deployment) every
// name gets the "__Secure-" prefix except the CSRF cookie, which gets "__Host-" so that it is
// bound to the exact host; every cookie then also carries Secure.
func Defaults(secure bool) Set {
	prefix, csrfPrefix := "", ""
	if secure {
		prefix, csrfPrefix = "__Secure-", "__Host-"
	}
	base := func() Options {
		return Options{Path: "/", HttpOnly: true, Secure: secure, SameSite: "Lax"}
	}
	withMaxAge := func(seconds int) Options {
		o := base()
		o.MaxAge = MaxAge(seconds)
		return o
	}
	return Set{
		SessionToken:     Definition{prefix + "next-auth.session-token", base()},
		CallbackURL:      Definition{prefix + "next-auth.callback-url", base()},
		CSRFToken:        Definition{csrfPrefix + "next-auth.csrf-token", base()},
		PKCECodeVerifier: Definition{prefix + "next-auth.pkce.code_verifier", withMaxAge(checkCookieMaxAge)},
		State:            Definition{prefix + "next-auth.state", withMaxAge(checkCookieMaxAge)},
		Nonce:            Definition{prefix + "next-auth.nonce", base()},
	}
}

// ChunkSize is the most value characters NextAuth puts in one session cookie: a 4096-byte
// cookie budget minus an estimated 163 bytes for the name and attributes.
const ChunkSize = 4096 - 163

type chunk struct{ name, value string }

// SessionStore is the session cookie of one request, possibly split into chunks
// (`<name>.0`, `<name>.1`, …) because a browser drops cookies over 4 KiB. It mirrors
// NextAuth's SessionStore, except that it is immutable: Chunk and Clean describe what to
// send without changing what Value returns.
type SessionStore struct {
	def    Definition
	chunks []chunk // request cookies whose name starts with def.Name, in request order
}

// NewSessionStore collects every request cookie whose name starts with def.Name. A prefix
// match, not an exact one, is what NextAuth does, and it is what lets stale chunks be found
// and deleted.
func NewSessionStore(def Definition, jar Jar) SessionStore {
	s := SessionStore{def: def}
	for _, name := range jar.WithPrefix(def.Name) {
		v, _ := jar.Get(name)
		s.chunks = append(s.chunks, chunk{name, v})
	}
	return s
}

// SessionValue is NewSessionStore(def, Parse(h)).Value(), for the proxy's hot path: it reads
// only the session cookie's pairs, without building the request's whole jar.
func SessionValue(h http.Header, def Definition) string {
	values := h["Cookie"]
	var s string
	switch len(values) {
	case 0:
		return ""
	case 1:
		s = values[0]
	default:
		s = strings.Join(values, "; ")
	}
	if !strings.Contains(s, def.Name) {
		// No name can start with it (names are not decoded).
		return ""
	}
	var few [2]chunk
	st := SessionStore{def: def, chunks: few[:0]}
	eachPair(s, func(key string) bool {
		if !strings.HasPrefix(key, def.Name) {
			return false
		}
		for _, c := range st.chunks {
			if c.name == key {
				return false // the first occurrence of a name wins
			}
		}
		return true
	}, func(key, val string) {
		st.chunks = append(st.chunks, chunk{key, val})
	})
	return st.Value()
}

// Value reassembles the session cookie: the collected cookies sorted by the number after the
// last '.' of their name and concatenated. "" means no session cookie.
func (s SessionStore) Value() string {
	switch len(s.chunks) {
	case 0:
		return ""
	case 1:
		return s.chunks[0].value
	}
	sorted := append([]chunk(nil), s.chunks...)
	sortChunks(sorted)
	var b strings.Builder
	for _, c := range sorted {
		b.WriteString(c.value)
	}
	return b.String()
}

// sortChunks orders chunks by their numeric suffix with a stable binary insertion sort,
// the algorithm V8 uses for short arrays. NextAuth's comparator returns NaN for a name
// without a numeric suffix (such as the plain name), and V8 treats NaN as "not less", so
// reproducing the algorithm also reproduces where such names end up.
func sortChunks(c []chunk) {
	keys := make([]float64, len(c))
	for i := range c {
		keys[i] = chunkIndex(c[i].name)
	}
	for i := 1; i < len(c); i++ {
		pc, pk := c[i], keys[i]
		lo, hi := 0, i
		for lo < hi {
			mid := (lo + hi) / 2
			if pk-keys[mid] < 0 { // false for NaN, as in V8
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		copy(c[lo+1:i+1], c[lo:i])
		copy(keys[lo+1:i+1], keys[lo:i])
		c[lo], keys[lo] = pc, pk
	}
}

// chunkIndex is parseInt(name.split(".").pop() || "0"): NaN when the last segment does not
// start with a number.
func chunkIndex(name string) float64 {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return 0
	}
	return parseInt(last)
}

// parseInt is JavaScript's parseInt(s) without a radix, for the ASCII input cookie names hold:
// leading white space, an optional sign, a "0x" prefix for hexadecimal, then the longest run
// of digits; NaN when there are none.
func parseInt(s string) float64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	sign := 1.0
	if s != "" && (s[0] == '+' || s[0] == '-') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	radix := 10.0
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		radix, s = 16, s[2:]
	}
	n, digits := 0.0, 0
	for ; digits < len(s); digits++ {
		d, ok := unhex(s[digits])
		if !ok || float64(d) >= radix {
			break
		}
		n = n*radix + float64(d)
	}
	if digits == 0 {
		return math.NaN()
	}
	return sign * n
}

// Chunk returns the Set-Cookie list that stores value as the session cookie, in NextAuth's
// order: first a deletion for every cookie collected from the request, then the new cookie
// (under the plain name when it fits in one chunk, else as <name>.0, <name>.1, …) with
// Expires set. A name that is both deleted and rewritten appears once, with the new value,
// at the deletion's position. An empty value yields only the deletions, as in NextAuth.
//
// value is split by bytes; session values are JWEs or opaque ids, which are ASCII.
func (s SessionStore) Chunk(value string, expires time.Time) []Cookie {
	out := s.Clean()
	at := make(map[string]int, len(out))
	for i, c := range out {
		at[c.Name] = i
	}
	opts := s.def.Options
	opts.Expires = expires
	put := func(c Cookie) {
		if i, ok := at[c.Name]; ok {
			out[i] = c
			return
		}
		out = append(out, c)
	}

	n := (len(value) + ChunkSize - 1) / ChunkSize
	if n == 1 {
		put(Cookie{Name: s.def.Name, Value: value, Options: opts})
		return out
	}
	for i := range n {
		end := min((i+1)*ChunkSize, len(value))
		put(Cookie{Name: s.def.Name + "." + strconv.Itoa(i), Value: value[i*ChunkSize : end], Options: opts})
	}
	return out
}

// Clean returns a deletion (empty value, Max-Age=0, the definition's other options) for
// every session cookie collected from the request, in request order.
func (s SessionStore) Clean() []Cookie {
	opts := s.def.Options
	opts.MaxAge = MaxAge(0)
	out := make([]Cookie, 0, len(s.chunks)+2)
	for _, c := range s.chunks {
		out = append(out, Cookie{Name: c.name, Value: "", Options: opts})
	}
	return out
}
