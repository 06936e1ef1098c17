package cookie

import (
	"net/http"
	"testing"
)

// sessionValueCases are Cookie headers whose session value the fast path must read exactly
// as the full jar does.
var sessionValueCases = []struct {
	name    string
	headers []string
	want    string
}{
	{"no cookie header", nil, ""},
	{"other cookies only", []string{"theme=dark; lang=en"}, ""},
	{"one session cookie", []string{"theme=dark; next-auth.session-token=abc.def; lang=en"}, "abc.def"},
	{"chunks out of order", []string{"next-auth.session-token.1=BBB; next-auth.session-token.0=AAA"}, "AAABBB"},
	{"first occurrence wins", []string{"next-auth.session-token=first; next-auth.session-token=second"}, "first"},
	{"quoted and percent-encoded", []string{`next-auth.session-token="a%2Fb"`}, "a/b"},
	{"bad percent-encoding kept raw", []string{"next-auth.session-token=a%zzb"}, "a%zzb"},
	{"several Cookie headers", []string{"theme=dark", "next-auth.session-token=xyz"}, "xyz"},
	{"name only inside a value", []string{"note=next-auth.session-token"}, ""},
	{"pair without '='", []string{"junk; next-auth.session-token=ok"}, "ok"},
	{"blanks around", []string{" next-auth.session-token \t=\t v "}, "v"},
	// NextAuth collects every name with the prefix; only the plain name and <name>.0 … .15
	// make up a value here (others are deleted, not read).
	{"other names with the prefix are not read", []string{"next-auth.session-tokenX=zz"}, ""},
	{"chunk index past the cap is not read", []string{"next-auth.session-token.16=zz; next-auth.session-token=ok"}, "ok"},
	{"repeated chunk names: the first wins", []string{"next-auth.session-token.0=A; next-auth.session-token.0=B; next-auth.session-token.1=C"}, "AC"},
	{"plain name and chunks", []string{"next-auth.session-token=P; next-auth.session-token.0=A"}, "PA"},
}

func TestSessionValue(t *testing.T) {
	def := Defaults(false).SessionToken
	for _, tt := range sessionValueCases {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.headers {
				h.Add("Cookie", v)
			}
			full := NewSessionStore(def, Parse(h)).Value()
			if full != tt.want {
				t.Fatalf("the jar reads %q, the case expects %q", full, tt.want)
			}
			if got := SessionValue(h, def); got != tt.want {
				t.Errorf("SessionValue = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzSessionValue: for any Cookie header, the fast path and the full jar agree.
func FuzzSessionValue(f *testing.F) {
	for _, tt := range sessionValueCases {
		for _, v := range tt.headers {
			f.Add(v)
		}
	}
	def := Defaults(false).SessionToken
	f.Fuzz(func(t *testing.T, header string) {
		h := http.Header{"Cookie": {header}}
		if got, want := SessionValue(h, def), NewSessionStore(def, Parse(h)).Value(); got != want {
			t.Errorf("Cookie %q: SessionValue = %q, jar = %q", header, got, want)
		}
	})
}
