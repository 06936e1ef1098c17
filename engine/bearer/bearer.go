// Package bearer checks the access tokens API clients send as `Authorization: Bearer …`
// on proxied and forward-auth requests: a provider's JWT access tokens, verified against its
// published keys with issuer, audience and expiry, and its opaque tokens, asked about by
// RFC 7662 introspection with a short cache. The gateway's own session token as a bearer is
// the session strategies' job; this package only reads the header for it.
//
// It decides nothing about access: a verified token is a set of claims for the authorized
// callback to judge. Everything that is not a valid token is ErrInvalid, which the proxy
// answers with 401 and a WWW-Authenticate challenge, never with a sign-in redirect.
package bearer

import (
	"errors"
	"net/http"
	"strings"
)

// MaxTokenBytes bounds a bearer token before anything parses it. Access tokens of common
// providers are well under 4 KiB; the gateway's own session token is at most one cookie's
// worth of chunks, so 16 KiB holds it too.
const MaxTokenBytes = 16 << 10

// ErrInvalid is a token that is not acceptable: malformed, badly signed, expired, for
// another audience, inactive. The error's text says which, for the log and the
// WWW-Authenticate error_description; it never holds the token.
var ErrInvalid = errors.New("invalid bearer token")

// ErrUnavailable is a provider that could not be asked (discovery, keys or introspection
// unreachable): the request is refused with 503, neither let through nor called invalid.
var ErrUnavailable = errors.New("bearer token provider unavailable")

// invalid wraps ErrInvalid with the reason.
func invalid(reason string) error { return &reasonError{reason: reason, kind: ErrInvalid} }

type reasonError struct {
	reason string
	kind   error
	cause  error
}

func (e *reasonError) Error() string {
	if e.cause != nil {
		return e.reason + ": " + e.cause.Error()
	}
	return e.reason
}

func (e *reasonError) Is(target error) bool { return target == e.kind }
func (e *reasonError) Unwrap() error        { return e.cause }

// Reason is the short reason of an ErrInvalid error, fit for a WWW-Authenticate
// error_description (no token, no quote or control character).
func Reason(err error) string {
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return "invalid token"
}

// FromHeader returns the token of the request's Authorization header. present is false when
// there is no Authorization header, or one of another scheme (Basic credentials are the
// app's business; the request may still carry a cookie). A Bearer header the gateway
// cannot read is ErrInvalid: a second Authorization header, an empty, oversized or
// non-token68 token. A client that sends a bearer token the gateway cannot read is told
// so, not treated as anonymous.
func FromHeader(h http.Header) (token string, present bool, err error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, invalid("more than one Authorization header")
	}
	scheme, tok, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	tok = strings.TrimLeft(tok, " ")
	switch {
	case tok == "":
		return "", true, invalid("empty bearer token")
	case len(tok) > MaxTokenBytes:
		return "", true, invalid("bearer token too long")
	case !isToken68(tok):
		return "", true, invalid("bearer token has characters a token cannot have")
	}
	return tok, true, nil
}

// isToken68 reports whether s is RFC 7235's token68: ALPHA / DIGIT / "-" / "." / "_" / "~" /
// "+" / "/", then "=" padding only at the end.
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// LooksLikeJWT tells a compact JWS (three base64url parts) from an opaque token. Opaque
// tokens of common providers (Hydra's ory_at_…, random strings) have at most one dot.
func LooksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }
