package cookie

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// chunkHeader is a Cookie header with n session chunks named <name>.0 … <name>.(n-1), each
// holding value.
func chunkHeader(name string, n int, value string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(name + "." + strconv.Itoa(i) + "=" + value)
	}
	return b.String()
}

// TestSessionStoreCap: up to MaxChunks chunks reassemble; one more and the request has no
// session, and what is cleared or written stays bounded by the cap, not by the request.
func TestSessionStoreCap(t *testing.T) {
	def := Defaults(true).SessionToken
	var full strings.Builder
	for i := range MaxChunks {
		full.WriteString("<" + strconv.Itoa(i) + ">")
	}
	var parts []string
	for i := range MaxChunks {
		parts = append(parts, def.Name+"."+strconv.Itoa(i)+"=<"+strconv.Itoa(i)+">")
	}
	atCap := strings.Join(parts, "; ")

	tests := []struct {
		name      string
		header    string
		wantValue string
	}{
		{"exactly the cap reassembles", atCap, full.String()},
		{"one over the cap is no session", atCap + "; " + def.Name + "." + strconv.Itoa(MaxChunks) + "=x", ""},
		{"the plain name on top of a full set is one too many", atCap + "; " + def.Name + "=P", ""},
		{"30,000 chunks", chunkHeader(def.Name, 30000, "x"), ""},
		{"30,000 foreign names with the prefix", strings.ReplaceAll(chunkHeader(def.Name, 30000, "x"), def.Name+".", def.Name+"-junk"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jar := ParseString(tt.header)
			s := NewSessionStore(def, jar)
			if got := s.Value(); got != tt.wantValue {
				t.Errorf("Value() = %.40q…, want %q", got, tt.wantValue)
			}
			h := http.Header{"Cookie": {tt.header}}
			if got := SessionValue(h, def); got != tt.wantValue {
				t.Errorf("SessionValue = %.40q…, want %q", got, tt.wantValue)
			}
			// Only a bounded number of cookies is ever held, whatever the request sent.
			if len(s.cookies) > MaxChunks {
				t.Errorf("store holds %d cookies, want at most %d", len(s.cookies), MaxChunks)
			}
			if n := len(s.Clean()); n > MaxChunks {
				t.Errorf("Clean() = %d deletions, want at most %d", n, MaxChunks)
			}
			big := filler(3*ChunkSize+1, 7) // four chunks
			if n := len(s.Chunk(big, testExpires)); n > MaxChunks+4 {
				t.Errorf("Chunk(4 chunks) = %d Set-Cookies, want at most %d (cap + the chunks written)", n, MaxChunks+4)
			}
		})
	}
}

// TestChunkRefusesTooLarge: a value that needs more chunks than the reader accepts is not
// written (the browser would send back a session nobody can read); the stale cookies are
// still deleted.
func TestChunkRefusesTooLarge(t *testing.T) {
	s := storeFor(secureSession + "=old")
	fits := filler(MaxSessionBytes, 2)
	if !Fits(fits) {
		t.Fatalf("Fits(%d bytes) = false, want true", len(fits))
	}
	got := s.Chunk(fits, testExpires)
	if len(got) != MaxChunks+1 { // the old plain cookie deleted, MaxChunks chunks written
		t.Fatalf("Chunk(MaxSessionBytes) = %d cookies, want %d", len(got), MaxChunks+1)
	}
	tooBig := filler(MaxSessionBytes+1, 2)
	if Fits(tooBig) {
		t.Fatalf("Fits(%d bytes) = true, want false", len(tooBig))
	}
	if got, want := strs(s.Chunk(tooBig, testExpires)), []string{secureSession + secureDelete}; !equalStrings(got, want) {
		t.Errorf("Chunk(too large) = %q, want only the deletion %q", got, want)
	}
}

// TestValueIgnoresForeignNames: cookies that start with the session cookie's name but are
// neither the plain name nor <name>.0 … <name>.(MaxChunks-1) in canonical decimal are not
// part of the value; they are still deleted, as NextAuth deletes every cookie with the prefix.
func TestValueIgnoresForeignNames(t *testing.T) {
	foreign := []string{".01", ".+1", ".-1", ".0x1", ". 1", ".1x", ".abc", ".", "X", "-legacy", "." + strconv.Itoa(MaxChunks), ".99999999999999999999999"}
	for _, suffix := range foreign {
		t.Run(suffix, func(t *testing.T) {
			header := secureSession + suffix + "=JUNK; " + secureSession + "=tok"
			s := storeFor(header)
			if got := s.Value(); got != "tok" {
				t.Errorf("Value() = %q, want %q (the foreign name ignored)", got, "tok")
			}
			want := []string{secureSession + suffix + secureDelete, secureSession + secureDelete}
			if got := strs(s.Clean()); !equalStrings(got, want) {
				t.Errorf("Clean() = %q, want %q", got, want)
			}
		})
	}
}

// TestValueMalformedSets: chunk sets no writer produces (gaps, the plain name next to chunks)
// concatenate in index order, as NextAuth does; the result is not a token, so the session
// read rejects it and deletes the cookies.
func TestValueMalformedSets(t *testing.T) {
	tests := []struct{ header, want string }{
		{secureSession + ".0=A; " + secureSession + ".2=C", "AC"},
		{secureSession + ".2=C", "C"},
		{secureSession + ".1=B; " + secureSession + "=P; " + secureSession + ".0=A", "PAB"},
		{secureSession + ".0=; " + secureSession + ".1=", ""},
	}
	for _, tt := range tests {
		if got := storeFor(tt.header).Value(); got != tt.want {
			t.Errorf("Value() for %q = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
