package engine_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
)

// extendFailingStore is a real bolt store whose session extensions fail while failing is
// set, as a store that goes down between the proxy's session read and its renewal would.
type extendFailingStore struct {
	*bolt.Store
	failing atomic.Bool
}

var errStoreDown = errors.New("store down")

func (s *extendFailingStore) ExtendSession(ctx context.Context, id string, expires time.Time) error {
	if s.failing.Load() {
		return errStoreDown
	}
	return s.Store.ExtendSession(ctx, id, expires)
}

// TestProxyRenewalStoreFailureJudgesAsRead: a database session past updateAge whose
// extension fails is judged by the session as read (still valid: the app is reached, as
// the user), with no cookie and the failure logged; never a 500, never a sign-out. Once the
// store answers again, the next request renews it.
func TestProxyRenewalStoreFailureJudgesAsRead(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	b, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	st := &extendFailingStore{Store: b}
	if _, err := st.CreateUser(context.Background(), store.User{ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", Name: "Jatin", Email: "jatin@example.com"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(dbStrategyScripts), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gatewayConfig{fixture: dir, users: st, store: st, security: guard.Options{}, now: clk.Now, url: gatewayOrigin})
	front := proxyFront(t, g, userUpstream(t).URL)
	br := g.browser(t)
	if r := br.signIn("credentials", "jatin", "pw"); r.status != http.StatusOK {
		t.Fatalf("sign in: got %d %s", r.status, r.body)
	}
	cookie := br.get("next-auth.session-token")

	clk.add(11 * time.Minute) // past updateAge (10 minutes)
	st.failing.Store(true)
	user, renewed, err := proxiedGet(front.URL, cookie)
	if err != nil || user != "65a1f0c2e4b0a1b2c3d4e5f6" || renewed != "" {
		t.Fatalf("renewal with the store failing: got user %q, renewed %v, err %v; want the app reached as the user, no cookie", user, renewed != "", err)
	}
	if logs := g.logs.String(); !strings.Contains(logs, "SESSION_RENEWAL_ERROR") {
		t.Errorf("the failed renewal was not logged as SESSION_RENEWAL_ERROR:\n%s", logs)
	}

	st.failing.Store(false)
	clk.add(2 * time.Second) // past the proxy's one-second reuse of a store read
	if user, renewed, err := proxiedGet(front.URL, cookie); err != nil || user != "65a1f0c2e4b0a1b2c3d4e5f6" || renewed != cookie {
		t.Fatalf("renewal with the store back: got user %q, renewed %q, err %v; want the same session id re-sent", user, renewed, err)
	}
	sess, _, err := st.GetSessionAndUser(context.Background(), store.SessionID(cookie))
	if want := clk.Now().Add(time.Hour); err != nil || sess.Expires.Before(want.Add(-time.Second)) {
		t.Errorf("stored expiry after the renewal: got %v (%v), want %v", sess.Expires, err, want)
	}
}
