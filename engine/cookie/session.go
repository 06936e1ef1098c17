package cookie

import (
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

// MaxChunks is the most session cookies a request may carry and the most chunks Chunk
// writes. NextAuth splits at ChunkSize, so n chunks cost about 4 KiB each in the Cookie
// header, and that header is capped long before 16 of them: Node.js (where NextAuth runs)
// refuses a request whose headers pass 16 KiB, about 4 chunks, and nginx's default buffers
// hold an 8 KiB header line, about 2. 16 chunks (62,928 value bytes, a JWE of some 47 KB of
// claims) is 4× anything a NextAuth app can receive, while bounding what one request costs:
// reassembly touches at most 16 cookies and a response clears at most 16. A request with more
// cookies that start with the session cookie's name has no session: it was not written by a
// browser holding what we set (we never set more), and reading it would let one request buy
// unbounded work and an unbounded Set-Cookie list.
const MaxChunks = 16

// MaxSessionBytes is the longest session value Chunk writes: MaxChunks full chunks.
const MaxSessionBytes = MaxChunks * ChunkSize

// Fits reports whether value can be stored as the session cookie: Chunk refuses longer ones.
func Fits(value string) bool { return len(value) <= MaxSessionBytes }

type chunk struct{ name, value string }

// SessionStore is the session cookie of one request, possibly split into chunks
// (`<name>.0`, `<name>.1`, …) because a browser drops cookies over 4 KiB. It mirrors
// NextAuth's SessionStore, except that it is immutable (Chunk and Clean describe what to
// send without changing what Value returns) and bounded: it holds at most MaxChunks cookies.
type SessionStore struct {
	def Definition
	// cookies are the request cookies whose name starts with def.Name, in request order,
	// first occurrence of each name only; at most MaxChunks of them.
	cookies []chunk
	// overflow is set when the request carried more than MaxChunks such cookies.
	overflow bool
}

// add records one more distinct cookie with the session prefix and reports whether the
// caller should keep collecting: past MaxChunks the store is marked overflowing and later
// cookies are neither kept nor looked at.
func (s *SessionStore) add(name, value string) bool {
	if len(s.cookies) == MaxChunks {
		s.overflow = true
		return false
	}
	s.cookies = append(s.cookies, chunk{name, value})
	return true
}

// NewSessionStore collects the request cookies whose name starts with def.Name. A prefix
// match, not an exact one, is what NextAuth does, and it is what lets stale chunks be found
// and deleted. The jar's names are walked once and at most MaxChunks+1 are looked at.
func NewSessionStore(def Definition, jar Jar) SessionStore {
	s := SessionStore{def: def}
	for _, name := range jar.names {
		if strings.HasPrefix(name, def.Name) && !s.add(name, jar.values[name]) {
			break
		}
	}
	return s
}

// SessionValue is NewSessionStore(def, Parse(h)).Value(), for the proxy's hot path: it reads
// only the session cookie's pairs, without building the request's whole jar. It is linear in
// the header's length: repeated names are found among the at most MaxChunks kept.
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
	st := SessionStore{def: def, cookies: few[:0]}
	eachPair(s, func(key string) bool {
		if st.overflow || !strings.HasPrefix(key, def.Name) {
			return false
		}
		for _, c := range st.cookies {
			if c.name == key {
				return false // the first occurrence of a name wins
			}
		}
		if len(st.cookies) == MaxChunks {
			st.overflow = true
			return false
		}
		return true
	}, func(key, val string) {
		st.cookies = append(st.cookies, chunk{key, val})
	})
	return st.Value()
}

// Value reassembles the session cookie: the plain name's value, then the chunks <name>.0 …
// <name>.(MaxChunks-1) in index order. "" means no session cookie, or more cookies than
// MaxChunks.
//
// What a writer produces (the plain name alone, or .0 … .n-1) reads as NextAuth reads it.
// Other names with the prefix ("<name>.01", "<name>.0x1", "<name>X", indices past the cap)
// are NextAuth-sorted garbage, never written by NextAuth or by Chunk: they are not part of
// the value (Clean still deletes them). Sets no writer leaves behind (a gap, the plain name
// beside chunks) still concatenate, so they fail to decode and the session read deletes them,
// as in NextAuth. Fixed slots instead of NextAuth's sort keep this linear.
func (s SessionStore) Value() string {
	if s.overflow {
		return ""
	}
	if len(s.cookies) == 1 && s.cookies[0].name == s.def.Name {
		return s.cookies[0].value
	}
	plain := ""
	var parts [MaxChunks]string
	n := 0
	for _, c := range s.cookies {
		if c.name == s.def.Name {
			plain = c.value
			n += len(c.value)
		} else if i, ok := chunkIndex(c.name[len(s.def.Name):]); ok {
			parts[i] = c.value
			n += len(c.value)
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(plain)
	for _, p := range parts {
		b.WriteString(p)
	}
	return b.String()
}

// chunkIndex parses the part of a cookie name after the session cookie's name: "." and a
// chunk index in [0, MaxChunks) written in canonical decimal ("0", "7", "15"), the only form
// Chunk and NextAuth write.
func chunkIndex(suffix string) (int, bool) {
	if len(suffix) < 2 || len(suffix) > 3 || suffix[0] != '.' {
		return 0, false
	}
	digits := suffix[1:]
	if digits[0] == '0' && len(digits) > 1 {
		return 0, false
	}
	i := 0
	for j := 0; j < len(digits); j++ {
		c := digits[j]
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
	}
	return i, i < MaxChunks
}

// Chunk returns the Set-Cookie list that stores value as the session cookie, in NextAuth's
// order: first a deletion for every cookie collected from the request, then the new cookie
// (under the plain name when it fits in one chunk, else as <name>.0, <name>.1, …) with
// Expires set. A name that is both deleted and rewritten appears once, with the new value,
// at the deletion's position. An empty value yields only the deletions, as in NextAuth.
//
// value is split by bytes; session values are JWEs or opaque ids, which are ASCII. A value
// longer than MaxSessionBytes (see Fits) is not written, since no reader would accept it
// back: only the deletions are returned, and the caller should say why.
func (s SessionStore) Chunk(value string, expires time.Time) []Cookie {
	out := s.Clean()
	if !Fits(value) {
		return out
	}
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
// every session cookie collected from the request, in request order: at most MaxChunks.
func (s SessionStore) Clean() []Cookie {
	opts := s.def.Options
	opts.MaxAge = MaxAge(0)
	out := make([]Cookie, 0, len(s.cookies)+2)
	for _, c := range s.cookies {
		out = append(out, Cookie{Name: c.name, Value: "", Options: opts})
	}
	return out
}
