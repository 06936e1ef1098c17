package jwk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestWriteRead: a key of each algorithm survives its file whole (type, id, headers), and the
// file is the gateway user's only.
func TestWriteRead(t *testing.T) {
	for _, alg := range []string{RS256, ES256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			k, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			k.Headers = map[string]string{"Signs-From": "2026-01-01T00:00:00Z"}
			path := filepath.Join(t.TempDir(), "k.pem")
			if err := Write(path, k); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(path)
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, %v; want mode 0600", info, err)
			}
			got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != k.ID || got.Alg != alg || got.Headers["Signs-From"] != "2026-01-01T00:00:00Z" {
				t.Errorf("read back %s %s %v, want %s %s and the header", got.ID, got.Alg, got.Headers, k.ID, alg)
			}
			if len(got.ID) != 16 {
				t.Errorf("id %q, want 16 characters", got.ID)
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
				t.Errorf("directory holds %d files, want only the key (no temporary file left)", len(entries))
			}
		})
	}
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadRefuses: only PKCS #8 keys of the three supported kinds, of a safe size, are keys.
func TestReadRefuses(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, _ := x509.MarshalPKCS8PrivateKey(small)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(p256)
	notPEM := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"not PEM", notPEM, "not a PKCS #8 PEM private key"},
		{"SEC 1 EC key", writePEM(t, "EC PRIVATE KEY", sec1), "not a PKCS #8 PEM private key"},
		{"garbage DER", writePEM(t, "PRIVATE KEY", []byte{1, 2, 3}), "k.pem"},
		{"RSA 1024", writePEM(t, "PRIVATE KEY", smallDER), "want at least 2048"},
		{"P-384", writePEM(t, "PRIVATE KEY", p384DER), "want P-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Read(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read of a missing file: got %v, want os.ErrNotExist", err)
	}
	if _, err := Generate("HS256"); err == nil {
		t.Errorf("Generate(HS256): got no error; HMAC keys are secrets, not key files")
	}
}

// TestReadOrCreate: the first call makes the key (and its directory), later calls read it.
func TestReadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "k.pem")
	first, err := ReadOrCreate(path, ES256)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ReadOrCreate(path, ES256)
	if err != nil || again.ID != first.ID {
		t.Fatalf("second ReadOrCreate: %s, %v; want the same key %s", again.ID, err, first.ID)
	}
	if info, err := os.Stat(filepath.Dir(path)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("key directory: %v, %v; want mode 0700", info, err)
	}
}

// TestReadOrCreateRace: gateways starting together on one data directory all end up with
// the same key, whichever generated first; none overwrites another's.
func TestReadOrCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	const n = 8
	ids := make(chan string, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			k, err := ReadOrCreate(path, EdDSA)
			errs <- err
			ids <- k.ID
		}()
	}
	first := ""
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		id := <-ids
		if first == "" {
			first = id
		}
		if id != first {
			t.Fatalf("ReadOrCreate gave keys %s and %s: one start overwrote another's key", first, id)
		}
	}
	if k, err := Read(path); err != nil || k.ID != first {
		t.Fatalf("the file holds %s (%v), want %s", k.ID, err, first)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the key", len(entries))
	}
}

// TestSetAndServe: the JWK Set has each key's public half with kid, alg and use, and nothing
// private; it is served, cacheable, to GET and HEAD only.
func TestSetAndServe(t *testing.T) {
	var keys []Key
	for _, alg := range []string{RS256, ES256, EdDSA} {
		k, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	set, err := Set(keys)
	if err != nil {
		t.Fatal(err)
	}
	var parsed jose.JSONWebKeySet
	if err := json.Unmarshal(set, &parsed); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		got := parsed.Keys[i]
		if got.KeyID != k.ID || got.Algorithm != k.Alg || got.Use != "sig" || !got.IsPublic() {
			t.Errorf("key %d: kid %s alg %s use %s public %v; want %s %s sig public", i, got.KeyID, got.Algorithm, got.Use, got.IsPublic(), k.ID, k.Alg)
		}
	}
	var raw struct{ Keys []map[string]any }
	if err := json.Unmarshal(set, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("the set publishes the private parameter %q", private)
			}
		}
	}

	srv := httptest.NewServer(ServeSet(func() []byte { return set }, 300))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != string(set) || res.Header.Get("Cache-Control") != "public, max-age=300" || res.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Errorf("GET: %d %q %q", res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("Content-Type"))
	}
	res, err = http.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q; want 405 with Allow: GET, HEAD", res.StatusCode, res.Header.Get("Allow"))
	}
}
