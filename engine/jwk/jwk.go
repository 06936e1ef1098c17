// Package jwk keeps the gateway's asymmetric signing keys the way both of their users need
// them: as PKCS #8 PEM files in the data directory (read, generated, written mode 0600 through
// a temporary file so a crash never leaves half a key), named by their RFC 7638 thumbprint,
// and published as a JWK Set of their public halves.
//
// The assertion key ring (engine/assertion) and the signed session token (engine/token) share
// it, so a key file means the same thing to both. It never writes a key readable by anyone but
// the gateway's user and never puts a private key in a JWK Set.
package jwk

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"
)

// The JWS algorithms a key file can hold a key for, by key type: RSA (2048 bits or more),
// P-256 and Ed25519.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// rsaBits is the size of a generated RSA key; shorter keys are refused on read.
const rsaBits = 2048

// Key is a private signing key read from or written to a file.
type Key struct {
	// ID is the key's RFC 7638 thumbprint (SHA-256, base64url), shortened to 16 characters:
	// the kid of every token it signs.
	ID string
	// Alg is the one JWS algorithm the key signs and verifies with, from its type.
	Alg string
	// Private is the key itself: *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey.
	Private crypto.Signer
	// Headers are the PEM headers of its file (the assertion keys record when they sign).
	Headers map[string]string
}

// Public returns the public half of the key.
func (k Key) Public() crypto.PublicKey { return k.Private.Public() }

// Generate makes a new key for alg (RS256, ES256 or EdDSA).
func Generate(alg string) (Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, fmt.Errorf("generate key: unsupported algorithm %q (want RS256, ES256 or EdDSA)", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return newKey(priv, nil)
}

// newKey checks the key's type and computes its id.
func newKey(priv crypto.Signer, headers map[string]string) (Key, error) {
	alg, err := algOf(priv)
	if err != nil {
		return Key{}, err
	}
	id, err := ID(priv.Public())
	if err != nil {
		return Key{}, err
	}
	return Key{ID: id, Alg: alg, Private: priv, Headers: headers}, nil
}

// algOf is the one algorithm a key may be used with: a key never serves two algorithms.
func algOf(priv crypto.Signer) (string, error) {
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if p.N.BitLen() < rsaBits {
			return "", fmt.Errorf("RSA key of %d bits: want at least %d", p.N.BitLen(), rsaBits)
		}
		return RS256, nil
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on %s: want P-256 (ES256)", p.Curve.Params().Name)
		}
		return ES256, nil
	case ed25519.PrivateKey:
		return EdDSA, nil
	default:
		return "", fmt.Errorf("unsupported key type %T (want RSA, P-256 or Ed25519)", priv)
	}
}

// ID is the key id of a public key: its RFC 7638 thumbprint, base64url, first 16 characters.
func ID(pub crypto.PublicKey) (string, error) {
	thumb, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(thumb)[:16], nil
}

// Read loads a PKCS #8 "PRIVATE KEY" PEM file.
func Read(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return Key{}, fmt.Errorf("key %s: not a PKCS #8 PEM private key (BEGIN PRIVATE KEY)", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", path, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return Key{}, fmt.Errorf("key %s: %T cannot sign", path, parsed)
	}
	k, err := newKey(priv, block.Headers)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", path, err)
	}
	return k, nil
}

// Write stores k at path, mode 0600, with its headers, through a temporary file in the same
// directory renamed into place, so a reader sees the whole key or none.
func Write(path string, k Key) error {
	return write(path, k, os.Rename)
}

// write puts k in a temporary file beside path and moves it there with place.
func write(path string, k Key, place func(tmp, path string) error) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: k.Headers, Bytes: der})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := place(tmp.Name(), path); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

// ReadOrCreate reads the key at path, or, when there is no file there, generates one for alg
// and writes it (creating the directory, mode 0700). The new file is linked into place only
// if there still is none, so two gateways starting at once on a shared data directory end
// up with the one key that got there first.
func ReadOrCreate(path, alg string) (Key, error) {
	k, err := Read(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if k, err = Generate(alg); err != nil {
		return Key{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, fmt.Errorf("create key directory: %w", err)
	}
	err = write(path, k, os.Link)
	if errors.Is(err, os.ErrExist) {
		return Read(path)
	}
	if err != nil {
		return Key{}, err
	}
	return k, nil
}

// Set returns the JWK Set of the keys' public halves, each with its kid, alg and use "sig".
func Set(keys []Key) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	return b, nil
}

// ServeSet answers GET and HEAD with the JWK Set set returns, cacheable for maxAgeSeconds, and
// 405 to every other method. set is called per request, so a rotating ring can swap it.
func ServeSet(set func() []byte, maxAgeSeconds int) http.Handler {
	cacheControl := fmt.Sprintf("public, max-age=%d", maxAgeSeconds)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", cacheControl)
		_, _ = w.Write(set())
	})
}
