package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/engine/script"
)

// authRequest is one /api/auth/* request after NextAuth's `init`: the action, the parsed
// body, the cookie jar, the CSRF state and the resolved callback URL. Its methods are the
// helpers that need nothing but the request: logging a failed callback, running an event,
// the session cookies, and writing the response.
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
	// log is the engine's logger: a request's failures are logged with its context.
	log *slog.Logger

	csrfToken    string
	csrfVerified bool
	callbackURL  string
	// setCookies collects Set-Cookie values in order: the init cookies come first, as in NextAuth.
	setCookies []string
	// limits are the sign-in limit slots this attempt reserved (signinlimit.go).
	limits guard.Reservation
}

// validActions are NextAuth v4's AuthAction values, and the factor routes.
var validActions = map[string]bool{
	"providers": true, "session": true, "csrf": true, "signin": true, "signout": true,
	"callback": true, "verify-request": true, "error": true, "_log": true,
	// callgate's own: second factors and passkeys (factor_routes.go).
	"challenge": true, "webauthn": true, "totp": true, "factors": true, "assets": true,
}

// errBodyTooLarge is answered with 413.
var errBodyTooLarge = errors.New("request body too large")

// parseBody reads a POST body the way Next.js does for NextAuth: urlencoded forms and JSON
// objects; anything else is an empty body (so CSRF fails, as in NextAuth). Unlike Next.js,
// a field given twice is an error, answered with 400 (bodyfields.go).
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
		if err := repeatedFormField(values); err != nil {
			return nil, fmt.Errorf("parse form body: %w", err) // bodyfields.go says why
		}
		for k, v := range values {
			body[k] = v[0]
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
			if err := repeatedJSONKey(raw); err != nil {
				return nil, fmt.Errorf("parse JSON body: %w", err) // bodyfields.go says why
			}
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
