package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"

	"github.com/callgate/callgate/internal/testkit"
)

const strategyScripts = `import Credentials from "callgate/providers/credentials";
export default {
  session: { strategy: "STRATEGY", maxAge: 3600, updateAge: 600 },
  providers: [Credentials({ credentials: {}, async authorize() { return null; } })],
  callbacks: {
    async jwt({ token, trigger }) {
      if (token.name === "Denied") return null;
      token.seen = (token.seen || 0) + 1;
      token.trigger = trigger || "read";
      return token;
    },
    async session({ session, token, user }) {
      session.via = token ? "token:" + token.trigger : "user:" + user.username;
      return session;
    },
  },
};
`

// loadStrategy loads a generation for the strategy and returns it with its Strategy on a
// clock the test moves.
func loadStrategy(t *testing.T, strategy string, st store.Store) (*script.Generation, Strategy, *testkit.Clock) {
	t.Helper()
	return loadScripts(t, strategyScripts, strategy, st, Options{})
}

// loadScripts loads scripts (their STRATEGY replaced by strategy) and returns the generation
// with the strategy's Strategy, made with the options o (Keys, Store and Now filled in) on a
// clock the test moves.
func loadScripts(t *testing.T, scripts, strategy string, st store.Store, o Options) (*script.Generation, Strategy, *testkit.Clock) {
	t.Helper()
	dir := t.TempDir()
	src := []byte(strings.ReplaceAll(scripts, "STRATEGY", strategy))
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	gen, err := script.Load(context.Background(), script.Options{Dir: dir, Timeouts: script.Timeouts{Default: 10 * time.Second}})
	if err != nil {
		t.Fatalf("load scripts: %v", err)
	}
	t.Cleanup(gen.Close)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	keys, err := token.NewKeyRing([]string{"session-strategy-test-secret-0123456789abcdef"}, "", token.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	o.Keys, o.Store, o.Now = keys, st, clk.Now
	return gen, New(o).For(gen.Config()), clk
}

// TestJWTStrategy: Issue runs jwt with trigger "signIn" and encodes the token; Read runs jwt
// and session, renews the cookie for maxAge from the clock's now, and reports events.session;
// a null from jwt at sign-in is ErrDenied; End reports the token; a bad cookie is cleared.
func TestJWTStrategy(t *testing.T) {
	gen, strategy, clk := loadStrategy(t, "jwt", nil)
	ctx := context.Background()
	user := map[string]any{"id": "u1", "name": "Jane", "email": "jane@example.com"}
	issued, err := strategy.Issue(ctx, gen, SignIn{User: user, Account: map[string]any{}, UserID: "u1", HasID: true})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if want := clk.Now().Add(time.Hour); !issued.Expires.Equal(want) {
		t.Errorf("Issue: cookie expires %v, want %v (maxAge from now)", issued.Expires, want)
	}
	clk.Add(10 * time.Minute)
	rd, err := strategy.Read(ctx, gen, issued.Value, Update{Data: script.Undefined})
	if err != nil || !rd.Active || rd.Set == nil {
		t.Fatalf("Read: got %+v, %v, want an active session", rd, err)
	}
	if bodyOf(t, rd)["via"] != "token:read" || mapOf(t, rd.Event["token"])["seen"] != float64(2) {
		t.Errorf("Read: session %v, event %v; want session() to see jwt's token", bodyOf(t, rd), rd.Event)
	}
	if want := clk.Now().Add(time.Hour); !rd.Set.Expires.Equal(want) {
		t.Errorf("Read: renewed cookie expires %v, want %v", rd.Set.Expires, want)
	}
	if user, _ := bodyOf(t, rd)["user"].(map[string]any); user["name"] != "Jane" || bodyOf(t, rd)["expires"] != clk.Now().Add(time.Hour).UTC().Format(isoMillis) {
		t.Errorf("Read: session %v, want Jane's, expiring in an hour", bodyOf(t, rd))
	}
	if _, err := strategy.Issue(ctx, gen, SignIn{User: map[string]any{"name": "Denied"}}); !errors.Is(err, ErrDenied) {
		t.Errorf("Issue with jwt returning null: got %v, want ErrDenied", err)
	}
	if ended, err := strategy.End(ctx, issued.Value); err != nil || ended["token"].(map[string]any)["sub"] != "u1" {
		t.Errorf("End: got %v, %v, want the token", ended, err)
	}
	if rd, err := strategy.Read(ctx, gen, "garbage", Update{}); err != nil || rd.Active || !rd.Clear {
		t.Errorf("Read of a bad cookie: got %+v, %v, want Clear", rd, err)
	}
	if rd, err := strategy.Read(ctx, gen, "", Update{}); err != nil || rd.Active || rd.Clear {
		t.Errorf("Read without a cookie: got %+v, %v, want nothing at all", rd, err)
	}
}

// TestDatabaseStrategy: Issue stores a session for the store user; Read answers with the
// stored expiry and extends it in the store only once updateAge has passed on the clock;
// past maxAge the session is cleared; End deletes it; without a user id or a store, Issue
// refuses.
func TestDatabaseStrategy(t *testing.T) {
	ctx := context.Background()
	st, u := storeWithUser(t, store.User{Username: "jane", Name: "Jane"})
	gen, strategy, clk := loadStrategy(t, "database", st)
	issued, err := strategy.Issue(ctx, gen, SignIn{User: u.AdapterUser(), UserID: u.ID, HasID: true})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	first := issued.Expires
	stored := func() time.Time {
		s, _, err := st.GetSessionAndUser(ctx, store.SessionID(issued.Value))
		if err != nil {
			t.Fatalf("read the stored session: %v", err)
		}
		return s.Expires
	}
	for _, tt := range []struct {
		name       string
		advance    time.Duration
		wantStored time.Time
	}{
		{"before updateAge the store is not written", 5 * time.Minute, first},
		{"after updateAge the store is extended", 6 * time.Minute, first.Add(11 * time.Minute)},
	} {
		clk.Add(tt.advance)
		rd, err := strategy.Read(ctx, gen, issued.Value, Update{})
		if err != nil || !rd.Active {
			t.Fatalf("%s: Read got %+v, %v", tt.name, rd, err)
		}
		if bodyOf(t, rd)["via"] != "user:jane" || bodyOf(t, rd)["expires"] != first.UTC().Format(isoMillis) {
			t.Errorf("%s: session %v, want session() with the user and the stored expiry %v", tt.name, bodyOf(t, rd), first)
		}
		if got := stored(); !got.Equal(tt.wantStored) {
			t.Errorf("%s: stored expiry %v, want %v", tt.name, got, tt.wantStored)
		}
		if want := clk.Now().Add(time.Hour); !rd.Set.Expires.Equal(want) || rd.Set.Value != issued.Value {
			t.Errorf("%s: cookie %+v, want the same id expiring %v", tt.name, rd.Set, want)
		}
	}
	clk.Add(2 * time.Hour)
	if rd, err := strategy.Read(ctx, gen, issued.Value, Update{}); err != nil || rd.Active || !rd.Clear {
		t.Errorf("past maxAge: got %+v, %v, want Clear", rd, err)
	}

	again, err := strategy.Issue(ctx, gen, SignIn{User: u.AdapterUser(), UserID: u.ID, HasID: true})
	if err != nil {
		t.Fatal(err)
	}
	if ended, err := strategy.End(ctx, again.Value); err != nil || ended["session"].(map[string]any)["userId"] != u.ID {
		t.Errorf("End: got %v, %v, want the deleted session", ended, err)
	}
	if ended, err := strategy.End(ctx, again.Value); err != nil || ended != nil {
		t.Errorf("End twice: got %v, %v, want nothing to report", ended, err)
	}
	if _, err := strategy.Issue(ctx, gen, SignIn{User: map[string]any{}}); !errors.Is(err, ErrNoUserID) {
		t.Errorf("Issue without an id: got %v, want ErrNoUserID", err)
	}
	_, noStore, _ := loadStrategy(t, "database", nil)
	if _, err := noStore.Issue(ctx, gen, SignIn{UserID: u.ID, HasID: true}); !errors.Is(err, ErrNoStore) {
		t.Errorf("Issue without a store: got %v, want ErrNoStore", err)
	}
}

// storeWithUser is an embedded store in the test's directory holding one user.
func storeWithUser(t *testing.T, user store.User) (*bolt.Store, store.User) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, err := st.CreateUser(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return st, u
}

// bodyOf decodes a read's /session body.
func bodyOf(t testing.TB, rd Read) map[string]any {
	t.Helper()
	return mapOf(t, rd.Body)
}

// mapOf decodes a JSON value a read returned (its body, an event's token).
func mapOf(t testing.TB, v any) map[string]any {
	t.Helper()
	j, ok := v.(script.JSON)
	if !ok {
		t.Fatalf("got %T, want script.JSON", v)
	}
	m, err := j.Map()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
