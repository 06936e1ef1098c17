package token

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The fuzz targets of this package (test.sh runs each for a short budget; the seed corpus is
// in testdata/fuzz/<target>/ and runs with every plain `go test`):
//
//   FuzzDecode        any string: no panic, a typed error, and claims only for a token this
//                     key really sealed
//   FuzzEncodeDecode  decode(encode(claims)) == claims; a tampered copy or another secret
//                     is refused

const fuzzSecret = "fuzz-secret"

// fuzzNow is the clock of the fuzz key ring; the seed tokens were sealed at this instant.
var fuzzNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fuzzValidToken was sealed under fuzzSecret at fuzzNow with a 100-year maxAge and the
// claims {sub: "u1", name: "Jane", email: "jane@example.com", role: "admin"}. It is the one
// string FuzzDecode may see decode; every mutation of it must be refused.
const fuzzValidToken = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..Q-j1IDFsbObpMRoc.QpjtQvkpPIRCFwITia3vFEXALyZquOiDHi8C9RUnTiXzcoNgYx7dCBcRbTv544AC01Lf0r4Z87XuXkPYblVM6yIylrTx66l2zrH5IrmAnU7YfYZSfkpwOUL4oiV77JgAtZIzOaXPp1QrpD6GTzY4w9vEHeQ8B6_Rds0yPI_KwSl8Pmdgx0Q4ctZb4l7Ihrh2gou8.oNtaCV6PxnkFaG4wXU5TAQ"

// fuzzExpiredToken was sealed under fuzzSecret at fuzzNow with maxAge 0; the fuzz ring's
// clock is an hour later, so it is expired.
const fuzzExpiredToken = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..XvRxq28duJxdg1mu.eCu4vXkqdPkDtsun2MbQ1dkEDAzovB52qDqxMZP8lfS8xdiS4wKWNygxtpVg6k3K86KTBHUTdXi9KxQMSc2FiUM9BRrNRvdLtp5Q62OHIVMr7XA-MQrFWJDuhw.dX6UiMjNHzKAGGuwLg6IIg"

var decodeErrors = []error{ErrEmpty, ErrMalformed, ErrDecrypt, ErrExpired, ErrNotYetValid, ErrInvalidClaims}

func FuzzDecode(f *testing.F) {
	ring := mustRing(f, []string{fuzzSecret}, "", WithClock(fixedClock(fuzzNow.Add(time.Hour))))
	want, err := ring.Decode(fuzzValidToken)
	if err != nil {
		f.Fatalf("the valid seed token does not decode: %v", err)
	}
	if _, err := ring.Decode(fuzzExpiredToken); !errors.Is(err, ErrExpired) {
		f.Fatalf("the expired seed token: got %v, want ErrExpired", err)
	}
	for _, s := range []string{
		fuzzValidToken, fuzzExpiredToken, vectorJWE, "", ".", "....", headerB64 + "....",
		headerB64 + "..AAAA.AAAA.AAAA", "eyJhbGciOiJub25lIn0.e30.", "not a token", strings.Repeat("A", 300),
		seal(f, fuzzSecret, "A256GCM", `null`), seal(f, fuzzSecret, "A256GCM", `{"exp":"soon"}`),
		seal(f, fuzzSecret, "A256GCM", `[1,2]`), seal(f, "other-secret", "A256GCM", `{"exp":9999999999}`),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := ring.Decode(tok)
		if err != nil {
			if claims != nil {
				t.Fatalf("Decode(%q) returned claims with error %v", tok, err)
			}
			for _, sentinel := range decodeErrors {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("Decode(%q): error %v is none of the package's errors", tok, err)
		}
		// Only one token was ever sealed under this key with claims that pass the checks:
		// anything that decodes must carry exactly its claims (GCM authenticates them).
		if !reflect.DeepEqual(claims, want) {
			t.Fatalf("Decode(%q) accepted claims %v; only %v were ever sealed", tok, claims, want)
		}
	})
}

func FuzzEncodeDecode(f *testing.F) {
	f.Add("u1", "Jane", "jane@example.com", int64(42), true)
	f.Add("", "", "", int64(0), false)
	f.Add("ü\u2028\"<>&", "\x00\xff", `{"nested":1}`, int64(1)<<53+1, true)
	f.Add(strings.Repeat("x", 5000), "a b", "c", int64(-1), false)
	ring := mustRing(f, []string{fuzzSecret, "old-secret"}, "", WithClock(fixedClock(fuzzNow)))
	other := mustRing(f, []string{"another-secret"}, "", WithClock(fixedClock(fuzzNow)))
	f.Fuzz(func(t *testing.T, sub, name, email string, n int64, flag bool) {
		claims := map[string]any{
			"sub": sub, "name": name, "email": email, "n": n, "flag": flag,
			"nested": map[string]any{"list": []any{sub, n, nil}, "s": email},
		}
		tok, err := ring.Encode(claims, time.Hour)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		got, err := ring.Decode(tok)
		if err != nil {
			t.Fatalf("Decode(Encode(%v)): %v", claims, err)
		}
		// JSON is what travels: the claims come back as JSON.parse would see them.
		plain, _ := json.Marshal(claims)
		var want map[string]any
		if err := json.Unmarshal(plain, &want); err != nil {
			t.Fatal(err)
		}
		want["iat"] = float64(fuzzNow.Unix())
		want["exp"] = float64(fuzzNow.Add(time.Hour).Unix())
		id, err := uuid.Parse(got["jti"].(string))
		if err != nil || id.Version() != 4 {
			t.Fatalf("jti %v is not a UUID v4 (%v)", got["jti"], err)
		}
		want["jti"] = got["jti"]
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode(Encode(x)) = %v, want %v", got, want)
		}

		if _, err := other.Decode(tok); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("a ring with another secret: got %v, want ErrDecrypt", err)
		}
		// Change one character inside the ciphertext (not its last, whose low bits base64
		// may ignore) to another base64url character: GCM must refuse it.
		parts := strings.Split(tok, ".")
		ct := []byte(parts[3])
		i := int(uint64(n) % uint64(len(ct)-1))
		if ct[i] == 'A' {
			ct[i] = 'B'
		} else {
			ct[i] = 'A'
		}
		parts[3] = string(ct)
		if _, err := ring.Decode(strings.Join(parts, ".")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("tampered ciphertext: got %v, want ErrDecrypt", err)
		}
	})
}
