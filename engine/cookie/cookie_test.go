package cookie

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestEncodeValue(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAECAwQFBgcICQoL.mWGZ-_x", "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAECAwQFBgcICQoL.mWGZ-_x"},
		{"abc|def", "abc%7Cdef"},
		{"http://localhost:3000", "http%3A%2F%2Flocalhost%3A3000"},
		{"http://127.0.0.1:3000/login", "http%3A%2F%2F127.0.0.1%3A3000%2Flogin"},
		{"a b", "a%20b"},
		{"a+b", "a%2Bb"},
		{"!~*'()-_.", "!~*'()-_."},
		{`;,="\%&?#[]@$/<>{}^` + "`", "%3B%2C%3D%22%5C%25%26%3F%23%5B%5D%40%24%2F%3C%3E%7B%7D%5E%60"},
		{"\t\r\n\x00\x7f", "%09%0D%0A%00%7F"},
		{"é", "%C3%A9"},
		{"日本", "%E6%97%A5%E6%9C%AC"},
		{"😀", "%F0%9F%98%80"},
		{"\xff", "%FF"},
	}
	for _, tt := range tests {
		if got := EncodeValue(tt.in); got != tt.want {
			t.Errorf("EncodeValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"plain", "plain", true},
		{"a+b", "a+b", true}, // unlike query decoding, + stays +
		{"abc%7Cdef", "abc|def", true},
		{"%7c", "|", true},
		{"http%3A%2F%2Flocalhost%3A3000", "http://localhost:3000", true},
		{"%C3%A9", "é", true},
		{"%F0%9F%98%80", "😀", true},
		{"é%20x", "é x", true},
		{"%", "", false},
		{"%2", "", false},
		{"abc%", "", false},
		{"%zz", "", false},
		{"%C3", "", false},        // truncated UTF-8 sequence
		{"%C3x", "", false},       // continuation byte not escaped
		{"%ED%A0%80", "", false},  // UTF-16 surrogate
		{"%C0%AF", "", false},     // overlong
		{"%E9t%C3%A9", "", false}, // first run invalid
		{"%C3%A9%41", "éA", true}, // valid run followed by ASCII in the same run
		{"100%25 ok", "100% ok", true},
	}
	for _, tt := range tests {
		got, ok := DecodeValue(tt.in)
		if ok != tt.wantOK || (ok && got != tt.want) {
			t.Errorf("DecodeValue(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a|b", "http://x.test/p?q=1&r=é#f", "😀 日本 ü", "%%%", `"quoted"`} {
		got, ok := DecodeValue(EncodeValue(s))
		if !ok || got != s {
			t.Errorf("DecodeValue(EncodeValue(%q)) = %q, %v; want the input back", s, got, ok)
		}
	}
}

func TestSerializeMatchesNextAuthTranscripts(t *testing.T) {
	insecure, secure := Defaults(false), Defaults(true)
	const (
		csrfToken = "20d5f8b69dc0121bbd8b16b7a5c75bbf439bea153b6cbbcaf6acc16db2e2cc43"
		csrfHash  = "00cf8b90c2c5a6a5356e410b3ac632f2e7faeb20362bff753a2e2f96f1dfac45"
		jwe       = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..ev1d2Nhsg58M8K9w.dNYe.tjEwnpnHNedqBjHOlPYa2Q"
	)
	expires := time.Date(2026, 12, 29, 8, 43, 4, 0, time.UTC)
	withExpires := func(o Options, t time.Time) Options { o.Expires = t; return o }
	deleted := func(o Options) Options { o.MaxAge = MaxAge(0); return o }
	berlin := time.FixedZone("CET", 3600)

	tests := []struct {
		name  string
		cname string
		value string
		opts  Options
		want  string
	}{
		{"csrf", insecure.CSRFToken.Name, csrfToken + "|" + csrfHash, insecure.CSRFToken.Options,
			"next-auth.csrf-token=" + csrfToken + "%7C" + csrfHash + "; Path=/; HttpOnly; SameSite=Lax"},
		{"callback url", insecure.CallbackURL.Name, "http://127.0.0.1:3000", insecure.CallbackURL.Options,
			"next-auth.callback-url=http%3A%2F%2F127.0.0.1%3A3000; Path=/; HttpOnly; SameSite=Lax"},
		{"session token", insecure.SessionToken.Name, jwe, withExpires(insecure.SessionToken.Options, expires),
			"next-auth.session-token=" + jwe + "; Path=/; Expires=Tue, 29 Dec 2026 08:43:04 GMT; HttpOnly; SameSite=Lax"},
		{"expires in another zone with milliseconds", insecure.SessionToken.Name, jwe,
			withExpires(insecure.SessionToken.Options, expires.Add(999*time.Millisecond).In(berlin)),
			"next-auth.session-token=" + jwe + "; Path=/; Expires=Tue, 29 Dec 2026 08:43:04 GMT; HttpOnly; SameSite=Lax"},
		{"session delete", insecure.SessionToken.Name, "", deleted(insecure.SessionToken.Options),
			"next-auth.session-token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"},
		{"secure csrf", secure.CSRFToken.Name, csrfToken + "|" + csrfHash, secure.CSRFToken.Options,
			"__Host-next-auth.csrf-token=" + csrfToken + "%7C" + csrfHash + "; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{"secure session", secure.SessionToken.Name, jwe, withExpires(secure.SessionToken.Options, expires),
			"__Secure-next-auth.session-token=" + jwe + "; Path=/; Expires=Tue, 29 Dec 2026 08:43:04 GMT; HttpOnly; Secure; SameSite=Lax"},
		{"secure session delete", secure.SessionToken.Name, "", deleted(secure.SessionToken.Options),
			"__Secure-next-auth.session-token=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{"state check cookie", secure.State.Name, "eyJ", withExpires(secure.State.Options, expires),
			"__Secure-next-auth.state=eyJ; Max-Age=900; Path=/; Expires=Tue, 29 Dec 2026 08:43:04 GMT; HttpOnly; Secure; SameSite=Lax"},
		{"every attribute in cookie@0.7 order", "n", "v w",
			Options{Path: "/p", Domain: "example.com", Expires: expires, MaxAge: MaxAge(60), HttpOnly: true, Secure: true, SameSite: "strict"},
			"n=v%20w; Max-Age=60; Domain=example.com; Path=/p; Expires=Tue, 29 Dec 2026 08:43:04 GMT; HttpOnly; Secure; SameSite=Strict"},
		{"samesite none", "n", "v", Options{SameSite: "NONE"}, "n=v; SameSite=None"},
		{"samesite unknown is dropped", "n", "v", Options{SameSite: "sometimes"}, "n=v"},
		{"no options", "n", "", Options{}, "n="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Serialize(tt.cname, tt.value, tt.opts)
			if got != tt.want {
				t.Errorf("Serialize:\n got %s\nwant %s", got, tt.want)
			}
			if c := (Cookie{tt.cname, tt.value, tt.opts}).String(); c != got {
				t.Errorf("Cookie.String() = %s, want the Serialize result %s", c, got)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		secure bool
		want   [6]string
	}{
		{false, [6]string{"next-auth.session-token", "next-auth.callback-url", "next-auth.csrf-token",
			"next-auth.pkce.code_verifier", "next-auth.state", "next-auth.nonce"}},
		{true, [6]string{"__Secure-next-auth.session-token", "__Secure-next-auth.callback-url", "__Host-next-auth.csrf-token",
			"__Secure-next-auth.pkce.code_verifier", "__Secure-next-auth.state", "__Secure-next-auth.nonce"}},
	}
	for _, tt := range tests {
		s := Defaults(tt.secure)
		defs := [6]Definition{s.SessionToken, s.CallbackURL, s.CSRFToken, s.PKCECodeVerifier, s.State, s.Nonce}
		for i, d := range defs {
			if d.Name != tt.want[i] {
				t.Errorf("Defaults(%v) name %d = %q, want %q", tt.secure, i, d.Name, tt.want[i])
			}
			o := d.Options
			if o.Path != "/" || !o.HttpOnly || o.SameSite != "Lax" || o.Secure != tt.secure || o.Domain != "" || !o.Expires.IsZero() {
				t.Errorf("Defaults(%v) %s options = %+v, want Path / HttpOnly SameSite Lax Secure %v", tt.secure, d.Name, o, tt.secure)
			}
			wantMaxAge := d.Name == tt.want[3] || d.Name == tt.want[4]
			if (o.MaxAge != nil) != wantMaxAge || (wantMaxAge && *o.MaxAge != 900) {
				t.Errorf("Defaults(%v) %s MaxAge = %v, want 900 only for pkce and state", tt.secure, d.Name, o.MaxAge)
			}
		}
		if ValidName(s.CSRFToken.Name) != true || ValidName(s.PKCECodeVerifier.Name) != true {
			t.Errorf("default names must be valid cookie names")
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"next-auth.session-token": true, "__Host-x": true, "a_b.c~d!": true,
		"": false, "a b": false, "a;b": false, "a=b": false, "a\r\n": false, "é": false, `a"`: false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

type pair struct{ name, value string }

func jarPairs(j Jar) []pair {
	var out []pair
	for _, n := range j.Names() {
		v, _ := j.Get(n)
		out = append(out, pair{n, v})
	}
	return out
}

func TestParseString(t *testing.T) {
	tests := []struct {
		in   string
		want []pair
	}{
		{"", nil},
		{"a", nil},
		{"a=1", []pair{{"a", "1"}}},
		{"a=1; b=2", []pair{{"a", "1"}, {"b", "2"}}},
		{"b=2;a=1", []pair{{"b", "2"}, {"a", "1"}}},
		{"a=1; a=2", []pair{{"a", "1"}}},
		{"  a \t=\t 1  ;b=2 ", []pair{{"a", "1"}, {"b", "2"}}},
		{`a="quoted value"`, []pair{{"a", "quoted value"}}},
		{`a=""`, []pair{{"a", ""}}},
		{`a="`, []pair{{"a", ""}}},
		{`a="x"y`, []pair{{"a", `"x"y`}}},
		{`a="x%7Cy"`, []pair{{"a", "x|y"}}},
		{"a=x%7Cy", []pair{{"a", "x|y"}}},
		{"a=http%3A%2F%2Flocalhost%3A3000", []pair{{"a", "http://localhost:3000"}}},
		{"a=%zz; b=%E9; c=100%", []pair{{"a", "%zz"}, {"b", "%E9"}, {"c", "100%"}}},
		{"a=b=c", []pair{{"a", "b=c"}}},
		{"=v", []pair{{"", "v"}}},
		{"a=", []pair{{"a", ""}}},
		{"x; y=2; z", []pair{{"y", "2"}}},
		{"a=1;; ;b=2", []pair{{"a", "1"}, {"b", "2"}}},
		{"a=1; junk; b=2", []pair{{"a", "1"}, {"b", "2"}}},
		{"a=x+y", []pair{{"a", "x+y"}}},
	}
	for _, tt := range tests {
		if got := jarPairs(ParseString(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseString(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseHeaderJoinsCookieLines(t *testing.T) {
	h := http.Header{}
	h.Add("Cookie", "a=1; b=2")
	h.Add("Cookie", "a=3; c=%7C")
	j := Parse(h)
	want := []pair{{"a", "1"}, {"b", "2"}, {"c", "|"}}
	if got := jarPairs(j); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(two Cookie headers) = %v, want %v", got, want)
	}
	if j.Len() != 3 {
		t.Errorf("Len() = %d, want 3", j.Len())
	}
	if _, ok := j.Get("missing"); ok {
		t.Error("Get(missing) reported a cookie")
	}
	if got := (Jar{}).WithPrefix("a"); got != nil {
		t.Errorf("zero Jar WithPrefix = %v, want nil", got)
	}
	names := j.Names()
	names[0] = "changed"
	if j.Names()[0] != "a" {
		t.Error("modifying Names() changed the jar")
	}
}
