package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callgate/callgate/engine/jwk"
)

// HS256 is the symmetric algorithm of the jws format: HMAC-SHA256 keyed with the secret.
const HS256 = "HS256"

// minHMACSecret is the shortest secret HS256 signs with: RFC 7518 §3.2 wants a key at least
// as long as the hash.
const minHMACSecret = 32

// SignedOptions configure a Signed codec.
type SignedOptions struct {
	// Alg is HS256, RS256, ES256 or EdDSA.
	Alg string
	// Secrets key HS256, used as they are (the bytes of AUTH_SECRET, as jsonwebtoken and
	// jose take them): the first signs, every one verifies. Each is at least 32 bytes.
	Secrets []string
	// Keys are the asymmetric keys: the first signs and must be of Alg's type; every one
	// verifies, the token's kid choosing which, with the algorithm of its own type only.
	Keys []jwk.Key
}

// verifier is one key a token may be verified with, and the one algorithm it allows.
type verifier struct {
	alg string
	key any // []byte for HS256, the public key otherwise
}

// Signed is the jws codec: a JWT signed with golang-jwt, whose payload is the claims as
// EncodeJSON was given them plus iat, exp and jti. Immutable and safe for concurrent use.
type Signed struct {
	method  jwt.SigningMethod
	signKey any    // []byte or the private key
	kid     string // "" for HS256: every secret is tried
	// secrets are the HS256 keys, the signing one first.
	secrets []jwt.VerificationKey
	// byKID are the asymmetric keys.
	byKID map[string]verifier
	// parser allows exactly the algorithms of the ring's keys; the keyfunc then holds each
	// key to its own. Built once: a golang-jwt Parser is not modified by parsing.
	parser *jwt.Parser
	jwks   []byte
	now    func() time.Time
}

// NewSigned builds the codec; keys and secrets are checked here, once.
func NewSigned(o SignedOptions, opts ...Option) (*Signed, error) {
	oo := applyOptions(opts)
	s := &Signed{now: oo.now}
	var algs []string
	switch o.Alg {
	case HS256:
		if len(o.Secrets) == 0 {
			return nil, errors.New("new signed codec: HS256 needs at least one secret")
		}
		if len(o.Keys) > 0 {
			return nil, errors.New("new signed codec: HS256 signs with the secret; key files are for RS256, ES256 and EdDSA")
		}
		for i, sec := range o.Secrets {
			if len(sec) < minHMACSecret {
				return nil, fmt.Errorf("new signed codec: secret %d is %d bytes; HS256 needs at least %d", i, len(sec), minHMACSecret)
			}
			s.secrets = append(s.secrets, []byte(sec))
		}
		s.method, s.signKey = jwt.SigningMethodHS256, []byte(o.Secrets[0])
		algs = []string{HS256}
	case jwk.RS256, jwk.ES256, jwk.EdDSA:
		if len(o.Keys) == 0 {
			return nil, fmt.Errorf("new signed codec: %s needs at least one key", o.Alg)
		}
		if o.Keys[0].Alg != o.Alg {
			return nil, fmt.Errorf("new signed codec: the signing key %s is a %s key, want %s", o.Keys[0].ID, o.Keys[0].Alg, o.Alg)
		}
		s.byKID = make(map[string]verifier, len(o.Keys))
		for _, k := range o.Keys {
			if _, dup := s.byKID[k.ID]; dup {
				return nil, fmt.Errorf("new signed codec: key %s is listed twice", k.ID)
			}
			s.byKID[k.ID] = verifier{alg: k.Alg, key: k.Public()}
			if !slices.Contains(algs, k.Alg) {
				algs = append(algs, k.Alg)
			}
		}
		s.method, s.signKey, s.kid = jwt.GetSigningMethod(o.Alg), o.Keys[0].Private, o.Keys[0].ID
		jwks, err := jwk.Set(o.Keys)
		if err != nil {
			return nil, fmt.Errorf("new signed codec: %w", err)
		}
		s.jwks = jwks
	default:
		return nil, fmt.Errorf("new signed codec: unsupported algorithm %q (want HS256, RS256, ES256 or EdDSA)", o.Alg)
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithTimeFunc(s.now),
		jwt.WithLeeway(clockTolerance*time.Second),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	return s, nil
}

// Format implements Codec: FormatJWS.
func (s *Signed) Format() string { return FormatJWS }

// Alg is the algorithm new tokens are signed with.
func (s *Signed) Alg() string { return s.method.Alg() }

// JWKS is the JWK Set of the public keys (every key of the ring, the signing one first), or
// nil for HS256, whose key is the secret and is never published.
func (s *Signed) JWKS() []byte { return s.jwks }

// Encode implements Codec: the map's JSON, keys sorted, through EncodeJSON.
func (s *Signed) Encode(claims map[string]any, maxAge time.Duration) (string, error) {
	return encodeMap(s, claims, maxAge)
}

// EncodeJSON implements Codec: the claims with iat, exp and jti set as the jwe format sets
// them, signed with the first key; the header has alg, typ "JWT" and, for key files, kid.
func (s *Signed) EncodeJSON(claims []byte, maxAge time.Duration) (string, error) {
	payload, err := stamp(claims, s.now(), maxAge)
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(s.method, rawClaims(payload))
	if s.kid != "" {
		t.Header["kid"] = s.kid
	}
	tok, err := t.SignedString(s.signKey)
	if err != nil {
		return "", fmt.Errorf("encode token: sign: %w", err)
	}
	return tok, nil
}

// Decode implements Codec.
func (s *Signed) Decode(tok string) (map[string]any, error) {
	claims, _, err := s.DecodePayload(tok)
	return claims, err
}

// DecodePayload implements Codec: the size and shape are checked before parsing; golang-jwt
// then allows only the ring's algorithms, the kid's key verifies with its own algorithm only
// (HS256: each secret in turn), and exp (required), nbf and iat are checked with the codec's
// clock and NextAuth's 15 s tolerance.
func (s *Signed) DecodePayload(tok string) (map[string]any, []byte, error) {
	if err := precheck(tok, 3); err != nil {
		return nil, nil, err
	}
	var claims payloadClaims
	if _, err := s.parser.ParseWithClaims(tok, &claims, s.key); err != nil {
		return nil, nil, jwsError(err)
	}
	if claims.MapClaims == nil { // the payload was JSON null
		return nil, nil, fmt.Errorf("%w: payload is not a JSON object", ErrInvalidClaims)
	}
	return claims.MapClaims, claims.raw, nil
}

// key is the keyfunc: the verification key for the token's header, held to its algorithm.
func (s *Signed) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if s.byKID == nil {
		if alg != HS256 {
			return nil, fmt.Errorf("algorithm %s, want HS256", alg)
		}
		return jwt.VerificationKeySet{Keys: s.secrets}, nil
	}
	kid, ok := t.Header["kid"].(string)
	if !ok {
		return nil, fmt.Errorf("%w: the header has no kid", ErrUnknownKey)
	}
	v, ok := s.byKID[kid]
	if !ok {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	if v.alg != alg {
		return nil, fmt.Errorf("key %s is a %s key, the token says %s", kid, v.alg, alg)
	}
	return v.key, nil
}

// jwsError turns golang-jwt's error into this package's, keeping its text for the log.
func jwsError(err error) error {
	var kind error
	switch {
	case errors.Is(err, ErrUnknownKey):
		kind = ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenMalformed):
		kind = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		kind = ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		kind = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		kind = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		kind = ErrIssuedInFuture
	default:
		kind = ErrInvalidClaims
	}
	return fmt.Errorf("%w: %v", kind, err)
}

// rawClaims are claims already written as JSON: golang-jwt signs their text unchanged (its
// Marshal of a json.Marshaler only compacts), so the token keeps the claims' key order.
// The getters serve validation, which never sees a rawClaims: decoding uses payloadClaims.
type rawClaims []byte

func (c rawClaims) MarshalJSON() ([]byte, error)               { return c, nil }
func (rawClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (rawClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (rawClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (rawClaims) GetIssuer() (string, error)                   { return "", nil }
func (rawClaims) GetSubject() (string, error)                  { return "", nil }
func (rawClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// payloadClaims are the decoded claims (golang-jwt validates exp, nbf and iat through the
// embedded MapClaims) and the payload's JSON text, which a map loses the order of.
type payloadClaims struct {
	jwt.MapClaims
	raw []byte
}

// UnmarshalJSON keeps a copy of the text (the decoder may reuse its buffer) and its map.
func (c *payloadClaims) UnmarshalJSON(b []byte) error {
	c.raw = append([]byte(nil), b...)
	return json.Unmarshal(b, &c.MapClaims)
}
