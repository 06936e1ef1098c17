package cookie

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testExpires = time.Date(2026, 12, 29, 8, 43, 4, 0, time.UTC)

const (
	secureSession = "__Secure-next-auth.session-token"
	secureAttrs   = "; Path=/; Expires=Tue, 29 Dec 2026 08:43:04 GMT; HttpOnly; Secure; SameSite=Lax"
	secureDelete  = "=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
)

// filler returns n characters from the base64url alphabet, like a JWE.
func filler(n int, seed byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[(int(seed)+i*7)%len(alphabet)]
	}
	return string(b)
}

func strs(cs []Cookie) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

func storeFor(header string) SessionStore {
	return NewSessionStore(Defaults(true).SessionToken, ParseString(header))
}

func TestChunkSplitsLargeValue(t *testing.T) {
	big := filler(6937, 1)
	got := storeFor("").Chunk(big, testExpires)
	want := []string{
		secureSession + ".0=" + big[:3933] + secureAttrs,
		secureSession + ".1=" + big[3933:] + secureAttrs,
	}
	if !reflect.DeepEqual(strs(got), want) {
		t.Fatalf("Chunk(6937 chars):\n got %q\nwant %q", strs(got), want)
	}
	if len(got[0].Value) != 3933 || len(got[1].Value) != 3004 {
		t.Errorf("chunk sizes = %d, %d; want 3933, 3004", len(got[0].Value), len(got[1].Value))
	}
}

func TestChunkSizes(t *testing.T) {
	tests := []struct {
		size      int
		wantNames []string
	}{
		{0, nil},
		{1, []string{secureSession}},
		{ChunkSize, []string{secureSession}},
		{ChunkSize + 1, []string{secureSession + ".0", secureSession + ".1"}},
		{3*ChunkSize + 5, []string{secureSession + ".0", secureSession + ".1", secureSession + ".2", secureSession + ".3"}},
	}
	for _, tt := range tests {
		value := filler(tt.size, 3)
		got := storeFor("").Chunk(value, testExpires)
		var names []string
		var joined strings.Builder
		for _, c := range got {
			names = append(names, c.Name)
			joined.WriteString(c.Value)
			if c.Options.Expires != testExpires || c.Options.MaxAge != nil {
				t.Errorf("size %d: %s options %+v, want Expires and no Max-Age", tt.size, c.Name, c.Options)
			}
		}
		if !reflect.DeepEqual(names, tt.wantNames) || joined.String() != value {
			t.Errorf("Chunk(%d chars) names = %v (rejoined ok: %v), want %v", tt.size, names, joined.String() == value, tt.wantNames)
		}
	}
}

func TestChunkTransitions(t *testing.T) {
	small := filler(600, 5)
	big := filler(6937, 9)
	big3 := filler(2*ChunkSize+10, 11)
	tests := []struct {
		name    string
		request string
		value   string
		want    []string
	}{
		{
			"chunked to unchunked (docs/wire.md §11.18)",
			secureSession + ".0=x; " + secureSession + ".1=y",
			small,
			[]string{secureSession + ".0" + secureDelete, secureSession + ".1" + secureDelete, secureSession + "=" + small + secureAttrs},
		},
		{
			"unchunked to chunked",
			secureSession + "=old",
			big,
			[]string{secureSession + secureDelete, secureSession + ".0=" + big[:3933] + secureAttrs, secureSession + ".1=" + big[3933:] + secureAttrs},
		},
		{
			"unchunked to unchunked: one Set-Cookie with the new value",
			"other=1; " + secureSession + "=old",
			small,
			[]string{secureSession + "=" + small + secureAttrs},
		},
		{
			"three chunks to two: rewritten in place, the third deleted",
			secureSession + ".0=a; " + secureSession + ".1=b; " + secureSession + ".2=c",
			big,
			[]string{secureSession + ".0=" + big[:3933] + secureAttrs, secureSession + ".1=" + big[3933:] + secureAttrs, secureSession + ".2" + secureDelete},
		},
		{
			"request order decides deletion positions",
			secureSession + ".1=b; " + secureSession + ".0=a",
			big3,
			[]string{
				secureSession + ".1=" + big3[ChunkSize:2*ChunkSize] + secureAttrs,
				secureSession + ".0=" + big3[:ChunkSize] + secureAttrs,
				secureSession + ".2=" + big3[2*ChunkSize:] + secureAttrs,
			},
		},
		{
			"empty value only deletes",
			secureSession + "=old",
			"",
			[]string{secureSession + secureDelete},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strs(storeFor(tt.request).Chunk(tt.value, testExpires))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Chunk:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		request string
		want    []string
	}{
		{"", []string{}},
		{"other=1", []string{}},
		{secureSession + "=x", []string{secureSession + secureDelete}},
		{secureSession + ".1=y; a=b; " + secureSession + ".0=x", []string{secureSession + ".1" + secureDelete, secureSession + ".0" + secureDelete}},
	}
	for _, tt := range tests {
		if got := strs(storeFor(tt.request).Clean()); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Clean() for request %q = %q, want %q", tt.request, got, tt.want)
		}
	}
	insecure := NewSessionStore(Defaults(false).SessionToken, ParseString("next-auth.session-token=x"))
	if got, want := strs(insecure.Clean()), []string{"next-auth.session-token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"}; !reflect.DeepEqual(got, want) {
		t.Errorf("insecure Clean() = %q, want %q", got, want)
	}
}

func TestValueReassembles(t *testing.T) {
	var shuffled []string
	var want strings.Builder
	for i := range 12 {
		want.WriteString("<" + strconv.Itoa(i) + ">")
	}
	for _, i := range []int{7, 11, 0, 3, 10, 1, 9, 2, 4, 8, 6, 5} {
		shuffled = append(shuffled, secureSession+"."+strconv.Itoa(i)+"=<"+strconv.Itoa(i)+">")
	}
	tests := []struct {
		name, request, want string
	}{
		{"none", "other=1", ""},
		{"plain", secureSession + "=tok", "tok"},
		{"two out of order", secureSession + ".1=BBB; " + secureSession + ".0=AAA", "AAABBB"},
		{"twelve shuffled (10 sorts after 9)", strings.Join(shuffled, "; "), want.String()},
		// No writer leaves both; the plain name comes first, then the chunks by index (which
		// is also where NextAuth's sort leaves it for this request order).
		{"plain mixed with chunks", secureSession + "=P; " + secureSession + ".1=B; " + secureSession + ".0=A", "PAB"},
	}
	for _, tt := range tests {
		if got := storeFor(tt.request).Value(); got != tt.want {
			t.Errorf("%s: Value() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestSessionCookiesOverHTTP runs the read-and-rewrite cycle through a real server and client:
// two Cookie header lines in, reassembly, then the Set-Cookie lines in order.
func TestSessionCookiesOverHTTP(t *testing.T) {
	def := Defaults(true).SessionToken
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		store := NewSessionStore(def, Parse(r.Header))
		Write(w.Header(), store.Chunk("new-token", testExpires)...)
		_, _ = io.WriteString(w, store.Value())
	}))
	defer srv.Close()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("Cookie", secureSession+".1=BBB")
	req.Header.Add("Cookie", "unrelated=%7C; "+secureSession+".0=AAA")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "AAABBB" {
		t.Errorf("server reassembled %q, want AAABBB", body)
	}
	want := []string{
		secureSession + ".1" + secureDelete,
		secureSession + ".0" + secureDelete,
		secureSession + "=new-token" + secureAttrs,
	}
	if got := resp.Header.Values("Set-Cookie"); !reflect.DeepEqual(got, want) {
		t.Errorf("Set-Cookie lines:\n got %q\nwant %q", got, want)
	}
}
