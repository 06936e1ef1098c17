package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The session token formats and algorithms (session.token).
const (
	TokenFormatJWE = "jwe"
	TokenFormatJWS = "jws"
	TokenAlgHS256  = "HS256"
)

// SessionConfig configures the jwt session strategy's token. The strategy itself, and the
// session and token lifetimes, are the scripts' (session.strategy, session.maxAge, jwt.maxAge
// in auth.config.js), as in NextAuth.
type SessionConfig struct {
	// Token is the session token's format and keys.
	Token SessionTokenConfig `yaml:"token"`
}

// SessionTokenConfig chooses between NextAuth's encrypted token and a signed one.
type SessionTokenConfig struct {
	// Format is "jwe" (the default: NextAuth v4's encrypted token, dir + A256GCM, key from
	// the secret) or "jws" (a signed JWT whose claims the app can read). Changing it signs
	// everyone out once: a token of the other format is no session.
	Format string `yaml:"format"`
	// Alg is the jws signing algorithm: "HS256" (the default: HMAC with the secret itself,
	// at least 32 bytes), "RS256", "ES256" or "EdDSA" (key files, public keys published at
	// /.well-known/session-jwks.json). Only with format jws.
	Alg string `yaml:"alg"`
	// Keys are PKCS #8 PEM private key files for RS256, ES256 and EdDSA, relative to the data
	// directory unless absolute: the first signs (and must be of Alg's type), every one
	// verifies; a token's kid picks the key. Default: one file,
	// session-token-<alg>.pem, generated on first start.
	Keys []string `yaml:"keys"`
}

// tokenAlgs are the jws algorithms.
var tokenAlgs = []string{TokenAlgHS256, "RS256", "ES256", "EdDSA"}

func (c *Config) applySessionDefaults() {
	t := &c.Session.Token
	if t.Format == "" {
		t.Format = TokenFormatJWE
	}
	if t.Format == TokenFormatJWS && t.Alg == "" {
		t.Alg = TokenAlgHS256
	}
}

func (c *Config) validateSession() error {
	t := c.Session.Token
	switch t.Format {
	case TokenFormatJWE:
		if t.Alg != "" || len(t.Keys) > 0 {
			return &Error{"session.token.format", "alg and keys are for the signed format: set format: jws"}
		}
		return nil
	case TokenFormatJWS:
	default:
		return &Error{"session.token.format", fmt.Sprintf("want jwe or jws, got %q", t.Format)}
	}
	known := false
	for _, a := range tokenAlgs {
		known = known || t.Alg == a
	}
	if !known {
		return &Error{"session.token.alg", fmt.Sprintf("want %s, got %q", strings.Join(tokenAlgs, ", "), t.Alg)}
	}
	if t.Alg == TokenAlgHS256 && len(t.Keys) > 0 {
		return &Error{"session.token.keys", "HS256 signs with the secret (AUTH_SECRET); key files are for RS256, ES256 and EdDSA"}
	}
	seen := map[string]bool{}
	for i, k := range t.Keys {
		if strings.TrimSpace(k) == "" {
			return &Error{fmt.Sprintf("session.token.keys[%d]", i), "must not be empty"}
		}
		if seen[k] {
			return &Error{fmt.Sprintf("session.token.keys[%d]", i), fmt.Sprintf("%q is listed twice", k)}
		}
		seen[k] = true
	}
	return nil
}

// SessionTokenKeyFiles are the paths of the jws key files, the signing one first, and whether
// they are the default (which the gateway may generate). Empty for jwe and HS256.
func (c *Config) SessionTokenKeyFiles() (paths []string, generated bool) {
	t := c.Session.Token
	if t.Format != TokenFormatJWS || t.Alg == TokenAlgHS256 {
		return nil, false
	}
	if len(t.Keys) == 0 {
		return []string{filepath.Join(c.DataDir, "session-token-"+strings.ToLower(t.Alg)+".pem")}, true
	}
	for _, k := range t.Keys {
		if !filepath.IsAbs(k) {
			k = filepath.Join(c.DataDir, k)
		}
		paths = append(paths, k)
	}
	return paths, false
}
