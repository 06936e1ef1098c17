package token

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/callgate/callgate/engine/jwk"
)

var jwsNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// jwsSecret and jwsOldSecret are HS256 secrets of the length AUTH_SECRET has when generated.
const (
	jwsSecret    = "Cr3vQ2v0dW5u9wV3x1Xq6gkS0mJ8LhPz4yNcT7aRbEo"
	jwsOldSecret = "old-secret-old-secret-old-secret-0123456789"
)

// testKeys are generated once per test binary: RSA generation is slow on a busy machine.
var testKeys = map[string][]jwk.Key{}

func keysFor(t testing.TB, alg string, n int) []jwk.Key {
	t.Helper()
	for len(testKeys[alg]) < n {
		k, err := jwk.Generate(alg)
		if err != nil {
			t.Fatalf("generate %s key: %v", alg, err)
		}
		testKeys[alg] = append(testKeys[alg], k)
	}
	return testKeys[alg][:n]
}

func mustSigned(t testing.TB, o SignedOptions, now time.Time) *Signed {
	t.Helper()
	s, err := NewSigned(o, WithClock(fixedClock(now)))
	if err != nil {
		t.Fatalf("NewSigned(%s): %v", o.Alg, err)
	}
	return s
}

// signedRing is one ring per algorithm, with the key golang-jwt must verify its tokens with.
type signedRing struct {
	alg    string
	opts   SignedOptions
	verify any // the secret or public key
}

func signedRings(t testing.TB) []signedRing {
	rings := []signedRing{{alg: HS256, opts: SignedOptions{Alg: HS256, Secrets: []string{jwsSecret}}, verify: []byte(jwsSecret)}}
	for _, alg := range []string{jwk.RS256, jwk.ES256, jwk.EdDSA} {
		k := keysFor(t, alg, 1)[0]
		rings = append(rings, signedRing{alg: alg, opts: SignedOptions{Alg: alg, Keys: []jwk.Key{k}}, verify: k.Public()})
	}
	return rings
}

// TestSignedRoundTrip: every algorithm signs a standard JWT that golang-jwt verifies on its
// own with the public key (or the secret), keeps the claims' key order, and sets iat, exp and
// jti as the jwe format does.
func TestSignedRoundTrip(t *testing.T) {
	claims := `{"name":"Jatin","sub":"65a1","role":"admin","iat":1,"nested":{"b":1,"a":2}}`
	for _, r := range signedRings(t) {
		t.Run(r.alg, func(t *testing.T) {
			s := mustSigned(t, r.opts, jwsNow)
			tok, err := s.EncodeJSON([]byte(claims), time.Hour)
			if err != nil {
				t.Fatalf("EncodeJSON: %v", err)
			}
			got, payload, err := s.DecodePayload(tok)
			if err != nil {
				t.Fatalf("DecodePayload: %v", err)
			}
			wantPrefix := `{"name":"Jatin","sub":"65a1","role":"admin","iat":` + jsonInt(jwsNow.Unix()) + `,"nested":{"b":1,"a":2},"exp":` + jsonInt(jwsNow.Add(time.Hour).Unix()) + `,"jti":"`
			if !strings.HasPrefix(string(payload), wantPrefix) {
				t.Errorf("payload %s, want it to start %s", payload, wantPrefix)
			}
			if id, err := uuid.Parse(got["jti"].(string)); err != nil || id.Version() != 4 {
				t.Errorf("jti %v is not a UUID v4 (%v)", got["jti"], err)
			}
			if got["name"] != "Jatin" || got["exp"] != float64(jwsNow.Add(time.Hour).Unix()) {
				t.Errorf("claims %v", got)
			}

			// golang-jwt alone, with only the public half: the token is an ordinary JWT.
			parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return r.verify, nil },
				jwt.WithValidMethods([]string{r.alg}), jwt.WithTimeFunc(fixedClock(jwsNow)))
			if err != nil {
				t.Fatalf("golang-jwt verify: %v", err)
			}
			if parsed.Header["typ"] != "JWT" {
				t.Errorf("header typ %v, want JWT", parsed.Header["typ"])
			}
			kid, hasKID := parsed.Header["kid"]
			if r.alg == HS256 && hasKID {
				t.Errorf("HS256 header has kid %v: the secret has no public id", kid)
			}
			if r.alg != HS256 && kid != r.opts.Keys[0].ID {
				t.Errorf("header kid %v, want %s", kid, r.opts.Keys[0].ID)
			}
			if (r.alg == HS256) != (s.JWKS() == nil) {
				t.Errorf("JWKS %s: want a set exactly for the asymmetric algorithms", s.JWKS())
			}
		})
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestSignedRotation: with the new key first and the old one after it, tokens of the old key
// still verify (no one is signed out) and new tokens are signed by the new key, which a ring
// that knows only the old one refuses.
func TestSignedRotation(t *testing.T) {
	type ring struct{ old, rotated SignedOptions }
	cases := map[string]ring{
		HS256: {
			old:     SignedOptions{Alg: HS256, Secrets: []string{jwsOldSecret}},
			rotated: SignedOptions{Alg: HS256, Secrets: []string{jwsSecret, jwsOldSecret}},
		},
	}
	for _, alg := range []string{jwk.RS256, jwk.ES256, jwk.EdDSA} {
		k := keysFor(t, alg, 2)
		cases[alg] = ring{old: SignedOptions{Alg: alg, Keys: k[1:2]}, rotated: SignedOptions{Alg: alg, Keys: []jwk.Key{k[0], k[1]}}}
	}
	// A move to another algorithm: the old RSA key keeps verifying what it signed.
	cases["RS256 to ES256"] = ring{
		old:     SignedOptions{Alg: jwk.RS256, Keys: keysFor(t, jwk.RS256, 1)},
		rotated: SignedOptions{Alg: jwk.ES256, Keys: []jwk.Key{keysFor(t, jwk.ES256, 1)[0], keysFor(t, jwk.RS256, 1)[0]}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			old, rotated := mustSigned(t, c.old, jwsNow), mustSigned(t, c.rotated, jwsNow)
			oldTok, err := old.Encode(map[string]any{"sub": "u1"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := rotated.Decode(oldTok); err != nil || got["sub"] != "u1" {
				t.Fatalf("rotated ring, token of the old key: got %v, %v; want it accepted", got, err)
			}
			newTok, err := rotated.Encode(map[string]any{"sub": "u1"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := old.Decode(newTok); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("old ring, token of the new key: got %v, want ErrSignature or ErrUnknownKey", err)
			}
		})
	}
}

// forge signs claims with golang-jwt as an attacker would, with any method, key and header.
func forge(t *testing.T, m jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		tk.Header[k] = v
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatalf("forge %s: %v", m.Alg(), err)
	}
	return s
}

// TestSignedRejects: every token that is not one the ring signed, or is out of its time, is
// refused with the error that says why, and no claims.
func TestSignedRejects(t *testing.T) {
	rsaKey, esKey := keysFor(t, jwk.RS256, 1)[0], keysFor(t, jwk.ES256, 1)[0]
	otherRSA := keysFor(t, jwk.RS256, 2)[1]
	hs := mustSigned(t, SignedOptions{Alg: HS256, Secrets: []string{jwsSecret}}, jwsNow)
	rs := mustSigned(t, SignedOptions{Alg: jwk.RS256, Keys: []jwk.Key{rsaKey, esKey}}, jwsNow)
	valid := jwt.MapClaims{"sub": "u1", "iat": jwsNow.Unix(), "exp": jwsNow.Add(time.Hour).Unix()}
	with := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range valid {
			c[k] = v
		}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	hsTok := func(c jwt.MapClaims) string { return forge(t, jwt.SigningMethodHS256, []byte(jwsSecret), nil, c) }
	rsTok := func(c jwt.MapClaims) string {
		return forge(t, jwt.SigningMethodRS256, rsaKey.Private, map[string]any{"kid": rsaKey.ID}, c)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(rsaKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	good := hsTok(valid)
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	jweTok, err := mustRing(t, []string{jwsSecret}, "").Encode(map[string]any{"sub": "u1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	tests := []struct {
		name string
		ring *Signed
		tok  string
		want error
	}{
		{"empty", hs, "", ErrEmpty},
		{"oversized", hs, parts[0] + "." + strings.Repeat("A", MaxTokenBytes) + "." + parts[2], ErrTooLarge},
		{"a JWE", hs, jweTok, ErrWrongFormat},
		{"two parts", hs, parts[0] + "." + parts[1], ErrMalformed},
		{"header not base64", hs, "!!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"tampered payload", hs, parts[0] + "." + b64([]byte(`{"sub":"admin","exp":9999999999}`)) + "." + parts[2], ErrSignature},
		{"tampered signature", hs, parts[0] + "." + parts[1] + "." + flip(parts[2], 3), ErrSignature},
		{"signature dropped", hs, parts[0] + "." + parts[1] + ".", ErrSignature},
		{"alg none", hs, forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, valid), ErrSignature},
		{"alg none, asymmetric ring", rs, forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": rsaKey.ID}, valid), ErrSignature},
		{"HS256 header over an RS256 signature", hs, b64([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + strings.SplitN(rsTok(valid), ".", 2)[1], ErrSignature},
		{"wrong secret", hs, forge(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), nil, valid), ErrSignature},
		// Key confusion: the RSA public key (which anyone can fetch from the JWKS) as an HMAC secret.
		{"HS256 keyed with the RSA public key PEM", rs, forge(t, jwt.SigningMethodHS256, pubPEM, map[string]any{"kid": rsaKey.ID}, valid), ErrSignature},
		{"HS256 keyed with the RSA public key DER", rs, forge(t, jwt.SigningMethodHS256, pubDER, map[string]any{"kid": rsaKey.ID}, valid), ErrSignature},
		// A key is used with its own algorithm only, even when the ring allows the other.
		{"RS256 token naming the ES256 key", rs, forge(t, jwt.SigningMethodRS256, rsaKey.Private, map[string]any{"kid": esKey.ID}, valid), ErrSignature},
		{"unknown kid", rs, forge(t, jwt.SigningMethodRS256, otherRSA.Private, map[string]any{"kid": otherRSA.ID}, valid), ErrUnknownKey},
		{"no kid", rs, forge(t, jwt.SigningMethodRS256, rsaKey.Private, nil, valid), ErrUnknownKey},
		{"another key under a known kid", rs, forge(t, jwt.SigningMethodRS256, otherRSA.Private, map[string]any{"kid": rsaKey.ID}, valid), ErrSignature},
		{"expired past the tolerance", hs, hsTok(with(jwt.MapClaims{"exp": jwsNow.Add(-16 * time.Second).Unix()})), ErrExpired},
		{"expired, RS256", rs, rsTok(with(jwt.MapClaims{"exp": jwsNow.Add(-time.Hour).Unix()})), ErrExpired},
		{"no exp", hs, hsTok(with(jwt.MapClaims{"exp": nil})), ErrInvalidClaims},
		{"exp a string", hs, hsTok(with(jwt.MapClaims{"exp": "tomorrow"})), ErrInvalidClaims},
		{"issued in the future", hs, hsTok(with(jwt.MapClaims{"iat": jwsNow.Add(time.Minute).Unix()})), ErrIssuedInFuture},
		{"not yet valid", hs, hsTok(with(jwt.MapClaims{"nbf": jwsNow.Add(time.Minute).Unix()})), ErrNotYetValid},
		{"payload null", hs, forgeRaw(t, `null`), ErrInvalidClaims},
		{"payload an array", hs, forgeRaw(t, `[1,2]`), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, payload, err := tt.ring.DecodePayload(tt.tok)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodePayload: got %v, want %v", err, tt.want)
			}
			if claims != nil || payload != nil {
				t.Fatalf("DecodePayload returned claims %v with error %v", claims, err)
			}
		})
	}
	// Within the tolerance is still valid, as NextAuth's 15 s.
	if _, err := hs.Decode(hsTok(with(jwt.MapClaims{"exp": jwsNow.Add(-10 * time.Second).Unix(), "iat": jwsNow.Add(10 * time.Second).Unix()}))); err != nil {
		t.Errorf("exp 10 s ago and iat 10 s ahead: got %v, want accepted", err)
	}
}

// forgeRaw signs an arbitrary payload text with the HS256 test secret.
func forgeRaw(t *testing.T, payload string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, rawClaims(payload)).SignedString([]byte(jwsSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSignedRingOnlyExpires: the codec's own clock decides expiry, so a token it signed is
// refused once that clock passes exp plus the tolerance, whatever the wall clock says.
func TestSignedRingOnlyExpires(t *testing.T) {
	opts := SignedOptions{Alg: jwk.ES256, Keys: keysFor(t, jwk.ES256, 1)}
	tok, err := mustSigned(t, opts, jwsNow).Encode(map[string]any{"sub": "u1"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustSigned(t, opts, jwsNow.Add(time.Minute+14*time.Second)).Decode(tok); err != nil {
		t.Errorf("14 s after exp: got %v, want accepted", err)
	}
	if _, err := mustSigned(t, opts, jwsNow.Add(time.Minute+15*time.Second)).Decode(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("15 s after exp: got %v, want ErrExpired", err)
	}
}

func TestNewSignedRefuses(t *testing.T) {
	es, rs := keysFor(t, jwk.ES256, 1)[0], keysFor(t, jwk.RS256, 1)[0]
	tests := []struct {
		name string
		o    SignedOptions
		want string
	}{
		{"no algorithm", SignedOptions{Secrets: []string{jwsSecret}}, "unsupported algorithm"},
		{"none", SignedOptions{Alg: "none", Secrets: []string{jwsSecret}}, "unsupported algorithm"},
		{"HS512", SignedOptions{Alg: "HS512", Secrets: []string{jwsSecret}}, "unsupported algorithm"},
		{"HS256 without a secret", SignedOptions{Alg: HS256}, "at least one secret"},
		{"HS256 with a short secret", SignedOptions{Alg: HS256, Secrets: []string{jwsSecret, "short"}}, "secret 1 is 5 bytes"},
		{"HS256 with key files", SignedOptions{Alg: HS256, Secrets: []string{jwsSecret}, Keys: []jwk.Key{es}}, "key files are for"},
		{"ES256 without keys", SignedOptions{Alg: jwk.ES256}, "at least one key"},
		{"signing key of another type", SignedOptions{Alg: jwk.ES256, Keys: []jwk.Key{rs, es}}, "is a RS256 key, want ES256"},
		{"a key listed twice", SignedOptions{Alg: jwk.ES256, Keys: []jwk.Key{es, es}}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSigned(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSigned: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestHeader: the header of either format, for display; nothing that is not one.
func TestHeader(t *testing.T) {
	jws, err := mustSigned(t, SignedOptions{Alg: HS256, Secrets: []string{jwsSecret}}, jwsNow).Encode(nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	jwe, err := mustRing(t, []string{jwsSecret}, "").Encode(nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		tok, want string
	}{{jws, `{"alg":"HS256","typ":"JWT"}`}, {jwe, `{"alg":"dir","enc":"A256GCM"}`}} {
		if got, err := Header(tt.tok); err != nil || string(got) != tt.want {
			t.Errorf("Header: got %s, %v; want %s", got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "!!!.x.y", base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".x.y", strings.Repeat("A", MaxTokenBytes+1)} {
		if _, err := Header(bad); err == nil {
			t.Errorf("Header(%.20q): got no error", bad)
		}
	}
}

// FuzzSignedDecode: whatever the input, Decode returns one of the package's errors and no
// claims, or exactly the claims of the one token the ring signed.
func FuzzSignedDecode(f *testing.F) {
	s := mustSigned(f, SignedOptions{Alg: HS256, Secrets: []string{jwsSecret}}, jwsNow)
	// Fixed claims, so that every fuzzing process makes the same token (HMAC is
	// deterministic): the only one anything may decode to.
	payload := fmt.Sprintf(`{"sub":"u1","iat":%d,"exp":%d,"jti":"00000000-0000-4000-8000-000000000000"}`, jwsNow.Unix(), jwsNow.Add(time.Hour).Unix())
	valid, err := jwt.NewWithClaims(jwt.SigningMethodHS256, rawClaims(payload)).SignedString([]byte(jwsSecret))
	if err != nil {
		f.Fatal(err)
	}
	want, err := s.Decode(valid)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{valid, "", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.", strings.Repeat(".", 5)} {
		f.Add(seed)
	}
	errs := append([]error{ErrTooLarge, ErrWrongFormat, ErrSignature, ErrUnknownKey, ErrIssuedInFuture}, decodeErrors...)
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := s.Decode(tok)
		if err != nil {
			if claims != nil {
				t.Fatalf("Decode(%q) returned claims with error %v", tok, err)
			}
			for _, e := range errs {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("Decode(%q): error %v is none of the package's errors", tok, err)
		}
		if !reflect.DeepEqual(claims, want) {
			t.Fatalf("Decode(%q) accepted claims %v; only %v were ever signed", tok, claims, want)
		}
	})
}
