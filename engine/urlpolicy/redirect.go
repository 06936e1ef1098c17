package urlpolicy

import (
	"net/url"
	"strings"
)

// Redirects is the one redirect check for every URL a callback or a client chose: sign-in
// and sign-out callbackUrl, the redirect callback's result, the authorized callback's
// redirect and nginx's X-Callgate-Location. A target is allowed when it is a "/"-relative
// path, or an absolute http(s) URL on one of the allowed origins.
//
// What browsers forgive is refused rather than passed on: a target with any control
// character or whitespace (browsers drop tabs and newlines, so "/\t/evil.com" becomes the
// protocol-relative "//evil.com"), a backslash anywhere (browsers read "\" as "/" in
// http(s) URLs: "/\evil.com"), a protocol-relative "//host", userinfo, a malformed
// percent-escape, and a host that is not canonical.
type Redirects struct {
	origins map[string]bool // scheme://host[:port], canonical, default port dropped
}

// NewRedirects allows the given origins ("https://auth.example.com", "http://wiki.test:8080").
// An origin that does not parse is skipped; callers validate their configuration first.
func NewRedirects(origins ...string) *Redirects {
	r := &Redirects{origins: make(map[string]bool, len(origins))}
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil {
			continue
		}
		if key, ok := originKey(u); ok {
			r.origins[key] = true
		}
	}
	return r
}

// Relative reports whether target is a safe "/"-relative path: it starts with one "/"
// (not "//"), and holds no control character, whitespace or backslash and no malformed
// escape.
func Relative(target string) bool {
	return strings.HasPrefix(target, "/") && !strings.HasPrefix(target, "//") && cleanURLText(target)
}

// Allowed reports whether target may be redirected to: a safe relative path, or an
// absolute URL on an allowed origin.
func (r *Redirects) Allowed(target string) bool {
	if Relative(target) {
		return true
	}
	u, ok := ParseAbsolute(target)
	if !ok {
		return false
	}
	key, ok := originKey(u)
	return ok && r.origins[key]
}

// ParseAbsolute parses target as an absolute http(s) URL with a host, refusing the same
// text Relative refuses and userinfo. ok is false for anything else.
func ParseAbsolute(target string) (*url.URL, bool) {
	if !cleanURLText(target) {
		return nil, false
	}
	u, err := url.Parse(target)
	if err != nil || u.User != nil || u.Host == "" || u.Opaque != "" {
		return nil, false
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return nil, false
	}
	return u, true
}

// ValidCallbackURL is NextAuth's assertConfig rule (an http(s) URL or a "/"-relative
// path) with the text refused that browsers would read as something else.
func ValidCallbackURL(target string) bool {
	if strings.HasPrefix(target, "/") {
		return cleanURLText(target)
	}
	_, ok := ParseAbsolute(target)
	return ok
}

func originKey(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	h, err := CanonicalHost(u.Host)
	if err != nil {
		return "", false
	}
	if (scheme == "http" && h.Port == "80") || (scheme == "https" && h.Port == "443") {
		h.Port = ""
	}
	return scheme + "://" + h.String(), true
}

// cleanURLText refuses control characters, whitespace (ASCII and the Unicode spaces a
// browser's URL parser may trim), backslashes, and malformed percent-escapes.
func cleanURLText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= 0x20 || c == 0x7f || c == '\\':
			return false
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
		case c >= 0x80:
			// Non-ASCII text has no business in a redirect target: browsers would
			// percent-encode it, and some Unicode spaces and separators are trimmed.
			return false
		}
	}
	return true
}
