package engine_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/engine/jwk"
	"github.com/callgate/callgate/engine/token"
)

// benchmarkSessionRead measures GET /api/auth/session with a valid cookie — decode, the
// jwt and session callbacks when the scripts define them, re-encode — through the
// engine's handler, without the network.
func benchmarkSessionRead(b *testing.B, fixture string) {
	benchmarkSessionReadWith(b, gatewayConfig{fixture: fixture})
}

func benchmarkSessionReadWith(b *testing.B, gc gatewayConfig) {
	benchSessionReads(b, startGateway(b, gc))
}

// benchSessionReads signs in once, then reads the session with its cookie in parallel
// through the engine's handler, without the network.
func benchSessionReads(b *testing.B, gw *gateway) {
	br := gw.browser(b)
	if r := br.signIn("credentials", "jane", "pw"); r.status != 200 {
		b.Fatalf("sign in: %d %s", r.status, r.body)
	}
	cookie := br.cookieHeader()
	h := gw.eng.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/api/auth/session", nil)
			req.Header.Set("Cookie", cookie)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 || rec.Body.Len() < 10 {
				b.Fatalf("got %d %s", rec.Code, rec.Body.String())
			}
		}
	})
}

// BenchmarkSessionReadDefaultCallbacks is the Go-only path: no jwt/session callbacks.
func BenchmarkSessionReadDefaultCallbacks(b *testing.B) { benchmarkSessionRead(b, "conformance") }

// BenchmarkSessionReadJWS is BenchmarkSessionReadDefaultCallbacks with the signed session
// token (session.token.format jws), per algorithm: verify and re-sign instead of decrypt and
// re-encrypt.
func BenchmarkSessionReadJWS(b *testing.B) {
	for _, alg := range []string{token.HS256, jwk.ES256, jwk.EdDSA, jwk.RS256} {
		b.Run(alg, func(b *testing.B) {
			o := token.SignedOptions{Alg: alg, Secrets: []string{"bench-secret-bench-secret-0123456789"}}
			if alg != token.HS256 {
				k, err := jwk.Generate(alg)
				if err != nil {
					b.Fatal(err)
				}
				o = token.SignedOptions{Alg: alg, Keys: []jwk.Key{k}}
			}
			benchmarkSessionReadWith(b, gatewayConfig{fixture: "conformance", signed: &o})
		})
	}
}

// BenchmarkSessionReadWithCallbacks runs a jwt and a session callback in JS per request.
func BenchmarkSessionReadWithCallbacks(b *testing.B) {
	fixture, _ := filepath.Abs(filepath.Join("..", "testdata", "scripts", "bench"))
	benchmarkSessionRead(b, fixture)
}

// BenchmarkBcryptCompare is the floor of a credentials sign-in: one bcrypt compare at
// cost 10, the cost of the reference users.
func BenchmarkBcryptCompare(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), 10)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bcrypt.CompareHashAndPassword(hash, []byte("secret")); err != nil {
				b.Fatal(err)
			}
		}
	})
}
