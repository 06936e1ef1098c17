package assertion

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func open(t *testing.T, dir string, c *clock) *Keys {
	t.Helper()
	k, err := Open(Options{Dir: dir, Issuer: "https://auth.example.test", TTL: 5 * time.Minute,
		RotateEvery: 24 * time.Hour, PublishAhead: time.Hour, Now: c.now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return k
}

func kids(t *testing.T, k *Keys) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatalf("JWKS %s: %v", k.JWKS(), err)
	}
	var out []string
	for _, key := range set.Keys {
		if key.Algorithm != "ES256" || key.Use != "sig" || !key.IsPublic() {
			t.Errorf("JWKS key %s: got alg %q use %q public %v, want a public ES256 signing key", key.KeyID, key.Algorithm, key.Use, key.IsPublic())
		}
		out = append(out, key.KeyID)
	}
	return out
}

// verify checks tok against the JWKS as an app would and returns its kid.
func verify(t *testing.T, k *Keys, tok string, at time.Time) string {
	t.Helper()
	var set jose.JSONWebKeySet
	_ = json.Unmarshal(k.JWKS(), &set)
	parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		keys := set.Key(tk.Header["kid"].(string))
		if len(keys) == 0 {
			return nil, jwt.ErrTokenUnverifiable
		}
		return keys[0].Key, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return at }), jwt.WithIssuer("https://auth.example.test"))
	if err != nil {
		t.Fatalf("verify token against the JWKS at %v: %v", at, err)
	}
	return parsed.Header["kid"].(string)
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	k := open(t, dir, c)
	first := kids(t, k)
	if len(first) != 1 {
		t.Fatalf("fresh ring: got %d keys, want 1", len(first))
	}

	steps := []struct {
		name      string
		at        time.Duration // after t0
		wantKeys  int
		wantSigns int // index into the ring's keys, oldest first
	}{
		{"before publish time: one key", 22 * time.Hour, 1, 0},
		{"publish time: next key is published but does not sign", 23 * time.Hour, 2, 0},
		{"just before rotation the old key still signs", 24*time.Hour - time.Minute, 2, 0},
		{"rotation time: next key signs, old one still published", 24 * time.Hour, 2, 1},
		{"old key kept while its tokens may be valid", 24*time.Hour + 3*time.Minute, 2, 1},
		{"old key deleted after its last token expired", 24*time.Hour + 7*time.Minute, 1, 0},
	}
	var lastKids []string
	var beforeRotation string // signed by the old key a minute before rotation
	for _, s := range steps {
		c.set(t0.Add(s.at))
		if err := k.Rotate(); err != nil {
			t.Fatalf("%s: Rotate: %v", s.name, err)
		}
		got := kids(t, k)
		if len(got) != s.wantKeys {
			t.Fatalf("%s: got %d keys in the JWKS, want %d", s.name, len(got), s.wantKeys)
		}
		tok, _, err := k.Sign(claimsOf(t, `{"sub":"u1"}`), time.Time{})
		if err != nil {
			t.Fatalf("%s: Sign: %v", s.name, err)
		}
		if kid := verify(t, k, tok, c.now()); kid != got[s.wantSigns] {
			t.Errorf("%s: signed with %s, want %s", s.name, kid, got[s.wantSigns])
		}
		if s.at == 24*time.Hour-time.Minute {
			beforeRotation = tok
		}
		if s.at == 24*time.Hour+3*time.Minute {
			if kid := verify(t, k, beforeRotation, c.now()); kid != got[0] {
				t.Errorf("%s: the old key's last token verified with %s, want %s", s.name, kid, got[0])
			}
		}
		lastKids = got
	}
	if lastKids[0] == first[0] {
		t.Errorf("after rotation the first key %s still signs", first[0])
	}

	// Keys persist: a restart reads the same key, mode 0600.
	again := open(t, dir, c)
	if got := kids(t, again); len(got) != 1 || got[0] != lastKids[0] {
		t.Errorf("after restart: got keys %v, want %v", got, lastKids)
	}
	files, _ := filepath.Glob(filepath.Join(dir, KeysDir, "*.pem"))
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("key file %s: got mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}
}

func TestSignExpiry(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	k := open(t, t.TempDir(), c)
	tests := []struct {
		name     string
		notAfter time.Time
		want     time.Time
	}{
		{"TTL when the session lives longer", t0.Add(time.Hour), t0.Add(5 * time.Minute)},
		{"never past the session's expiry", t0.Add(time.Minute), t0.Add(time.Minute)},
		{"TTL when no bound", time.Time{}, t0.Add(5 * time.Minute)},
	}
	for _, tc := range tests {
		_, exp, err := k.Sign(claimsOf(t, `{"sub":"x","iss":"forged"}`), tc.notAfter)
		if err != nil || !exp.Equal(tc.want) {
			t.Errorf("%s: got exp %v (%v), want %v", tc.name, exp, err, tc.want)
		}
	}
}
