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
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callgate/callgate/engine/jwk"
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
	// serveJWKS answers the JWKS requests, cacheable for five minutes.
	serveJWKS http.Handler
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
	k.serveJWKS = jwk.ServeSet(k.JWKS, 300)
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
		kf, err := jwk.Read(path)
		if err != nil {
			return nil, fmt.Errorf("assertion key: %w", err)
		}
		priv, ok := kf.Private.(*ecdsa.PrivateKey)
		if !ok || kf.Alg != jwk.ES256 {
			return nil, fmt.Errorf("assertion key %s: not a P-256 key", path)
		}
		from, err := time.Parse(time.RFC3339, kf.Headers[signsFromHeader])
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
	kf, err := jwk.Generate(jwk.ES256)
	if err != nil {
		return key{}, fmt.Errorf("assertion key: %w", err)
	}
	kf.Headers = map[string]string{signsFromHeader: signsFrom.UTC().Format(time.RFC3339)}
	if err := jwk.Write(filepath.Join(k.dir, kf.ID+".pem"), kf); err != nil {
		return key{}, fmt.Errorf("assertion key: %w", err)
	}
	return key{id: kf.ID, private: kf.Private.(*ecdsa.PrivateKey), signsFrom: signsFrom.Truncate(time.Second)}, nil
}

func jwksOf(keys []key) ([]byte, error) {
	set := make([]jwk.Key, 0, len(keys))
	for _, ky := range keys {
		set = append(set, jwk.Key{ID: ky.id, Alg: jwk.ES256, Private: ky.private})
	}
	return jwk.Set(set)
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
// The payload keeps the claims' order, iss, iat and exp set last; claims is not modified.
func (k *Keys) Sign(claims *Claims, notAfter time.Time) (string, time.Time, error) {
	st := k.state.Load()
	now := k.o.Now()
	exp := now.Add(k.o.TTL)
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
	}
	c := claims.clone(3)
	if err := c.Set("iss", k.o.Issuer); err != nil {
		return "", time.Time{}, err
	}
	c.setRaw("iat", strconv.AppendInt(nil, now.Unix(), 10))
	c.setRaw("exp", strconv.AppendInt(nil, exp.Unix(), 10))
	t := jwt.NewWithClaims(jwt.SigningMethodES256, signedClaims{c})
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
	k.serveJWKS.ServeHTTP(w, r)
}
