package token

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

const (
	testSecret = "test-secret"
	// headerB64 is base64url of {"alg":"dir","enc":"A256GCM"}, NextAuth's exact protected header.
	headerB64 = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0"
	// vectorJWE is the deterministic test vector of docs/wire.md §6.6 (IV 000102…0b).
	vectorJWE       = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAECAwQFBgcICQoL.mWGZN0spOpy6aDUMnrVTzbGlwbB4SW9DgQN94Z5mWyUtj4tZBd1vyTj3W1UVSp7iFYw02pNUYyD4C72rG7G_sTaocgNIIO17Az6JQXdgwtLHmMnPG59SZ1nxDlAszktm8Fm0bwjs5KLPx1CK4sB5IPoTEz44fskwfVk3zAgbGCxV6vbN.-5DjiMuuEgYFQQX2kyLZig"
	vectorPlaintext = `{"name":"Jane","email":"jane@example.com","sub":"42","iat":1700000000,"exp":4102444800,"jti":"00000000-0000-4000-8000-000000000000"}`
	vectorIV        = "000102030405060708090a0b"
)

// fixedClock returns a clock stuck at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustRing(t testing.TB, secrets []string, salt string, opts ...Option) *KeyRing {
	t.Helper()
	k, err := NewKeyRing(secrets, salt, opts...)
	if err != nil {
		t.Fatalf("NewKeyRing(%q, %q): %v", secrets, salt, err)
	}
	return k
}

// seal encrypts an arbitrary plaintext with go-jose under the key NextAuth derives from
// secret, so tests can build tokens whose payload Encode would never produce.
func seal(t testing.TB, secret string, enc jose.ContentEncryption, plaintext string) string {
	t.Helper()
	key, err := DeriveKey(secret, "")
	if err != nil {
		t.Fatal(err)
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: jose.DIRECT, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt([]byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDeriveKeyVectors(t *testing.T) {
	tests := []struct {
		salt string
		want string
	}{
		{"", "233a0d9c3e93817c2a383a4235b78cc7820ed294cbf0a88d52650b90af59115a"},
		{"next-auth.state", "d159a71800bdcfed3aec5c353efc3f7caaa757b0d08d59647078425d00f3728a"},
	}
	for _, tt := range tests {
		got, err := DeriveKey(testSecret, tt.salt)
		if err != nil {
			t.Fatalf("DeriveKey(salt %q): %v", tt.salt, err)
		}
		if hex.EncodeToString(got) != tt.want {
			t.Errorf("DeriveKey(salt %q) = %x, want %s", tt.salt, got, tt.want)
		}
	}
	if _, err := DeriveKey("", ""); err == nil {
		t.Error("DeriveKey with empty secret: got nil error, want an error")
	}
}

func TestParseSecrets(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"one", []string{"one"}},
		{"new,old", []string{"new", "old"}},
		{" new , ,old ,", []string{"new", "old"}},
		{",,", nil},
	}
	for _, tt := range tests {
		if got := ParseSecrets(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSecrets(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewKeyRingRejectsMissingSecrets(t *testing.T) {
	for _, secrets := range [][]string{nil, {}, {""}, {"ok", ""}} {
		if _, err := NewKeyRing(secrets, ""); err == nil {
			t.Errorf("NewKeyRing(%q): got nil error, want an error", secrets)
		}
	}
}

func TestDecodeSpecVector(t *testing.T) {
	k := mustRing(t, []string{testSecret}, "")
	got, err := k.Decode(vectorJWE)
	if err != nil {
		t.Fatalf("Decode(spec vector): %v", err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(vectorPlaintext), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(spec vector) = %v, want %v", got, want)
	}
}

// go-jose draws the IV from a private crypto/rand reader, so it cannot reproduce the vector's
// fixed IV. This test rebuilds the vector from its definition with the standard library's
// AES-GCM, which pins the derived key, the header bytes and the AAD rule independently of go-jose.
func TestSpecVectorFromDefinition(t *testing.T) {
	key, err := DeriveKey(testSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	iv, _ := hex.DecodeString(vectorIV)
	sealed := gcm.Seal(nil, iv, []byte(vectorPlaintext), []byte(headerB64))
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	b64 := base64.RawURLEncoding.EncodeToString
	got := headerB64 + ".." + b64(iv) + "." + b64(ct) + "." + b64(tag)
	if got != vectorJWE {
		t.Errorf("vector rebuilt from definition:\n got %s\nwant %s", got, vectorJWE)
	}
}

func TestEncodeWireShape(t *testing.T) {
	k := mustRing(t, []string{testSecret}, "")
	tok, err := k.Encode(map[string]any{"name": "Jane"}, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 5 {
		t.Fatalf("Encode: got %d segments, want 5 (%s)", len(parts), tok)
	}
	if parts[0] != headerB64 {
		t.Errorf("Encode header = %s, want %s", parts[0], headerB64)
	}
	if parts[1] != "" {
		t.Errorf("Encode encrypted key = %q, want empty (dir)", parts[1])
	}
	for _, seg := range []struct {
		name  string
		value string
		size  int
	}{{"iv", parts[2], 12}, {"tag", parts[4], 16}} {
		raw, err := base64.RawURLEncoding.DecodeString(seg.value)
		if err != nil || len(raw) != seg.size {
			t.Errorf("Encode %s: got %d bytes (err %v), want %d", seg.name, len(raw), err, seg.size)
		}
	}
	// An independent decryption with the standard library proves the AAD is the header text.
	key, _ := DeriveKey(testSecret, "")
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	iv, _ := base64.RawURLEncoding.DecodeString(parts[2])
	ct, _ := base64.RawURLEncoding.DecodeString(parts[3])
	tag, _ := base64.RawURLEncoding.DecodeString(parts[4])
	pt, err := gcm.Open(nil, iv, append(ct, tag...), []byte(parts[0]))
	if err != nil {
		t.Fatalf("standard AES-GCM open of Encode output: %v", err)
	}
	if !bytes.Contains(pt, []byte(`"name":"Jane"`)) {
		t.Errorf("plaintext %s lacks the name claim", pt)
	}
}

func TestDecodeNextAuthSample(t *testing.T) {
	raw, err := os.ReadFile("testdata/nextauth-session-token.txt")
	if err != nil {
		t.Fatal(err)
	}
	// Pin the clock one minute after the token's iat (2026-11-29T08:43:04Z), so this test
	// does not start failing when the 30-day token expires.
	issued := time.Unix(1795941784, 0)
	k := mustRing(t, []string{"nextauth-ref-secret-please-change-0123456789abcdef"}, "", WithClock(fixedClock(issued.Add(time.Minute))))
	got, err := k.Decode(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("Decode(NextAuth sample): %v", err)
	}
	want := map[string]any{
		"name":  "Jatin",
		"email": "jatin@example.com",
		"sub":   "65a1f0c2e4b0a1b2c3d4e5f6",
		"id":    "65a1f0c2e4b0a1b2c3d4e5f6",
		"role":  "admin",
		"iat":   float64(1795941784),
		"exp":   float64(1795941784 + 30*24*3600),
		"jti":   "df3d5980-8267-4a12-bad1-641d6f091415",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(NextAuth sample) = %v, want %v", got, want)
	}

	wrong := mustRing(t, []string{"some-other-secret"}, "", WithClock(fixedClock(issued)))
	if _, err := wrong.Decode(string(raw)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Decode(sample) with wrong secret: got %v, want ErrDecrypt", err)
	}
}

// alter returns tok with segment i replaced by f applied to its decoded bytes.
func alter(t *testing.T, tok string, i int, f func([]byte) []byte) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	parts[i] = base64.RawURLEncoding.EncodeToString(f(append([]byte(nil), raw...)))
	return strings.Join(parts, ".")
}

func flipFirst(b []byte) []byte { b[0] ^= 0x01; return b }

func TestDecodeRejects(t *testing.T) {
	k := mustRing(t, []string{testSecret}, "")
	good, err := k.Encode(map[string]any{"sub": "42"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherHeader := func(h string) func([]byte) []byte { return func([]byte) []byte { return []byte(h) } }
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrEmpty},
		{"garbage", "garbage", ErrMalformed},
		{"three segments (JWS shape)", "a.b.c", ErrMalformed},
		{"bad base64 in iv", strings.Replace(good, "..", "..*", 1), ErrMalformed},
		{"flipped iv", alter(t, good, 2, flipFirst), ErrDecrypt},
		{"flipped ciphertext", alter(t, good, 3, flipFirst), ErrDecrypt},
		{"flipped tag", alter(t, good, 4, flipFirst), ErrDecrypt},
		{"short iv", alter(t, good, 2, func(b []byte) []byte { return b[:8] }), ErrDecrypt},
		{"header with extra member (changes AAD)", alter(t, good, 0, otherHeader(`{"alg":"dir","enc":"A256GCM","kid":"x"}`)), ErrDecrypt},
		{"header not JSON", alter(t, good, 0, flipFirst), ErrMalformed},
		{"enc A128CBC-HS256", seal(t, testSecret, jose.A128CBC_HS256, `{"exp":4102444800}`), ErrMalformed},
		{"enc A128GCM", alter(t, good, 0, otherHeader(`{"alg":"dir","enc":"A128GCM"}`)), ErrMalformed},
		{"alg A256KW", alter(t, good, 0, otherHeader(`{"alg":"A256KW","enc":"A256GCM"}`)), ErrMalformed},
		{"alg none", alter(t, good, 0, otherHeader(`{"alg":"none","enc":"A256GCM"}`)), ErrMalformed},
		{"wrong secret", seal(t, "not-the-secret", jose.A256GCM, `{"exp":4102444800}`), ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Decode(tt.tok)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode: got error %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("Decode returned claims %v alongside error", got)
			}
		})
	}
}

func TestDecodeClaimRules(t *testing.T) {
	const now = 1800000000
	k := mustRing(t, []string{testSecret}, "", WithClock(fixedClock(time.Unix(now, 900_000_000))))
	tests := []struct {
		name    string
		payload string
		want    error // nil: decodes
	}{
		{"exp in the future", `{"exp":1800003600}`, nil},
		{"exp equals now", `{"exp":1800000000}`, nil},
		{"exp 10 s past (inside tolerance)", `{"exp":1799999990}`, nil},
		{"exp 14 s past", `{"exp":1799999986}`, nil},
		{"exp exactly 15 s past", `{"exp":1799999985}`, ErrExpired},
		{"exp 20 s past", `{"exp":1799999980}`, ErrExpired},
		{"exp fractional just inside", `{"exp":1799999985.5}`, nil},
		{"exp missing", `{"sub":"42"}`, ErrInvalidClaims},
		{"exp string", `{"exp":"1800003600"}`, ErrInvalidClaims},
		{"exp null", `{"exp":null}`, ErrInvalidClaims},
		{"nbf 15 s ahead (inside tolerance)", `{"exp":1800003600,"nbf":1800000015}`, nil},
		{"nbf 16 s ahead", `{"exp":1800003600,"nbf":1800000016}`, ErrNotYetValid},
		{"nbf string", `{"exp":1800003600,"nbf":"0"}`, ErrInvalidClaims},
		{"iat number", `{"exp":1800003600,"iat":1800000000}`, nil},
		{"iat in the future is not checked", `{"exp":1800003600,"iat":1900000000}`, nil},
		{"iat string", `{"exp":1800003600,"iat":"now"}`, ErrInvalidClaims},
		{"iat bool", `{"exp":1800003600,"iat":true}`, ErrInvalidClaims},
		{"payload array", `[1,2]`, ErrInvalidClaims},
		{"payload null", `null`, ErrInvalidClaims},
		{"payload string", `"x"`, ErrInvalidClaims},
		{"payload number", `42`, ErrInvalidClaims},
		{"payload not JSON", `not json`, ErrInvalidClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Decode(seal(t, testSecret, jose.A256GCM, tt.payload))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Decode(%s): got error %v, want success", tt.payload, err)
				}
				var want map[string]any
				_ = json.Unmarshal([]byte(tt.payload), &want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Decode(%s) = %v, want %v", tt.payload, got, want)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Decode(%s): got error %v, want %v", tt.payload, err, tt.want)
			}
		})
	}
}

func TestEncodeSetsTimesAndKeepsInput(t *testing.T) {
	now := time.Unix(1800000000, 700_000_000)
	k := mustRing(t, []string{testSecret}, "", WithClock(fixedClock(now)))
	in := map[string]any{
		"name":   "Jane",
		"iat":    "old",
		"exp":    1,
		"jti":    "old-jti",
		"nested": map[string]any{"a": []any{1, "b"}},
	}
	snapshot, _ := json.Marshal(in)
	tok, err := k.Encode(in, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(in)
	if !bytes.Equal(snapshot, after) || len(in) != 5 {
		t.Errorf("Encode modified its input: before %s, after %s", snapshot, after)
	}
	got, err := k.Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got["iat"] != float64(1800000000) {
		t.Errorf("iat = %v, want 1800000000 (now, whole seconds)", got["iat"])
	}
	if got["exp"] != float64(1800000000+2592000) {
		t.Errorf("exp = %v, want %d", got["exp"], 1800000000+2592000)
	}
	if got["name"] != "Jane" || !reflect.DeepEqual(got["nested"], map[string]any{"a": []any{float64(1), "b"}}) {
		t.Errorf("custom claims not preserved: got %v", got)
	}
	jti, _ := got["jti"].(string)
	id, err := uuid.Parse(jti)
	if err != nil || id.Version() != 4 || id.Variant() != uuid.RFC4122 || jti != strings.ToLower(jti) || len(jti) != 36 {
		t.Errorf("jti = %q (err %v), want a lowercase canonical UUID v4", jti, err)
	}

	again, err := k.Encode(in, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got2, _ := k.Decode(again)
	if again == tok || got2["jti"] == got["jti"] {
		t.Errorf("two encodes gave the same token or jti (%v)", got["jti"])
	}
}

func TestEncodeNilClaims(t *testing.T) {
	k := mustRing(t, []string{testSecret}, "")
	tok, err := k.Encode(nil, time.Minute)
	if err != nil {
		t.Fatalf("Encode(nil): %v", err)
	}
	got, err := k.Decode(tok)
	if err != nil || len(got) != 3 {
		t.Errorf("Decode(Encode(nil)) = %v, %v; want exactly iat, exp, jti", got, err)
	}
}

func TestEncodeUnmarshalableClaim(t *testing.T) {
	k := mustRing(t, []string{testSecret}, "")
	if _, err := k.Encode(map[string]any{"f": func() {}}, time.Minute); err == nil {
		t.Error("Encode with a func claim: got nil error, want a marshal error")
	}
}

func TestRotation(t *testing.T) {
	old := mustRing(t, []string{"old"}, "")
	rotated := mustRing(t, []string{"new", "old"}, "")
	fresh := mustRing(t, []string{"new"}, "")

	oldTok, err := old.Encode(map[string]any{"sub": "1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Decode(oldTok); err != nil || got["sub"] != "1" {
		t.Errorf("ring [new old] decoding an old-secret token: got %v, %v; want sub 1", got, err)
	}
	newTok, err := rotated.Encode(map[string]any{"sub": "2"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Decode(newTok); err != nil {
		t.Errorf("ring [new] decoding a rotated-ring token: %v (the first secret must encrypt)", err)
	}
	if _, err := old.Decode(newTok); !errors.Is(err, ErrDecrypt) {
		t.Errorf("ring [old] decoding a rotated-ring token: got %v, want ErrDecrypt", err)
	}
	if rotated.Secret() != "new" || !reflect.DeepEqual(rotated.Secrets(), []string{"new", "old"}) {
		t.Errorf("Secret() = %q, Secrets() = %q; want new, [new old]", rotated.Secret(), rotated.Secrets())
	}
	s := rotated.Secrets()
	s[0] = "changed"
	if rotated.Secret() != "new" {
		t.Error("modifying the slice from Secrets() changed the ring")
	}
}

func TestSaltSeparatesKeys(t *testing.T) {
	state := mustRing(t, []string{testSecret}, "next-auth.state")
	session := mustRing(t, []string{testSecret}, "")
	tok, err := state.Encode(map[string]any{"value": "abc", "provider": "github"}, 900*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := state.Decode(tok); err != nil || got["value"] != "abc" {
		t.Errorf("state ring round trip: got %v, %v", got, err)
	}
	if _, err := session.Decode(tok); !errors.Is(err, ErrDecrypt) {
		t.Errorf("session ring decoding a state-salted token: got %v, want ErrDecrypt", err)
	}
}

func TestConcurrentEncodeDecode(t *testing.T) {
	k := mustRing(t, []string{"new", "old"}, "")
	old := mustRing(t, []string{"old"}, "")
	oldTok, err := old.Encode(map[string]any{"sub": "old"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tok, err := k.Encode(map[string]any{"g": g, "i": i}, time.Hour)
				if err != nil {
					errs <- err
					return
				}
				got, err := k.Decode(tok)
				if err != nil || got["g"] != float64(g) || got["i"] != float64(i) {
					errs <- errors.New("round trip mismatch under concurrency")
					return
				}
				if _, err := k.Decode(oldTok); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func benchClaims() map[string]any {
	return map[string]any{
		"name":  "Jatin",
		"email": "jatin@example.com",
		"sub":   "65a1f0c2e4b0a1b2c3d4e5f6",
		"id":    "65a1f0c2e4b0a1b2c3d4e5f6",
		"role":  "admin",
	}
}

func BenchmarkEncode(b *testing.B) {
	k := mustRing(b, []string{testSecret}, "")
	claims := benchClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Encode(claims, 30*24*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	k := mustRing(b, []string{testSecret}, "")
	tok, err := k.Encode(benchClaims(), 30*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Decode(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRotated measures the cost of a token made with the second secret of a ring.
func BenchmarkDecodeRotated(b *testing.B) {
	k := mustRing(b, []string{"new", testSecret}, "")
	tok, err := mustRing(b, []string{testSecret}, "").Encode(benchClaims(), 30*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Decode(tok); err != nil {
			b.Fatal(err)
		}
	}
}
