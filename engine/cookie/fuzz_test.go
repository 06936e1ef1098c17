package cookie

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets of this package (test.sh runs each for a short budget; the seed corpus is
// in testdata/fuzz/<target>/ and runs with every plain `go test`):
//
//   FuzzParseString     a Cookie header never breaks the jar, and what Serialize writes
//                       parses back to the same value
//   FuzzChunkRoundTrip  what Chunk writes, applied to any browser jar, reads back as the
//                       value; the Set-Cookie count stays bounded by the cap
//   FuzzSessionValue    (sessionvalue_test.go) the proxy's fast path agrees with the jar

// FuzzParseString: for any header, the jar is consistent (unique names, every name readable,
// Len matches), and a cookie serialized with a valid name appended to that header reads
// back exactly (unless the header already holds that name: the first occurrence wins).
func FuzzParseString(f *testing.F) {
	for _, tt := range sessionValueCases {
		for _, v := range tt.headers {
			f.Add(v, "next-auth.callback-url", "http://localhost:3000/a b?c=d&e=%zz")
		}
	}
	f.Add(`a="b"; c=%7C; =e; ;;; f`, "__Host-next-auth.csrf-token", "tok|hash")
	f.Add("x=\"", "name", "\x00\xff not UTF-8")
	f.Add("", "n", "")
	f.Add("a;b;c=d;e", "c", "twice")
	f.Fuzz(func(t *testing.T, header, name, value string) {
		jar := ParseString(header)
		names := jar.Names()
		if len(names) != jar.Len() {
			t.Fatalf("Names() has %d entries, Len() = %d", len(names), jar.Len())
		}
		seen := make(map[string]bool, len(names))
		for _, n := range names {
			if seen[n] {
				t.Fatalf("name %q listed twice", n)
			}
			seen[n] = true
			if _, ok := jar.Get(n); !ok {
				t.Fatalf("listed name %q has no value", n)
			}
		}
		if !ValidName(name) {
			return
		}
		// What a JavaScript string can hold comes back decoded; bytes that are not UTF-8
		// are escaped one by one, which decodeURIComponent refuses, so they stay encoded.
		want := value
		if !utf8.ValidString(value) {
			want = EncodeValue(value)
		} else if got, ok := DecodeValue(EncodeValue(value)); !ok || got != value {
			t.Fatalf("DecodeValue(EncodeValue(%q)) = %q, %v", value, got, ok)
		}
		line := Serialize(name, value, Options{Path: "/", HttpOnly: true})
		pair, _, _ := strings.Cut(line, "; ")
		withCookie := ParseString(header + "; " + pair)
		if prior, dup := jar.Get(name); dup {
			want = prior
		}
		if got, ok := withCookie.Get(name); !ok || got != want {
			t.Fatalf("header %q + %q: Get(%q) = %q, %v; want %q", header, pair, name, got, ok, want)
		}
	})
}

// FuzzChunkRoundTrip: Chunk writes at most MaxChunks cookies (plus at most MaxChunks
// deletions), never a value it could not read back, and a browser that applies its
// Set-Cookie lines to the jar it sent then sends a session that reads as the value.
func FuzzChunkRoundTrip(f *testing.F) {
	f.Add("", "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..iv.ct.tag", uint32(60))
	f.Add("next-auth.session-token=old; theme=dark", "abc", uint32(ChunkSize+1))
	f.Add("next-auth.session-token.0=a; next-auth.session-token.1=b; next-auth.session-token.7=z", "A_-.", uint32(3*ChunkSize))
	f.Add("next-auth.session-token.1=b; next-auth.session-tokenX=q; other=%7C", ";,= \"%\x00", uint32(ChunkSize))
	f.Add(chunkHeader("next-auth.session-token", 40, "x"), "x", uint32(2*ChunkSize+3))
	f.Add("", "y", uint32(MaxSessionBytes))
	f.Add("", "z", uint32(MaxSessionBytes+1))
	def := Defaults(false).SessionToken
	f.Fuzz(func(t *testing.T, prior, seed string, size uint32) {
		value := asciiValue(seed, int(size%uint32(MaxSessionBytes+2*ChunkSize)))
		before := ParseString(prior)
		out := NewSessionStore(def, before).Chunk(value, testExpires)

		deletions, writes := 0, 0
		for _, c := range out {
			if c.Options.MaxAge != nil && *c.Options.MaxAge == 0 {
				deletions++
				continue
			}
			writes++
			if len(c.Value) > ChunkSize {
				t.Fatalf("cookie %s holds %d bytes, over ChunkSize", c.Name, len(c.Value))
			}
		}
		if deletions > MaxChunks || writes > MaxChunks {
			t.Fatalf("Chunk wrote %d deletions and %d cookies; want at most %d of each", deletions, writes, MaxChunks)
		}
		if !Fits(value) {
			if writes != 0 {
				t.Fatalf("a %d-byte value (over MaxSessionBytes) was written as %d cookies", len(value), writes)
			}
			return
		}
		if value == "" {
			return
		}
		prefixed := 0
		for _, n := range before.Names() {
			if strings.HasPrefix(n, def.Name) {
				prefixed++
			}
		}
		if prefixed > MaxChunks {
			return // over the cap: cookies past it were never read, so they stay
		}
		after := applySetCookies(before, out)
		if got := NewSessionStore(def, ParseString(after)).Value(); got != value {
			t.Fatalf("after Set-Cookie %d cookies, the jar reads %d bytes, want the %d written\nheader %.200q", len(out), len(got), len(value), after)
		}
		if got := SessionValue(http.Header{"Cookie": {after}}, def); got != value {
			t.Fatalf("SessionValue after Set-Cookie reads %d bytes, want %d", len(got), len(value))
		}
	})
}

// asciiValue repeats seed's bytes, folded into ASCII, to n bytes: session values are JWEs or
// opaque ids, and Chunk splits by bytes.
func asciiValue(seed string, n int) string {
	if seed == "" || n == 0 {
		return ""
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = seed[i%len(seed)] & 0x7f
	}
	return string(b)
}

// applySetCookies is a browser: it applies Set-Cookie values (deletions remove, others set
// or replace in place) to the jar it sent and returns the Cookie header it sends next.
func applySetCookies(jar Jar, set []Cookie) string {
	names := jar.Names()
	listed := make(map[string]bool, len(names))
	values := make(map[string]string, len(names))
	for _, n := range names {
		listed[n] = true
		values[n], _ = jar.Get(n)
	}
	for _, c := range set {
		pair, _, _ := strings.Cut(c.String(), "; ")
		name, raw, _ := strings.Cut(pair, "=")
		if c.Options.MaxAge != nil && *c.Options.MaxAge == 0 {
			delete(values, name)
			continue
		}
		if !listed[name] {
			listed[name] = true
			names = append(names, name)
		}
		values[name], _ = DecodeValue(raw)
	}
	var parts []string
	for _, n := range names {
		if v, ok := values[n]; ok {
			parts = append(parts, n+"="+EncodeValue(v))
		}
	}
	return strings.Join(parts, "; ")
}
