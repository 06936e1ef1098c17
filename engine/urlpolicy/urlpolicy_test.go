package urlpolicy

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCanonicalPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means refused
	}{
		{"/", "/"},
		{"/app/x", "/app/x"},
		{"/app/x/", "/app/x/"},
		{"/public/../secret", "/secret"},
		{"/public/%2e%2e/secret", "/secret"},
		{"/public/%2E%2e/secret", "/secret"},
		{"/public/.%2e/secret", "/secret"},
		{"/public/./x", "/public/x"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/..", "/"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"/a///b//", "/a/b/"},
		{"/a//b/./c", "/a/b/c"},
		{"/%61dmin", "/admin"},
		{"/%7Euser", "/~user"},
		{"/caf%c3%a9", "/caf%C3%A9"},
		{"/café", "/caf%C3%A9"},
		{"/a%20b", "/a%20b"},
		{"/a%25b", "/a%25b"},
		{"/a%3Fb", "/a%3Fb"},
		{"/a|b", "/a%7Cb"},
		{"/a\"b", "/a%22b"},
		{"/.well-known/jwks.json", "/.well-known/jwks.json"},
		{"/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="},
		{"/ADMIN", "/ADMIN"},
		// Refused.
		{"", ""},
		{"admin", ""},
		{"*", ""},
		{"/a%2Fb", ""},
		{"/a%2fb", ""},
		{"/a%5Cb", ""},
		{"/a\\b", ""},
		{"/public\\..\\admin", ""},
		{"/public/..;/admin", ""},
		{"/admin;jsessionid=1", ""},
		{"/admin%3Bx", ""},
		{"/a%00b", ""},
		{"/a\x00b", ""},
		{"/a%0Ab", ""},
		{"/a\tb", ""},
		{"/a b", ""},
		{"/a%7Fb", ""},
		{"/a#b", ""},
		{"/%zz", ""},
		{"/%4", ""},
		{"/%", ""},
		{"/%C0%AE%C0%AE/admin", ""}, // overlong "."
		{"/%C0%AF", ""},             // overlong "/"
		{"/%E0%80%AF", ""},
		{"/%ED%A0%80", ""}, // a UTF-16 surrogate
		{"/%FF", ""},
		{"/\xff", ""},
		{"/admin.", ""},
		{"/admin./", ""},
		{"/admin%2E", ""},
		{"/a/.../b", ""},
		{"/admin%20", ""},
		{"//admin", ""},
		{"///admin", ""},
		{"/a/b//../c", ""},
		{"/public//%2e%2e/admin", ""},
		{"/admin/x//../../public", ""},
		{"/admin%20/x", ""},
		{"/" + strings.Repeat("a", MaxPathLength), ""},
		// Short enough as sent, too long once each raw byte is percent-encoded.
		{"/" + strings.Repeat("é", MaxPathLength/4), ""},
	} {
		got, err := CanonicalPath(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("CanonicalPath(%q) = %q, want refused", tc.in, got)
			} else if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("CanonicalPath(%q): error %v does not wrap ErrInvalidPath", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestHasPrefix(t *testing.T) {
	for _, tc := range []struct {
		path, prefix string
		fold, want   bool
	}{
		{"/app", "/app", false, true},
		{"/app/x", "/app", false, true},
		{"/apple", "/app", false, false},
		{"/APP/x", "/app", false, false},
		{"/APP/x", "/app", true, true},
		{"/Admin", "/admin", true, true},
		{"/x", "/", false, true},
		{"/app/x", "/app/", false, true},
		{"/app", "/app/", false, false},
		{"/ap", "/app", true, false},
	} {
		if got := HasPrefix(tc.path, tc.prefix, tc.fold); got != tc.want {
			t.Errorf("HasPrefix(%q, %q, %v) = %v, want %v", tc.path, tc.prefix, tc.fold, got, tc.want)
		}
	}
}

func TestSplitTarget(t *testing.T) {
	for _, tc := range []struct {
		in, path, query string
		ok              bool
	}{
		{"/a/../b?x=1&y=%2F", "/b", "x=1&y=%2F", true},
		{"/a", "/a", "", true},
		{"/a?", "/a", "", true},
		{"/a?x=1#frag", "", "", false},
		{"/a?x=\n", "", "", false},
		{"http://evil/a", "", "", false},
		{"/a%2Fb?x", "", "", false},
	} {
		p, q, err := SplitTarget(tc.in)
		if (err == nil) != tc.ok || p != tc.path || q != tc.query {
			t.Errorf("SplitTarget(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, p, q, err, tc.path, tc.query, tc.ok)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"wiki.test", "wiki.test"},
		{"WIKI.Test", "wiki.test"},
		{"wiki.test.", "wiki.test"},
		{"wiki.test.:8080", "wiki.test:8080"},
		{"Wiki.Test:443", "wiki.test:443"},
		{"127.0.0.1:3000", "127.0.0.1:3000"},
		{"[::1]:3000", "[::1]:3000"},
		{"[::1]", "[::1]"},
		{"", ""},
		{".", ""},
		{"wiki..test", ""},
		{"wiki.test..", ""},
		{"wiki.test..:8080", ""},
		{".wiki.test", ""},
		{"..", ""},
		{"wiki.test:", ""},
		{"wiki.test:0", ""},
		{"wiki.test:65536", ""},
		{"wiki.test:08080", ""},
		{"wiki.test:+80", ""},
		{"wiki test", ""},
		{"wiki.test/x", ""},
		{"user@wiki.test", ""},
		{"[::1", ""},
		{"[zz]", ""},
		{"wïki.test", ""},
	} {
		h, err := CanonicalHost(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("CanonicalHost(%q) = %q, want refused", tc.in, h)
			}
			continue
		}
		if err != nil || h.String() != tc.want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", tc.in, h, err, tc.want)
		}
	}
}

func TestRedirects(t *testing.T) {
	r := NewRedirects("https://auth.example.com", "https://wiki.test:8443")
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{"/", true},
		{"/dashboard?x=1#top", true},
		{"https://auth.example.com/x", true},
		{"https://AUTH.example.com:443/x", true},
		{"https://auth.example.com./x", true},
		{"https://wiki.test:8443/", true},
		{"https://wiki.test/", false},
		{"http://auth.example.com/x", false},
		{"https://evil.com/", false},
		{"//evil.com", false},
		{"/\\evil.com", false},
		{"/\t/evil.com", false},
		{"/\n/evil.com", false},
		{"/\r/evil.com", false},
		{" /x", false},
		{"/x y", false},
		{"\x00/x", false},
		{"/%zz", false},
		{"https://auth.example.com@evil.com/", false},
		{"https://evil.com\\@auth.example.com/", false},
		{"https:\\\\evil.com", false},
		{"javascript:alert(1)", false},
		{"https:evil.com", false},
		{"/\u3000/evil.com", false},
		{"", false},
	} {
		if got := r.Allowed(tc.target); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.target, got, tc.want)
		}
	}
}

func TestValidCallbackURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"/", true},
		{"/a?b=c", true},
		{"https://anything.example/", true},
		{"/%zz", false},
		{"/\t/x", false},
		{"ftp://x/", false},
		{"x", false},
	} {
		if got := ValidCallbackURL(tc.in); got != tc.want {
			t.Errorf("ValidCallbackURL(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzCanonicalPath checks the properties the gateway relies on for any input: an accepted
// path is idempotent, rooted, free of what the rule refuses, and decodes to valid UTF-8
// without any dot segment or empty segment, so no app can resolve it to another path.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/public/%2e%2e/secret", "/a//b/../c/", "/%61dmin", "/caf%c3%a9", "/a;b", "/%C0%AE", "/a/./b/.", "/x%2F", "/\xff", "/a.", "/..%2f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CanonicalPath(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("error %v does not wrap ErrInvalidPath", err)
			}
			return
		}
		again, err := CanonicalPath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, out, again, err)
		}
		if out[0] != '/' || strings.ContainsAny(out, "\\;#\x00 ") {
			t.Fatalf("%q → %q holds a refused byte", in, out)
		}
		dec, err := url.PathUnescape(out)
		if err != nil {
			t.Fatalf("%q → %q does not unescape: %v", in, out, err)
		}
		if !utf8.ValidString(dec) {
			t.Fatalf("%q → %q is not UTF-8 once decoded", in, out)
		}
		for i, seg := range strings.Split(dec[1:], "/") {
			last := i == strings.Count(dec[1:], "/")
			if seg == "." || seg == ".." || (seg == "" && !last) || strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " ") {
				t.Fatalf("%q → %q has segment %q", in, out, seg)
			}
		}
	})
}

// FuzzRedirects checks that an allowed target can only lead to an allowed origin as a
// browser would resolve it against the gateway's origin.
func FuzzRedirects(f *testing.F) {
	for _, s := range []string{"/", "//evil.com", "/\t/evil.com", "https://auth.example.com/x", "https://evil.com", "/\\evil", "https://a@evil.com"} {
		f.Add(s)
	}
	r := NewRedirects("https://auth.example.com")
	base, _ := url.Parse("https://auth.example.com/api/auth/signin")
	f.Fuzz(func(t *testing.T, target string) {
		if !r.Allowed(target) {
			return
		}
		u, err := base.Parse(target)
		if err != nil {
			t.Fatalf("allowed %q does not parse: %v", target, err)
		}
		if key, ok := originKey(u); !ok || key != "https://auth.example.com" {
			t.Fatalf("allowed %q resolves to origin %q", target, u.Scheme+"://"+u.Host)
		}
	})
}
