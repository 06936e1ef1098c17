// Package token encodes and decodes session tokens behind one Codec, in two formats:
//
//   - jwe (the default, KeyRing): the exact format NextAuth v4 uses, a compact JWE (alg "dir",
//     enc "A256GCM") whose 32-byte key is derived from the secret with HKDF-SHA256. A token
//     produced here decodes with next-auth/jwt's decode(), and a token produced by NextAuth
//     decodes here, so a gateway and a NextAuth app can share one secret and one cookie.
//   - jws (Signed): a signed JWT (HS256 with the secret, or RS256 / ES256 / EdDSA with key
//     files), for apps that read the claims themselves.
//
// Both carry the JSON claims plus iat, exp and jti, set as NextAuth sets them, and both take a
// list of keys: the first encrypts or signs, every one decrypts or verifies, so keys rotate
// without logging anyone out.
//
// All cryptography is go-jose's, golang-jwt's and the standard library's. This package must
// never implement JOSE or a cipher itself, never accept an algorithm a key was not made for
// (no "none", no RSA public key as an HMAC secret), and never return claims from a token whose
// decryption, signature or time checks failed.
package token

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// keyInfo is the HKDF info string NextAuth v4 uses; a non-empty salt is appended as " (<salt>)".
const keyInfo = "NextAuth.js Generated Encryption Key"

// keyLength is the A256GCM key size in bytes.
const keyLength = 32

// clockTolerance is the leeway NextAuth passes to jose's jwtDecrypt for exp and nbf.
const clockTolerance = 15 // seconds

// MaxTokenBytes bounds a token before any parsing: a session cookie holds at most 16 chunks
// of 3933 characters (engine/cookie), so nothing longer is a token the gateway wrote.
const MaxTokenBytes = 64 << 10

// The formats a Codec speaks.
const (
	FormatJWE = "jwe"
	FormatJWS = "jws"
)

// Codec encodes and decodes session tokens in one format. KeyRing (jwe) and Signed (jws) are
// the two; both are immutable and safe for concurrent use.
type Codec interface {
	// Format is FormatJWE or FormatJWS.
	Format() string
	// Encode returns a token of claims plus iat = now, exp = now + maxAge and a fresh jti.
	Encode(claims map[string]any, maxAge time.Duration) (string, error)
	// EncodeJSON is Encode for claims that are the text of a JSON object, whose key order
	// the token keeps.
	EncodeJSON(claims []byte, maxAge time.Duration) (string, error)
	// Decode checks tok and returns its claims; numbers are float64, as JavaScript sees them.
	Decode(tok string) (map[string]any, error)
	// DecodePayload is Decode that also returns the claims' JSON text as the token holds it.
	DecodePayload(tok string) (claims map[string]any, payload []byte, err error)
}

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
	// ErrTooLarge: longer than MaxTokenBytes; refused unread.
	ErrTooLarge = errors.New("token too large")
	// ErrWrongFormat (an ErrMalformed too): a JWE given to the jws codec or a JWS to the jwe one (the format was
	// changed since the token was issued, or the token is another system's).
	ErrWrongFormat = errors.New("token in the wrong format")
	// ErrSignature: the signature does not verify with any key of the ring, or its algorithm
	// is not the one the key was made for ("none" included).
	ErrSignature = errors.New("token signature invalid")
	// ErrUnknownKey: the header's kid names no key of the ring.
	ErrUnknownKey = errors.New("token signed by an unknown key")
	// ErrIssuedInFuture: iat is after now plus the 15 s tolerance.
	ErrIssuedInFuture = errors.New("token issued in the future")
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

// Option configures a codec.
type Option func(*options)

type options struct {
	now func() time.Time
}

func applyOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithClock replaces time.Now, so tests can pin iat/exp and the expiry checks.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
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
		now:     applyOptions(opts).now,
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
	return k, nil
}

// Format implements Codec: FormatJWE.
func (k *KeyRing) Format() string { return FormatJWE }

// Secret returns the first (encrypting) secret. The engine also hashes CSRF tokens with it.
func (k *KeyRing) Secret() string { return k.secrets[0] }

// Secrets returns a copy of all secrets, encrypting one first.
func (k *KeyRing) Secrets() []string { return append([]string(nil), k.secrets...) }

// Encode returns a JWE holding claims plus iat = now, exp = now + maxAge and a fresh random
// jti (UUID v4), all in whole seconds. Those three overwrite any values in claims, as NextAuth
// does, so every re-encode yields a new token. The caller's map is never modified. A map has
// no key order: the payload's keys are sorted. EncodeJSON keeps a script's order.
func (k *KeyRing) Encode(claims map[string]any, maxAge time.Duration) (string, error) {
	return encodeMap(k, claims, maxAge)
}

// encodeMap is Encode for any codec: the map's JSON, keys sorted, through EncodeJSON.
func encodeMap(c Codec, claims map[string]any, maxAge time.Duration) (string, error) {
	if claims == nil {
		claims = map[string]any{}
	}
	text, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode token: marshal claims: %w", err)
	}
	return c.EncodeJSON(text, maxAge)
}

// EncodeJSON is Encode for claims that are already the text of a JSON object (the jwt
// callback's result as JSON.stringify wrote it): iat, exp and jti are set the way jose's
// EncryptJWT sets them on NextAuth's token, in place when the claims have them, appended
// when not, so the payload keeps the claims' key order byte for byte.
func (k *KeyRing) EncodeJSON(claims []byte, maxAge time.Duration) (string, error) {
	plaintext, err := stamp(claims, k.now(), maxAge)
	if err != nil {
		return "", err
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

// stamp returns a copy of claims, which must be the text of a JSON object, with iat = now,
// exp = now + maxAge (whole seconds) and a fresh random jti (UUID v4), set the way jose's
// EncryptJWT sets them on NextAuth's token: in place when the claims have them, appended when
// not, so the payload keeps the claims' key order byte for byte.
func stamp(claims []byte, at time.Time, maxAge time.Duration) ([]byte, error) {
	claims = bytes.TrimSpace(claims)
	if len(claims) < 2 || claims[0] != '{' || !gjson.ValidBytes(claims) {
		return nil, fmt.Errorf("encode token: claims are not a JSON object")
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return nil, fmt.Errorf("encode token: generate jti: %w", err)
	}
	now := at.Unix()
	// A copy: sjson may write in place, and the caller's claims are often reused.
	out := make([]byte, len(claims), len(claims)+64)
	copy(out, claims)
	for _, c := range [...]struct {
		name string
		val  any
	}{{"iat", now}, {"exp", now + int64(maxAge/time.Second)}, {"jti", id.String()}} {
		if out, err = sjson.SetBytes(out, c.name, c.val); err != nil {
			return nil, fmt.Errorf("encode token: set %s: %w", c.name, err)
		}
	}
	return out, nil
}

// segments counts the parts of a compact serialization: 5 for a JWE, 3 for a JWS.
func segments(tok string) int { return strings.Count(tok, ".") + 1 }

// precheck refuses, before any parsing, the empty token, one longer than MaxTokenBytes and
// one of the other format (want is the number of segments of the codec's own).
func precheck(tok string, want int) error {
	switch {
	case tok == "":
		return ErrEmpty
	case len(tok) > MaxTokenBytes:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(tok), MaxTokenBytes)
	}
	switch n := segments(tok); {
	case n == want:
		return nil
	case n == 5:
		return fmt.Errorf("%w: %w: a JWE (encrypted token), and session.token.format is jws", ErrMalformed, ErrWrongFormat)
	case n == 3:
		return fmt.Errorf("%w: %w: a JWS (signed token), and session.token.format is jwe", ErrMalformed, ErrWrongFormat)
	default:
		return fmt.Errorf("%w: %d dot-separated parts, want %d", ErrMalformed, n, want)
	}
}

// Header returns the protected header of a compact JWE or JWS as JSON text, unverified: for
// showing what a token claims to be (gateway token decode), never for trusting it.
func Header(tok string) (json.RawMessage, error) {
	if len(tok) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(tok), MaxTokenBytes)
	}
	first, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(first)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url: %w", ErrMalformed, err)
	}
	if !gjson.ValidBytes(raw) || !gjson.ParseBytes(raw).IsObject() {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	return raw, nil
}

var (
	allowedKeyAlgorithms     = []jose.KeyAlgorithm{jose.DIRECT}
	allowedContentEncryption = []jose.ContentEncryption{jose.A256GCM}
)

// Decode decrypts tok with each key of the ring in turn and checks its claims the way
// NextAuth's decode() (jose jwtDecrypt with a 15 s clock tolerance) does. Unknown claims are
// kept; numbers come back as float64, as JavaScript would see them.
func (k *KeyRing) Decode(tok string) (map[string]any, error) {
	claims, _, err := k.DecodePayload(tok)
	return claims, err
}

// DecodePayload is Decode that also returns the payload as it was encrypted: the claims'
// JSON text, whose key order a map does not keep.
func (k *KeyRing) DecodePayload(tok string) (claims map[string]any, payload []byte, err error) {
	if err := precheck(tok, 5); err != nil {
		return nil, nil, err
	}
	obj, err := jose.ParseEncryptedCompact(tok, allowedKeyAlgorithms, allowedContentEncryption)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var plaintext []byte
	for _, key := range k.keys {
		if plaintext, err = obj.Decrypt(key); err == nil {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}

	if err := json.Unmarshal(plaintext, &claims); err != nil {
		return nil, nil, fmt.Errorf("%w: payload is not a JSON object: %w", ErrInvalidClaims, err)
	}
	if claims == nil { // the payload was JSON null
		return nil, nil, fmt.Errorf("%w: payload is not a JSON object", ErrInvalidClaims)
	}
	if err := checkTimes(claims, k.now().Unix()); err != nil {
		return nil, nil, err
	}
	return claims, plaintext, nil
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
