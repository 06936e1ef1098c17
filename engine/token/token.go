// Package token encodes and decodes session tokens in the exact format NextAuth v4 uses:
// a compact JWE (alg "dir", enc "A256GCM") whose 32-byte key is derived from the secret with
// HKDF-SHA256, carrying the JSON claims plus iat, exp and jti.
//
// A token produced here decodes with next-auth/jwt's decode(), and a token produced by NextAuth
// decodes here, so a gateway and a NextAuth app can share one secret and one cookie.
//
// All cryptography is go-jose's and the standard library's. This package must never implement
// JOSE or a cipher itself, never accept an algorithm other than dir + A256GCM, and never return
// claims from a token whose decryption or time checks failed.
package token

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

// keyInfo is the HKDF info string NextAuth v4 uses; a non-empty salt is appended as " (<salt>)".
const keyInfo = "NextAuth.js Generated Encryption Key"

// keyLength is the A256GCM key size in bytes.
const keyLength = 32

// clockTolerance is the leeway NextAuth passes to jose's jwtDecrypt for exp and nbf.
const clockTolerance = 15 // seconds

// Errors returned by Decode, distinguishable with errors.Is. Callers treat every one of them
// except ErrEmpty as "invalid session" (NextAuth clears the cookie); they differ for logging.
var (
	// ErrEmpty: the token is the empty string (no session, not an attack).
	ErrEmpty = errors.New("empty token")
	// ErrMalformed: not a compact JWE, or a JWE with an algorithm other than dir + A256GCM.
	ErrMalformed = errors.New("malformed token")
	// ErrDecrypt: no key in the ring decrypts it (wrong secret or tampered token).
	ErrDecrypt = errors.New("token decryption failed")
	// ErrExpired: exp is at or before now minus the 15 s tolerance.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf is after now plus the 15 s tolerance.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrInvalidClaims: the payload is not a JSON object, or exp/nbf/iat have the wrong type.
	ErrInvalidClaims = errors.New("invalid token claims")
)

// DeriveKey returns the 32-byte content-encryption key NextAuth v4 derives from secret.
// salt is empty for the session token and the cookie name for OAuth check cookies.
func DeriveKey(secret, salt string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("derive key: secret must not be empty")
	}
	info := keyInfo
	if salt != "" {
		info += " (" + salt + ")"
	}
	// An empty salt is the same as HashLen zero bytes (RFC 5869 §2.2), which is what
	// @panva/hkdf does with an empty salt too.
	key, err := hkdf.Key(sha256.New, []byte(secret), []byte(salt), info, keyLength)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return key, nil
}

// ParseSecrets splits a comma-separated secret list (as in AUTH_SECRET="new,old"):
// entries are trimmed of surrounding white space and empty entries are dropped.
func ParseSecrets(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Option configures a KeyRing.
type Option func(*KeyRing)

// WithClock replaces time.Now, so tests can pin iat/exp and the expiry checks.
func WithClock(now func() time.Time) Option {
	return func(k *KeyRing) {
		if now != nil {
			k.now = now
		}
	}
}

// KeyRing holds the keys derived from an ordered list of secrets: the first encrypts, every
// one is tried when decrypting, so a secret can be rotated without logging anyone out.
// Keys are derived once, at construction. A KeyRing is immutable and safe for concurrent use.
type KeyRing struct {
	secrets []string
	keys    [][]byte
	// encrypter is built once: go-jose's direct-key encrypter only reads its fields in
	// Encrypt (a fresh IV per call comes from crypto/rand), so sharing it is safe.
	encrypter jose.Encrypter
	now       func() time.Time
}

// NewKeyRing derives one key per secret with the given HKDF salt ("" for session tokens).
func NewKeyRing(secrets []string, salt string, opts ...Option) (*KeyRing, error) {
	if len(secrets) == 0 {
		return nil, errors.New("new key ring: at least one secret is required")
	}
	k := &KeyRing{
		secrets: append([]string(nil), secrets...),
		keys:    make([][]byte, 0, len(secrets)),
		now:     time.Now,
	}
	for i, s := range secrets {
		key, err := DeriveKey(s, salt)
		if err != nil {
			return nil, fmt.Errorf("new key ring: secret %d: %w", i, err)
		}
		k.keys = append(k.keys, key)
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: k.keys[0]}, nil)
	if err != nil {
		return nil, fmt.Errorf("new key ring: build encrypter: %w", err)
	}
	k.encrypter = enc
	for _, o := range opts {
		o(k)
	}
	return k, nil
}

// Secret returns the first (encrypting) secret. The engine also hashes CSRF tokens with it.
func (k *KeyRing) Secret() string { return k.secrets[0] }

// Secrets returns a copy of all secrets, encrypting one first.
func (k *KeyRing) Secrets() []string { return append([]string(nil), k.secrets...) }

// Encode returns a JWE holding claims plus iat = now, exp = now + maxAge and a fresh random
// jti (UUID v4), all in whole seconds. Those three overwrite any values in claims, as NextAuth
// does, so every re-encode yields a new token. The caller's map is never modified.
func (k *KeyRing) Encode(claims map[string]any, maxAge time.Duration) (string, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("encode token: generate jti: %w", err)
	}
	now := k.now().Unix()
	payload := make(map[string]any, len(claims)+3)
	for name, v := range claims {
		payload[name] = v
	}
	payload["iat"] = now
	payload["exp"] = now + int64(maxAge/time.Second)
	payload["jti"] = id.String()

	plaintext, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("encode token: marshal claims: %w", err)
	}
	obj, err := k.encrypter.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("encode token: encrypt: %w", err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("encode token: serialize: %w", err)
	}
	return tok, nil
}

var (
	allowedKeyAlgorithms     = []jose.KeyAlgorithm{jose.DIRECT}
	allowedContentEncryption = []jose.ContentEncryption{jose.A256GCM}
)

// Decode decrypts tok with each key of the ring in turn and checks its claims the way
// NextAuth's decode() (jose jwtDecrypt with a 15 s clock tolerance) does. Unknown claims are
// kept; numbers come back as float64, as JavaScript would see them.
func (k *KeyRing) Decode(tok string) (map[string]any, error) {
	if tok == "" {
		return nil, ErrEmpty
	}
	obj, err := jose.ParseEncryptedCompact(tok, allowedKeyAlgorithms, allowedContentEncryption)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var plaintext []byte
	for _, key := range k.keys {
		if plaintext, err = obj.Decrypt(key); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}

	var claims map[string]any
	if err := json.Unmarshal(plaintext, &claims); err != nil {
		return nil, fmt.Errorf("%w: payload is not a JSON object: %w", ErrInvalidClaims, err)
	}
	if claims == nil { // the payload was JSON null
		return nil, fmt.Errorf("%w: payload is not a JSON object", ErrInvalidClaims)
	}
	if err := checkTimes(claims, k.now().Unix()); err != nil {
		return nil, err
	}
	return claims, nil
}

// checkTimes applies jose's jwtDecrypt rules with NextAuth's tolerance. now is whole seconds,
// as jose floors Date.now()/1000. exp is required: NextAuth always sets it, and a token
// without one would never expire.
func checkTimes(claims map[string]any, now int64) error {
	exp, ok := claims["exp"].(float64)
	if !ok {
		return fmt.Errorf("%w: exp must be a number, got %T", ErrInvalidClaims, claims["exp"])
	}
	if exp <= float64(now-clockTolerance) {
		return fmt.Errorf("%w: exp %.0f, now %d", ErrExpired, exp, now)
	}
	if v, present := claims["nbf"]; present {
		nbf, ok := v.(float64)
		if !ok {
			return fmt.Errorf("%w: nbf must be a number, got %T", ErrInvalidClaims, v)
		}
		if nbf > float64(now+clockTolerance) {
			return fmt.Errorf("%w: nbf %.0f, now %d", ErrNotYetValid, nbf, now)
		}
	}
	if v, present := claims["iat"]; present {
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%w: iat must be a number, got %T", ErrInvalidClaims, v)
		}
	}
	return nil
}
