package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
)

// authRequest is one /api/auth/* request after NextAuth's `init`: the action, the parsed
// body, the cookie jar, the CSRF state and the resolved callback URL.
type authRequest struct {
	r          *http.Request
	action     string
	providerID string
	query      url.Values
	body       map[string]any
	jar        cookie.Jar
	gen        *script.Generation
	cfg        script.Config
	secure     bool
	cookies    cookie.Set

	csrfToken    string
	csrfVerified bool
	callbackURL  string
	// setCookies collects Set-Cookie values in order: the init cookies come first, as in NextAuth.
	setCookies []string
}

// validActions are NextAuth v4's AuthAction values.
var validActions = map[string]bool{
	"providers": true, "session": true, "csrf": true, "signin": true, "signout": true,
	"callback": true, "verify-request": true, "error": true, "_log": true,
}

// errBodyTooLarge is answered with 413.
var errBodyTooLarge = errors.New("request body too large")

// parseBody reads a POST body the way Next.js does for NextAuth: urlencoded forms and JSON
// objects; anything else is an empty body (so CSRF fails, as in NextAuth).
func parseBody(r *http.Request, limit int64) (map[string]any, error) {
	body := map[string]any{}
	if r.Method != http.MethodPost || r.Body == nil {
		return body, nil
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(raw)) > limit {
		return nil, errBodyTooLarge
	}
	switch mediaType {
	case "application/x-www-form-urlencoded":
		values, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, fmt.Errorf("parse form body: %w", err)
		}
		for k, v := range values {
			if len(v) == 1 {
				body[k] = v[0]
			} else {
				list := make([]any, len(v))
				for i, s := range v {
					list[i] = s
				}
				body[k] = list
			}
		}
	case "application/json":
		if len(strings.TrimSpace(string(raw))) == 0 {
			return body, nil
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("parse JSON body: %w", err)
		}
		if m, ok := v.(map[string]any); ok {
			body = m
		}
	}
	return body, nil
}

// stringField returns a body or query field when it is a string.
func stringField(m map[string]any, key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}

// wantsJSON is NextAuth v4's switch: the parsed body field json must be the string "true".
func (a *authRequest) wantsJSON() bool {
	s, _ := stringField(a.body, "json")
	return s == "true"
}

// csrfHash is NextAuth's sha256hex(token + secret).
func csrfHash(token, secret string) string {
	sum := sha256.Sum256([]byte(token + secret))
	return hex.EncodeToString(sum[:])
}

// initCSRF reuses the CSRF cookie's token when its hash verifies under any configured
// secret, else mints a new one and queues its cookie. A POST counts as verified only when
// the body's csrfToken equals the cookie's token.
func (e *Engine) initCSRF(a *authRequest) error {
	if raw, ok := a.jar.Get(a.cookies.CSRFToken.Name); ok {
		tok, hash, found := strings.Cut(raw, "|")
		if found && e.csrfHashValid(tok, hash) {
			a.csrfToken = tok
			if a.r.Method == http.MethodPost {
				sent, _ := stringField(a.body, "csrfToken")
				a.csrfVerified = subtle.ConstantTimeCompare([]byte(sent), []byte(tok)) == 1
			}
			return nil
		}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("mint CSRF token: %w", err)
	}
	a.csrfToken = hex.EncodeToString(b[:])
	value := a.csrfToken + "|" + csrfHash(a.csrfToken, e.keys.Secret())
	a.setCookies = append(a.setCookies, cookie.Serialize(a.cookies.CSRFToken.Name, value, a.cookies.CSRFToken.Options))
	return nil
}

func (e *Engine) csrfHashValid(tok, hash string) bool {
	valid := 0
	for _, s := range e.keys.Secrets() {
		valid |= subtle.ConstantTimeCompare([]byte(hash), []byte(csrfHash(tok, s)))
	}
	return valid == 1
}

var httpScheme = regexp.MustCompile(`^https?:$`)

// isValidCallbackURL is NextAuth's assertConfig check: an http(s) URL or a "/"-relative path.
func (e *Engine) isValidCallbackURL(s string) bool {
	base, _ := url.Parse(e.origin)
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	if strings.HasPrefix(s, "/") {
		u = base.ResolveReference(u)
	}
	return httpScheme.MatchString(u.Scheme + ":")
}

// sameOrigin reports whether u (absolute) has the gateway's origin, compared as the URL
// standard's origin: scheme and host with the default port removed, case-insensitively.
func (e *Engine) sameOrigin(u *url.URL) bool {
	return originOf(u) == originOfString(e.origin)
}

func originOf(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

func originOfString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return originOf(u)
}

// defaultRedirect is NextAuth's default redirect callback: "/"-relative URLs are joined to
// the origin, same-origin absolute URLs are kept, anything else becomes the origin.
func (e *Engine) defaultRedirect(target string) string {
	if strings.HasPrefix(target, "/") {
		return e.origin + target
	}
	if u, err := url.Parse(target); err == nil && u.IsAbs() && e.allowedRedirect(u) {
		return target
	}
	return e.origin
}

// checkedRedirect is the core's final word on any URL a script chose: relative paths are
// made absolute (the v4 client needs an absolute URL), and an off-site URL is replaced by
// the origin and logged, so no script mistake becomes an open redirect.
func (e *Engine) checkedRedirect(a *authRequest, source, target string) string {
	if strings.HasPrefix(target, "/") && !strings.HasPrefix(target, "//") && !strings.HasPrefix(target, "/\\") {
		return e.origin + target
	}
	if u, err := url.Parse(target); err == nil && u.IsAbs() && e.allowedRedirect(u) {
		return target
	}
	e.log.WarnContext(a.r.Context(), "redirect to another origin refused; using the origin instead",
		"code", "UNSAFE_REDIRECT", "callback", source, "url", target)
	return e.origin
}

// resolveRedirect runs the redirect callback (or NextAuth's default) for url.
func (e *Engine) resolveRedirect(a *authRequest, target string) (string, error) {
	if !a.gen.Has("callbacks.redirect") {
		return e.defaultRedirect(target), nil
	}
	res, err := a.gen.Call(a.r.Context(), "callbacks.redirect", map[string]any{"url": target, "baseUrl": e.origin})
	if err != nil {
		return "", err
	}
	s, _ := res.(string)
	return e.checkedRedirect(a, "callbacks.redirect", s), nil
}

// initCallbackURL is NextAuth's createCallbackUrl: body callbackUrl, else query callbackUrl,
// else the callback-url cookie goes through the redirect callback; the cookie is (re)set
// whenever the result differs from what the browser sent.
func (e *Engine) initCallbackURL(a *authRequest) error {
	cookieValue, hasCookie := a.jar.Get(a.cookies.CallbackURL.Name)
	candidate, ok := stringField(a.body, "callbackUrl")
	if !ok || candidate == "" {
		candidate = a.query.Get("callbackUrl")
	}
	var err error
	switch {
	case candidate != "":
		a.callbackURL, err = e.resolveRedirect(a, candidate)
	case hasCookie:
		a.callbackURL, err = e.resolveRedirect(a, cookieValue)
	default:
		a.callbackURL = e.origin
	}
	if err != nil {
		return err
	}
	if a.callbackURL != cookieValue {
		a.setCookies = append(a.setCookies, cookie.Serialize(a.cookies.CallbackURL.Name, a.callbackURL, a.cookies.CallbackURL.Options))
	}
	return nil
}
