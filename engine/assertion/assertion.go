// Package assertion signs the short-lived ES256 JWT that tells an app behind the gateway who
// the user is, and keeps the key ring that signs it: keys persisted in the data directory,
// rotated so that the next key is published in the JWKS before it signs and the old one stays
// published until every token it signed has expired.
//
// It never reads sessions or HTTP requests beyond serving the JWKS, never exposes a private
// key, and never writes a key file readable by anyone but the gateway's user (mode 0600).
package assertion

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// KeysDir is the directory, inside the data directory, that holds the signing keys.
const KeysDir = "assertion-keys"

// signsFromHeader is the PEM header recording when a key starts (or started) to sign.
const signsFromHeader = "Signs-From"

// clockSkew is added to a retired key's lifetime so an app whose clock runs a little behind
// can still verify the last tokens the key signed.
const clockSkew = time.Minute

// Options configure a key ring.
type Options struct {
	// Dir is the data directory; keys live in Dir/assertion-keys.
	Dir string
	// Issuer is the iss claim: the gateway's public URL.
	Issuer string
	// TTL is every token's lifetime.
	TTL time.Duration
	// RotateEvery is how long one key signs.
	RotateEvery time.Duration
	// PublishAhead is how long the next key is published before it signs.
	PublishAhead time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Keys is the assertion key ring. Safe for concurrent use.
type Keys struct {
	o   Options
	dir string
	mu  sync.Mutex // serialises Rotate
	// state is replaced whole by Rotate; Sign and the JWKS read it without locking.
	state atomic.Pointer[ringState]
}

type key struct {
	id        string
	private   *ecdsa.PrivateKey
	signsFrom time.Time
}

type ringState struct {
	keys    []key // by signsFrom, oldest first
	signing key
	jwks    []byte
}

// Open loads the keys from o.Dir, creating the first one when there is none, and rotates
// once so the ring is right for the current time.
func Open(o Options) (*Keys, error) {
	if o.TTL <= 0 || o.RotateEvery <= 0 || o.PublishAhead < 0 || o.PublishAhead >= o.RotateEvery {
		return nil, fmt.Errorf("open assertion keys: want TTL > 0 and 0 <= PublishAhead < RotateEvery")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	k := &Keys{o: o, dir: filepath.Join(o.Dir, KeysDir)}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return nil, fmt.Errorf("open assertion keys: %w", err)
	}
	keys, err := k.load()
	if err != nil {
		return nil, err
	}
	k.state.Store(&ringState{keys: keys})
	if err := k.Rotate(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keys) load() ([]key, error) {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("read assertion keys: %w", err)
	}
	var keys []key
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		path := filepath.Join(k.dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read assertion key: %w", err)
		}
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("assertion key %s: not a PEM private key", path)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("assertion key %s: %w", path, err)
		}
		priv, ok := parsed.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("assertion key %s: not a P-256 key", path)
		}
		from, err := time.Parse(time.RFC3339, block.Headers[signsFromHeader])
		if err != nil {
			return nil, fmt.Errorf("assertion key %s: header %s: %w", path, signsFromHeader, err)
		}
		keys = append(keys, key{id: strings.TrimSuffix(e.Name(), ".pem"), private: priv, signsFrom: from})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].signsFrom.Before(keys[j].signsFrom) })
	return keys, nil
}

// Rotate brings the ring up to date with the clock: it creates the first key, publishes the
// next key PublishAhead before the current one has signed for RotateEvery, and deletes a
// retired key once the last token it can have signed has expired. Run calls it periodically.
func (k *Keys) Rotate() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.o.Now()
	keys := append([]key(nil), k.state.Load().keys...)
	if len(keys) == 0 {
		// First start: nobody can have cached a JWKS yet, so the key may sign at once.
		first, err := k.create(now)
		if err != nil {
			return err
		}
		keys = append(keys, first)
	}
	active := activeIndex(keys, now)
	if active == len(keys)-1 && !now.Before(keys[active].signsFrom.Add(k.o.RotateEvery-k.o.PublishAhead)) {
		from := keys[active].signsFrom.Add(k.o.RotateEvery)
		if earliest := now.Add(k.o.PublishAhead); from.Before(earliest) {
			from = earliest
		}
		next, err := k.create(from)
		if err != nil {
			return err
		}
		keys = append(keys, next)
		k.o.Logger.Info("published the next assertion signing key", "kid", next.id, "signs_from", from.UTC().Format(time.RFC3339))
	}
	// Key i stopped signing when key i+1 started; it stays published for TTL after that.
	kept := keys[:0:0]
	for i, ky := range keys {
		if i < active && !now.Before(keys[i+1].signsFrom.Add(k.o.TTL+clockSkew)) {
			if err := os.Remove(filepath.Join(k.dir, ky.id+".pem")); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("delete retired assertion key: %w", err)
			}
			k.o.Logger.Info("deleted a retired assertion signing key", "kid", ky.id)
			continue
		}
		kept = append(kept, ky)
	}
	jwks, err := jwksOf(kept)
	if err != nil {
		return err
	}
	k.state.Store(&ringState{keys: kept, signing: kept[activeIndex(kept, now)], jwks: jwks})
	return nil
}

// activeIndex is the newest key whose signing time has come (the oldest when none has).
func activeIndex(keys []key, now time.Time) int {
	active := 0
	for i, ky := range keys {
		if !ky.signsFrom.After(now) {
			active = i
		}
	}
	return active
}

// create generates a P-256 key that signs from the given time and writes it, mode 0600,
// through a temporary file so a crash never leaves half a key.
func (k *Keys) create(signsFrom time.Time) (key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return key{}, fmt.Errorf("generate assertion key: %w", err)
	}
	thumb, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return key{}, fmt.Errorf("assertion key thumbprint: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(thumb)[:16]
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return key{}, fmt.Errorf("encode assertion key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{
		signsFromHeader: signsFrom.UTC().Format(time.RFC3339),
	}, Bytes: der})
	tmp, err := os.CreateTemp(k.dir, ".key-*")
	if err != nil {
		return key{}, fmt.Errorf("write assertion key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return key{}, fmt.Errorf("write assertion key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return key{}, fmt.Errorf("write assertion key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return key{}, fmt.Errorf("write assertion key: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(k.dir, id+".pem")); err != nil {
		return key{}, fmt.Errorf("write assertion key: %w", err)
	}
	return key{id: id, private: priv, signsFrom: signsFrom.Truncate(time.Second)}, nil
}

func jwksOf(keys []key) ([]byte, error) {
	set := jose.JSONWebKeySet{}
	for _, ky := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &ky.private.PublicKey, KeyID: ky.id, Algorithm: "ES256", Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	return b, nil
}

// Run rotates periodically until ctx ends. Rotation failures are logged and retried.
func (k *Keys) Run(ctx context.Context) {
	every := k.o.PublishAhead / 4
	if every > time.Hour || every <= 0 {
		every = time.Hour
	}
	if every < time.Minute {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Rotate(); err != nil {
				k.o.Logger.ErrorContext(ctx, "rotate assertion keys", "error", err.Error())
			}
		}
	}
}

// TTL is every token's lifetime.
func (k *Keys) TTL() time.Duration { return k.o.TTL }

// Sign returns an ES256 JWT of claims plus iss, iat and exp (now + TTL, or notAfter when
// that is sooner and not zero), with the signing key's id in the header, and its expiry.
// claims is not modified.
func (k *Keys) Sign(claims map[string]any, notAfter time.Time) (string, time.Time, error) {
	st := k.state.Load()
	now := k.o.Now()
	exp := now.Add(k.o.TTL)
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
	}
	mc := make(jwt.MapClaims, len(claims)+3)
	for name, v := range claims {
		mc[name] = v
	}
	mc["iss"] = k.o.Issuer
	mc["iat"] = now.Unix()
	mc["exp"] = exp.Unix()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, mc)
	t.Header["kid"] = st.signing.id
	s, err := t.SignedString(st.signing.private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign assertion: %w", err)
	}
	return s, time.Unix(exp.Unix(), 0), nil
}

// JWKS returns the public keys as a JWK Set: the signing key, the next key when published,
// and retired keys whose tokens may still be valid.
func (k *Keys) JWKS() []byte { return k.state.Load().jwks }

// ServeHTTP serves the JWKS (GET /.well-known/jwks.json). Apps cache it for a short while:
// the next key is published PublishAhead before it signs.
func (k *Keys) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(k.JWKS())
}
