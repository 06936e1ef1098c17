package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
)

const dbStrategyScripts = `import Credentials from "callgate/providers/credentials";
import { users } from "callgate/store";
export default {
  session: { strategy: "database", maxAge: 3600, updateAge: 600 },
  providers: [Credentials({
    credentials: { username: {}, password: {} },
    async authorize(c) {
      const u = await users.findOne({ username: c.username });
      if (!u || c.password !== "pw") return null;
      return { id: u._id, name: u.name, email: u.email };
    },
  })],
  callbacks: {
    async session({ session, user, newSession, trigger }) {
      session.user.role = user.role;
      session.keys = Object.keys(arguments[0]).sort().join(",");
      session.hasPassword = "password" in user;
      return session;
    },
  },
  events: { async signOut(msg) { console.log("signOut event", JSON.stringify(Object.keys(msg.session).sort())); } },
};
`

// clock is a settable time for tests that move past updateAge and maxAge.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func dbGateway(t *testing.T, scripts string, sec guard.Options, now func() time.Time) (*gateway, *bolt.Store) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateUser(context.Background(), store.User{ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", Name: "Jatin", Email: "jatin@example.com", Role: "admin",
		PasswordHash: "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe."}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if scripts != "" {
		if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(scripts), 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		// The shipped reference app (jwt strategy, bcrypt against the store).
		if dir, err = filepath.Abs(filepath.Join("..", "scripts")); err != nil {
			t.Fatal(err)
		}
	}
	return startGateway(t, gatewayConfig{fixture: dir, users: st, store: st, security: sec, now: now}), st
}

func sessionBody(t *testing.T, r reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("session body %q: %v", r.body, err)
	}
	return m
}

func TestDatabaseStrategy(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	gw, st := dbGateway(t, dbStrategyScripts, guard.Options{}, clk.Now)
	b := gw.browser(t)
	if r := b.signIn("credentials", "jatin", "pw"); r.status != http.StatusOK {
		t.Fatalf("sign in: got %d %s, want 200", r.status, r.body)
	}
	tok := b.get("next-auth.session-token")
	if len(tok) != 64 || strings.Contains(tok, ".") {
		t.Fatalf("session cookie: got %q, want a 64-hex opaque token, not a JWT", tok)
	}
	sess, u, err := st.GetSessionAndUser(context.Background(), store.SessionID(tok))
	if err != nil || u.Username != "jatin" {
		t.Fatalf("stored session under the token's hash: got %+v %v", sess, err)
	}
	if _, _, err := st.GetSessionAndUser(context.Background(), tok); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session stored under the raw token: got %v, want ErrNotFound", err)
	}
	firstExpiry := sess.Expires

	tests := []struct {
		name        string
		advance     time.Duration
		wantExpires time.Time // the stored expiry shown in the body
		wantStored  time.Time // the stored expiry after the read
	}{
		{"fresh read", time.Minute, firstExpiry, firstExpiry},
		{"after updateAge the store is extended, the body shows the old expiry", 10 * time.Minute, firstExpiry, clk.now.Add(11 * time.Minute).Add(time.Hour)},
	}
	for _, tt := range tests {
		clk.add(tt.advance)
		r := b.getPage("/api/auth/session")
		body := sessionBody(t, r)
		if got := body["expires"]; got != tt.wantExpires.UTC().Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("%s: body expires: got %v, want %v", tt.name, got, tt.wantExpires)
		}
		user, _ := body["user"].(map[string]any)
		if user["name"] != "Jatin" || user["role"] != "admin" || body["keys"] != "newSession,session,user" || body["hasPassword"] != false {
			t.Errorf("%s: body: got %v, want Jatin with role admin, session({session, user, newSession}), no password", tt.name, body)
		}
		stored, _, _ := st.GetSessionAndUser(context.Background(), store.SessionID(tok))
		if !stored.Expires.Equal(tt.wantStored) {
			t.Errorf("%s: stored expiry: got %v, want %v", tt.name, stored.Expires, tt.wantStored)
		}
		if !strings.Contains(strings.Join(r.setCookies, "\n"), "next-auth.session-token="+tok) {
			t.Errorf("%s: cookie not re-sent with a fresh expiry: %v", tt.name, r.setCookies)
		}
	}

	// Expired: the record is deleted, the cookie cleared, the body {}.
	clk.add(2 * time.Hour)
	if r := b.getPage("/api/auth/session"); r.body != "{}" {
		t.Errorf("expired session: got %s, want {}", r.body)
	}
	if _, _, err := st.GetSessionAndUser(context.Background(), store.SessionID(tok)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session record: got %v, want deleted", err)
	}

	// Sign-out deletes the record and runs events.signOut({session}).
	b2 := gw.browser(t)
	b2.signIn("credentials", "jatin", "pw")
	tok2 := b2.get("next-auth.session-token")
	r := b2.postForm("/api/auth/signout", map[string][]string{"csrfToken": {b2.csrf()}, "json": {"true"}})
	if r.status != http.StatusOK {
		t.Fatalf("sign out: got %d %s", r.status, r.body)
	}
	if _, _, err := st.GetSessionAndUser(context.Background(), store.SessionID(tok2)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after sign-out: got %v, want deleted", err)
	}
	if logs := gw.logs.String(); !strings.Contains(logs, `signOut event [\"expires\",\"sessionToken\",\"userId\"]`) && !strings.Contains(logs, `["expires","sessionToken","userId"]`) {
		t.Errorf("events.signOut({session}) not run with the deleted session; log:\n%s", logs)
	}
}

func TestJWTRevocationInProcess(t *testing.T) {
	gw, st := dbGateway(t, "", guard.Options{}, nil)
	b := gw.browser(t)
	if r := b.signIn("credentials", "jatin", "secret"); r.status != http.StatusOK {
		t.Fatalf("sign in: got %d %s", r.status, r.body)
	}
	if r := b.getPage("/api/auth/session"); !strings.Contains(r.body, "Jatin") {
		t.Fatalf("session before the revocation: got %s", r.body)
	}
	if err := st.Revoke(context.Background(), store.Revocation{UserID: "65a1f0c2e4b0a1b2c3d4e5f6", Before: time.Now(), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r := b.getPage("/api/auth/session"); r.body != "{}" {
		t.Errorf("session right after the revocation: got %s, want {}", r.body)
	}
}

func TestSignInLimit(t *testing.T) {
	gw, _ := dbGateway(t, "", guard.Options{MaxFailuresPerUsername: 2, FailureWindow: time.Minute}, nil)
	b := gw.browser(t)
	tests := []struct {
		password   string
		wantStatus int
	}{
		{"wrong", http.StatusUnauthorized},
		{"wrong", http.StatusUnauthorized},
		{"secret", http.StatusTooManyRequests},
	}
	for i, tt := range tests {
		r := b.signIn("credentials", "jatin", tt.password)
		if r.status != tt.wantStatus {
			t.Fatalf("attempt %d: got %d %s, want %d", i+1, r.status, r.body, tt.wantStatus)
		}
		if tt.wantStatus == http.StatusTooManyRequests {
			if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
				t.Errorf("Retry-After: got %q, want seconds", ra)
			}
			if !strings.Contains(r.body, `/api/auth/error?error=TooManyRequests"`) {
				t.Errorf("429 body: got %s, want {url} with error=TooManyRequests", r.body)
			}
		}
	}
}
