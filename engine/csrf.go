package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/token"
)

// csrf is NextAuth's double-submit CSRF protection: the token in the CSRF cookie, hashed
// with a secret, and the same token in a POST body. It owns the key ring whose first secret
// hashes new tokens and whose every secret verifies a cookie's hash, so rotating the secret
// does not invalidate the tokens browsers hold.
type csrf struct {
	keys *token.KeyRing
}

// csrfHash is NextAuth's sha256hex(token + secret).
func csrfHash(token, secret string) string {
	sum := sha256.Sum256([]byte(token + secret))
	return hex.EncodeToString(sum[:])
}

// init reuses the CSRF cookie's token when its hash verifies under any configured
// secret, else mints a new one and queues its cookie. A POST counts as verified only when
// the body's csrfToken equals the cookie's token.
func (c *csrf) init(a *authRequest) error {
	if raw, ok := a.jar.Get(a.cookies.CSRFToken.Name); ok {
		tok, hash, found := strings.Cut(raw, "|")
		if found && c.hashValid(tok, hash) {
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
	value := a.csrfToken + "|" + csrfHash(a.csrfToken, c.keys.Secret())
	a.setCookies = append(a.setCookies, cookie.Serialize(a.cookies.CSRFToken.Name, value, a.cookies.CSRFToken.Options))
	return nil
}

// hashValid reports whether hash is tok's under any configured secret.
func (c *csrf) hashValid(tok, hash string) bool {
	valid := 0
	for _, s := range c.keys.Secrets() {
		valid |= subtle.ConstantTimeCompare([]byte(hash), []byte(csrfHash(tok, s)))
	}
	return valid == 1
}
