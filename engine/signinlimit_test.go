package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
	"github.com/callgate/callgate/store/redis"
)

// signInFrom posts a failed-or-not credentials sign-in as a load balancer would, naming
// the client in X-Forwarded-For.
func signInFrom(t *testing.T, b *browser, forwardedFor, username, password string) int {
	t.Helper()
	form := url.Values{"username": {username}, "password": {password}, "csrfToken": {b.csrf()}, "json": {"true"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.gw.srv.URL+"/api/auth/callback/credentials", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", b.cookieHeader())
	req.Header.Set("X-Forwarded-For", forwardedFor)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sign in from %s: %v", forwardedFor, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestSignInLimitPerClientBehindProxy: behind a trusted load balancer (the test's loopback
// peer), failures are counted per client named in X-Forwarded-For; from an untrusted peer
// that header is ignored and every client shares the peer's count.
func TestSignInLimitPerClientBehindProxy(t *testing.T) {
	trusting, err := clientaddr.New([]string{"127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	distrusting, err := clientaddr.New([]string{"10.9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		addrs *clientaddr.Resolver
		// wantOther is the status of a wrong password from a second client after the first
		// client used up its failures.
		wantOther int
	}{
		{"trusted proxy: counted per client", trusting, http.StatusUnauthorized},
		{"untrusted peer: forwarded header ignored", distrusting, http.StatusTooManyRequests},
		{"no trusted proxies: counted per peer", nil, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw, _ := dbGateway(t, "", guard.Options{MaxFailuresPerAddress: 2, FailureWindow: time.Minute, Addresses: tt.addrs}, nil)
			b := gw.browser(t)
			// Different usernames: only the per-address counter can refuse.
			for i, user := range []string{"a", "b"} {
				if got := signInFrom(t, b, "203.0.113.7", user, "wrong"); got != http.StatusUnauthorized {
					t.Fatalf("failure %d from 203.0.113.7: got %d, want 401", i+1, got)
				}
			}
			if got := signInFrom(t, b, "203.0.113.7", "c", "wrong"); got != http.StatusTooManyRequests {
				t.Errorf("third attempt from 203.0.113.7: got %d, want 429", got)
			}
			if got := signInFrom(t, b, "198.51.100.20", "d", "wrong"); got != tt.wantOther {
				t.Errorf("first attempt from 198.51.100.20: got %d, want %d", got, tt.wantOther)
			}
		})
	}
}

// limitScripts signs in "jatin" and "mallory" with the password "pw". authorize looks the
// user up by username, else by email, so the gated users store below sees every run of
// authorize.
const limitScripts = `import Credentials from "callgate/providers/credentials";
import { users } from "callgate/store";
export default {
  providers: [Credentials({
    credentials: { username: { type: "text" }, email: { type: "email" }, tenant: { type: "text" }, password: { type: "password" } },
    async authorize(c) {
      const u = await users.findOne(c.username ? { username: c.username } : { email: c.email });
      if (!u || c.password !== "pw") return null;
      return { id: u._id, name: u.name, email: u.email };
    },
  })],
};
`

// burstGate makes the attempts of a burst overlap whatever the scheduling. It counts the
// limit checks made before authorize (the store's Increment or Count) and authorize's user
// lookups (one per run of authorize), and holds every lookup until each attempt of the burst
// has made its check. Then every attempt has been judged while no password check had ended:
// a limit that checks a count first and adds to it after the password check lets the whole
// burst through, one that reserves first lets exactly the limit through. (Holding until
// every attempt reached its lookup would not do: the runtime pool runs only a few authorize
// calls at once.)
type burstGate struct {
	mu      sync.Mutex
	checks  int
	total   int
	lookups int
	open    chan struct{}
}

// newBurstGate holds lookups until total limit checks were made; 0 never holds them.
func newBurstGate(total int) *burstGate {
	g := &burstGate{total: total, open: make(chan struct{})}
	if total == 0 {
		close(g.open)
	}
	return g
}

func (g *burstGate) checked() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.checks++; g.checks == g.total {
		close(g.open)
	}
}

func (g *burstGate) lookup(ctx context.Context) error {
	g.mu.Lock()
	g.lookups++
	g.mu.Unlock()
	select {
	case <-g.open:
		return nil
	case <-ctx.Done(): // the script's deadline: a broken gate fails the test, never hangs it
		return fmt.Errorf("gated lookup: %w", ctx.Err())
	}
}

// runs is how many times authorize ran.
func (g *burstGate) runs() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lookups
}

// gatedUsers is a users store whose lookups go through a gate.
type gatedUsers struct {
	store.Users
	gate *burstGate
}

func (u gatedUsers) FindUser(ctx context.Context, q store.UserQuery) (store.User, error) {
	if err := u.gate.lookup(ctx); err != nil {
		return store.User{}, err
	}
	return u.Users.FindUser(ctx, q)
}

// gatedLimits is a store whose limit checks the gate counts, once each has its answer.
type gatedLimits struct {
	store.Store
	gate *burstGate
}

func (s gatedLimits) Increment(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	defer s.gate.checked()
	return s.Store.Increment(ctx, key, window)
}

func (s gatedLimits) Count(ctx context.Context, key string) (int64, time.Time, error) {
	defer s.gate.checked()
	return s.Store.Count(ctx, key)
}

// seedLimitUsers stores jatin and mallory.
func seedLimitUsers(t *testing.T, st store.Users) {
	t.Helper()
	for _, u := range []store.User{
		{Username: "jatin", Name: "Jatin", Email: "jatin@example.com"},
		{Username: "mallory", Name: "Mallory", Email: "mallory@example.com"},
	} {
		if _, err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatalf("create user %s: %v", u.Username, err)
		}
	}
}

// limitGateway starts a gateway on st running limitScripts, its lookups going through users.
func limitGateway(t *testing.T, st store.Store, users store.Users, sec guard.Options) *gateway {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(limitScripts), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, gatewayConfig{fixture: dir, users: users, store: st, security: sec})
}

func boltLimitStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seedLimitUsers(t, st)
	return st
}

// redisLimitStores opens n stores on one Redis key prefix, as n replicas of one gateway.
func redisLimitStores(t *testing.T, n int) []store.Store {
	t.Helper()
	stores := redisReplicaStores(t, n, "callgate-test-signinlimit", "the sign-in limit tests on Redis")
	seedLimitUsers(t, stores[0])
	return stores
}

// redisReplicaStores opens n stores on one fresh Redis key prefix, as n replicas of one
// gateway share one Redis, and removes the prefix's keys when the test ends.
func redisReplicaStores(t *testing.T, n int, prefixBase, what string) []store.Store {
	t.Helper()
	url := testkit.RedisURL(t, what)
	prefix := testkit.UniquePrefix(prefixBase)
	var stores []store.Store
	for range n {
		st, err := redis.Open(redis.Options{URL: url, KeyPrefix: prefix})
		if err != nil {
			t.Fatalf("open Redis: %v", err)
		}
		t.Cleanup(func() {
			ctx := context.Background()
			if keys, _ := st.Client().Keys(ctx, st.Prefix()+"*").Result(); len(keys) > 0 {
				st.Client().Del(ctx, keys...)
			}
			st.Close()
		})
		stores = append(stores, st)
	}
	return stores
}

// postAttempt sends one credentials sign-in body to base with the browser's cookies and
// returns the status and body. It keeps no state, so goroutines may share a browser.
func postAttempt(t *testing.T, base, cookies, contentType, body string) (int, string) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/api/auth/callback/credentials", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Cookie", cookies)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", base, err)
		return 0, ""
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(data)
}

// credentialsForm is a credentials sign-in with json=true; fields come in pairs.
func credentialsForm(csrf string, fields ...string) string {
	form := url.Values{"csrfToken": {csrf}, "json": {"true"}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	return form.Encode()
}

// TestSignInLimitParallelBurst sends 30 parallel wrong passwords with a limit of 5, through
// real listeners: for one account (per-username limit) and for 30 accounts from one
// address (per-address limit), on bbolt and on Redis with two replicas sharing it. authorize
// must run at most 5 times; every other attempt gets 429 without it.
func TestSignInLimitParallelBurst(t *testing.T) {
	const burst, limit = 30, 5
	tests := []struct {
		name     string
		replicas func(t *testing.T) []store.Store
		sec      guard.Options
		username func(i int) string
	}{
		{"bolt, one account", func(t *testing.T) []store.Store { return []store.Store{boltLimitStore(t)} },
			guard.Options{MaxFailuresPerUsername: limit, FailureWindow: time.Minute}, func(int) string { return "jatin" }},
		{"bolt, one address", func(t *testing.T) []store.Store { return []store.Store{boltLimitStore(t)} },
			guard.Options{MaxFailuresPerAddress: limit, FailureWindow: time.Minute}, func(i int) string { return fmt.Sprintf("user%d", i) }},
		{"redis two replicas, one account", func(t *testing.T) []store.Store { return redisLimitStores(t, 2) },
			guard.Options{MaxFailuresPerUsername: limit, FailureWindow: time.Minute}, func(int) string { return "jatin" }},
		{"redis two replicas, one address", func(t *testing.T) []store.Store { return redisLimitStores(t, 2) },
			guard.Options{MaxFailuresPerAddress: limit, FailureWindow: time.Minute}, func(i int) string { return fmt.Sprintf("user%d", i) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stores := tt.replicas(t)
			gate := newBurstGate(burst) // one limit on: one check per attempt
			var gws []*gateway
			for _, st := range stores {
				gws = append(gws, limitGateway(t, gatedLimits{st, gate}, gatedUsers{st, gate}, tt.sec))
			}
			b := gws[0].browser(t)
			csrf := b.csrf() // the CSRF cookie verifies on every replica: they share the secret
			statuses := make([]int, burst)
			var wg sync.WaitGroup
			for i := range burst {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses[i], _ = postAttempt(t, gws[i%len(gws)].srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded",
						credentialsForm(csrf, "username", tt.username(i), "password", "wrong"))
				}()
			}
			wg.Wait()
			byStatus := map[int]int{}
			for _, s := range statuses {
				byStatus[s]++
			}
			if got := gate.runs(); got > limit {
				t.Errorf("authorize ran %d times for %d parallel attempts, want at most the limit %d", got, burst, limit)
			}
			if byStatus[http.StatusUnauthorized]+byStatus[http.StatusTooManyRequests] != burst || byStatus[http.StatusTooManyRequests] < burst-limit {
				t.Errorf("statuses: got %v, want at most %d×401 and the rest 429", byStatus, limit)
			}
			// The right password is refused too now, on either replica.
			for _, gw := range gws {
				if got, body := postAttempt(t, gw.srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded",
					credentialsForm(csrf, "username", tt.username(0), "password", "pw")); got != http.StatusTooManyRequests {
					t.Errorf("right password after the burst: got %d %s, want 429", got, body)
				}
			}
		})
	}
}

// TestSignInLimitCountsTheAccount: variants of an identifier (case, spaces, fullwidth and
// other NFKC forms, invisible characters, another field naming it) land on the account's
// counter, in either order; a different name does not.
func TestSignInLimitCountsTheAccount(t *testing.T) {
	tests := []struct {
		name         string
		first, then  [2]string // field, value: two failures with first, then one attempt with then
		wantThenCode int
	}{
		{"capitalised", [2]string{"username", "jatin"}, [2]string{"username", "Jatin"}, http.StatusTooManyRequests},
		{"upper case", [2]string{"username", "jatin"}, [2]string{"username", "JATIN"}, http.StatusTooManyRequests},
		{"surrounding spaces", [2]string{"username", "jatin"}, [2]string{"username", " jatin "}, http.StatusTooManyRequests},
		{"tab and newline", [2]string{"username", "jatin"}, [2]string{"username", "\tjatin\n"}, http.StatusTooManyRequests},
		{"no-break and ideographic spaces", [2]string{"username", "jatin"}, [2]string{"username", "\u00a0jatin\u3000"}, http.StatusTooManyRequests},
		{"fullwidth", [2]string{"username", "jatin"}, [2]string{"username", "ｊａｔｉｎ"}, http.StatusTooManyRequests},
		{"fullwidth first", [2]string{"username", "ＪＡＴＩＮ"}, [2]string{"username", "jatin"}, http.StatusTooManyRequests},
		{"zero-width space", [2]string{"username", "jatin"}, [2]string{"username", "ja\u200btin"}, http.StatusTooManyRequests},
		{"variant first", [2]string{"username", " Jatin"}, [2]string{"username", "jatin"}, http.StatusTooManyRequests},
		{"e-mail case", [2]string{"email", "jatin@example.com"}, [2]string{"email", "JATIN@Example.COM"}, http.StatusTooManyRequests},
		{"fullwidth e-mail", [2]string{"email", "jatin@example.com"}, [2]string{"email", "ｊａｔｉｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"}, http.StatusTooManyRequests},
		{"other field, same name", [2]string{"username", "jatin"}, [2]string{"email", "Jatin"}, http.StatusTooManyRequests},
		{"another account", [2]string{"username", "jatin"}, [2]string{"username", "mallory"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := boltLimitStore(t)
			gate := newBurstGate(0)
			gw := limitGateway(t, st, gatedUsers{st, gate}, guard.Options{MaxFailuresPerUsername: 2, FailureWindow: time.Minute})
			b := gw.browser(t)
			csrf := b.csrf()
			for i := range 2 {
				if got, body := postAttempt(t, gw.srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded",
					credentialsForm(csrf, tt.first[0], tt.first[1], "password", "wrong")); got != http.StatusUnauthorized {
					t.Fatalf("failure %d with %s=%+q: got %d %s, want 401", i+1, tt.first[0], tt.first[1], got, body)
				}
			}
			// The right password: only the limit can refuse it (or the lookup, for a variant
			// the store does not equate, which must then be refused before authorize).
			got, body := postAttempt(t, gw.srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded",
				credentialsForm(csrf, tt.then[0], tt.then[1], "password", "pw"))
			if got != tt.wantThenCode {
				t.Errorf("then %s=%+q: got %d %s, want %d", tt.then[0], tt.then[1], got, body, tt.wantThenCode)
			}
			wantLookups := 2
			if tt.wantThenCode != http.StatusTooManyRequests {
				wantLookups = 3
			}
			if n := gate.runs(); n != wantLookups {
				t.Errorf("authorize ran %d times, want %d", n, wantLookups)
			}
		})
	}
}

// TestSignInRefusesRepeatedFields: a body that gives a field twice, or an identifier that
// is not a string, is refused with 400 before authorize runs (and, for a repeated field,
// before anything else reads the body).
func TestSignInRefusesRepeatedFields(t *testing.T) {
	st := boltLimitStore(t)
	gate := newBurstGate(0)
	gw := limitGateway(t, st, gatedUsers{st, gate}, guard.Options{MaxFailuresPerUsername: 2, MaxFailuresPerAddress: 50, FailureWindow: time.Minute})
	b := gw.browser(t)
	csrf := b.csrf()
	const form, jsonType = "application/x-www-form-urlencoded", "application/json"
	tests := []struct {
		name, contentType, body string
		wantBody                string
	}{
		{"two usernames", form, "username=jatin&username=other&password=wrong&json=true&csrfToken=" + csrf, `"username" is given more than once`},
		{"two usernames, one percent-encoded", form, "username=jatin&user%6Eame=other&password=wrong&json=true&csrfToken=" + csrf, `"username" is given more than once`},
		{"two passwords", form, "username=jatin&password=a&password=b&json=true&csrfToken=" + csrf, `"password" is given more than once`},
		{"two CSRF tokens", form, "username=jatin&password=a&json=true&csrfToken=" + csrf + "&csrfToken=" + csrf, `"csrfToken" is given more than once`},
		{"two e-mails", form, "email=a@example.com&email=jatin@example.com&password=a&json=true&csrfToken=" + csrf, `"email" is given more than once`},
		{"two empty usernames", form, "username=&username=&password=a&json=true&csrfToken=" + csrf, `"username" is given more than once`},
		{"JSON, two usernames", jsonType, `{"username":"other","password":"wrong","json":"true","csrfToken":"` + csrf + `","username":"jatin"}`, `"username" is given more than once`},
		{"JSON, an escaped repeat", jsonType, `{"username":"other","user\u006eame":"jatin","password":"wrong","json":"true","csrfToken":"` + csrf + `"}`, `"username" is given more than once`},
		{"JSON, username as a list", jsonType, `{"username":["jatin"],"password":"wrong","json":"true","csrfToken":"` + csrf + `"}`, `"username" must be a string`},
		{"JSON, e-mail as a number", jsonType, `{"email":1,"password":"wrong","json":"true","csrfToken":"` + csrf + `"}`, `"email" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := gate.runs()
			got, body := postAttempt(t, gw.srv.URL, b.cookieHeader(), tt.contentType, tt.body)
			if got != http.StatusBadRequest || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %q, want 400 saying %s", got, body, tt.wantBody)
			}
			if n := gate.runs() - before; n != 0 {
				t.Errorf("authorize ran %d times, want 0", n)
			}
		})
	}
	// The same sign-ins with each field once go through to authorize.
	for _, ct := range []string{form, jsonType} {
		body := credentialsForm(csrf, "username", "jatin", "password", "pw")
		if ct == jsonType {
			body = `{"username":"jatin","password":"pw","json":"true","csrfToken":"` + csrf + `"}`
		}
		if got, resBody := postAttempt(t, gw.srv.URL, b.cookieHeader(), ct, body); got != http.StatusOK {
			t.Errorf("%s sign-in with each field once: got %d %s, want 200", ct, got, resBody)
		}
	}
}

// TestSignInSuccessIsNotAFailure: successes from one address never use up its limit while
// its failures still do, and a success resets the account's counter.
func TestSignInSuccessIsNotAFailure(t *testing.T) {
	st := boltLimitStore(t)
	gw := limitGateway(t, st, st, guard.Options{MaxFailuresPerUsername: 3, MaxFailuresPerAddress: 3, FailureWindow: time.Minute})
	b := gw.browser(t)
	csrf := b.csrf()
	attempt := func(password string) int {
		got, _ := postAttempt(t, gw.srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded",
			credentialsForm(csrf, "username", "jatin", "password", password))
		return got
	}
	steps := []struct {
		password string
		want     int
	}{
		{"wrong", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, // 2 failures
		{"pw", http.StatusOK}, {"pw", http.StatusOK}, {"pw", http.StatusOK}, {"pw", http.StatusOK}, {"pw", http.StatusOK},
		{"wrong", http.StatusUnauthorized}, // 3 failures on the address: its limit
		{"pw", http.StatusTooManyRequests}, // the address is done for this window
	}
	for i, s := range steps {
		if got := attempt(s.password); got != s.want {
			t.Fatalf("step %d (%s): got %d, want %d", i+1, s.password, got, s.want)
		}
	}
}

// TestSignInRefusalGivesBackOtherSlots: retrying a locked account does not use up the
// address's allowance (nothing ran), so the other people behind that address can still
// sign in.
func TestSignInRefusalGivesBackOtherSlots(t *testing.T) {
	st := boltLimitStore(t)
	gw := limitGateway(t, st, st, guard.Options{MaxFailuresPerUsername: 2, MaxFailuresPerAddress: 3, FailureWindow: time.Minute})
	b := gw.browser(t)
	csrf := b.csrf()
	steps := []struct {
		username, password string
		want               int
	}{
		{"jatin", "wrong", http.StatusUnauthorized},
		{"jatin", "wrong", http.StatusUnauthorized}, // jatin locked; the address has 2 of 3
		{"jatin", "wrong", http.StatusTooManyRequests},
		{"jatin", "wrong", http.StatusTooManyRequests},
		{"jatin", "pw", http.StatusTooManyRequests},
		{"mallory", "wrong", http.StatusUnauthorized}, // the address's third failure
		{"mallory", "pw", http.StatusTooManyRequests},
	}
	for i, s := range steps {
		got, body := postAttempt(t, gw.srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded",
			credentialsForm(csrf, "username", s.username, "password", s.password))
		if got != s.want {
			t.Fatalf("step %d (%s, %s): got %d %s, want %d", i+1, s.username, s.password, got, body, s.want)
		}
	}
}

// TestSignInSuccessNamingTwoAccountsKeepsTheirFailures: signing in to one's own account in
// an attempt that also names another account gives the other's slot back but does not reset
// its failures.
func TestSignInSuccessNamingTwoAccountsKeepsTheirFailures(t *testing.T) {
	st := boltLimitStore(t)
	gw := limitGateway(t, st, st, guard.Options{MaxFailuresPerUsername: 3, FailureWindow: time.Minute})
	b := gw.browser(t)
	csrf := b.csrf()
	post := func(fields ...string) int {
		got, _ := postAttempt(t, gw.srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded", credentialsForm(csrf, fields...))
		return got
	}
	if got := post("username", "jatin", "password", "wrong"); got != http.StatusUnauthorized {
		t.Fatalf("failure on jatin: got %d, want 401", got)
	}
	// mallory's own password, with jatin named in the e-mail field.
	if got := post("username", "mallory", "email", "jatin", "password", "pw"); got != http.StatusOK {
		t.Fatalf("mallory's sign-in naming jatin too: got %d, want 200", got)
	}
	// jatin still has 1 failure: 2 more are allowed, not 3.
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests} {
		if got := post("username", "jatin", "password", "wrong"); got != want {
			t.Errorf("attempt %d on jatin after mallory's sign-in: got %d, want %d", i+1, got, want)
		}
	}
}

// TestSignInLimitIgnoresBlankAndOtherFields: a sign-in page sends every field it has,
// filled or not. Blank identifiers and other declared fields (a tenant shared by many
// accounts) name no account: they neither put everyone on one counter nor stop a success
// from resetting the account's.
func TestSignInLimitIgnoresBlankAndOtherFields(t *testing.T) {
	st := boltLimitStore(t)
	gw := limitGateway(t, st, st, guard.Options{MaxFailuresPerUsername: 2, FailureWindow: time.Minute})
	b := gw.browser(t)
	csrf := b.csrf()
	post := func(username, password string) int {
		got, _ := postAttempt(t, gw.srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded",
			credentialsForm(csrf, "username", username, "email", " ", "tenant", "acme", "password", password))
		return got
	}
	steps := []struct {
		username, password string
		want               int
	}{
		{"jatin", "wrong", http.StatusUnauthorized},
		{"jatin", "wrong", http.StatusUnauthorized},
		{"jatin", "pw", http.StatusTooManyRequests}, // jatin is at his limit...
		{"mallory", "wrong", http.StatusUnauthorized},
		{"mallory", "pw", http.StatusOK}, // ...mallory, same tenant and blank e-mail, is not
		{"mallory", "wrong", http.StatusUnauthorized},
		{"mallory", "wrong", http.StatusUnauthorized}, // her success reset her counter
		{"mallory", "pw", http.StatusTooManyRequests},
	}
	for i, s := range steps {
		if got := post(s.username, s.password); got != s.want {
			t.Fatalf("step %d (%s, %s): got %d, want %d", i+1, s.username, s.password, got, s.want)
		}
	}
}

// failingLimits is a store whose counters are unreachable.
type failingLimits struct{ store.Store }

func (failingLimits) Increment(context.Context, string, time.Duration) (int64, time.Time, error) {
	return 0, time.Time{}, fmt.Errorf("increment: %w", store.ErrUnavailable)
}

func (failingLimits) Release(context.Context, string, time.Time) error {
	return fmt.Errorf("release: %w", store.ErrUnavailable)
}

// TestSignInLimitFailsOpen: when the counters cannot be reached, sign-in still works (the
// documented trade: an outage never locks everyone out) and the outage is logged.
func TestSignInLimitFailsOpen(t *testing.T) {
	st := boltLimitStore(t)
	gw := limitGateway(t, failingLimits{st}, st, guard.Options{MaxFailuresPerUsername: 1, MaxFailuresPerAddress: 1, FailureWindow: time.Minute})
	b := gw.browser(t)
	csrf := b.csrf()
	for i, tt := range []struct {
		password string
		want     int
	}{{"wrong", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"pw", http.StatusOK}} {
		if got, body := postAttempt(t, gw.srv.URL, b.cookieHeader(), "application/x-www-form-urlencoded",
			credentialsForm(csrf, "username", "jatin", "password", tt.password)); got != tt.want {
			t.Errorf("attempt %d: got %d %s, want %d", i+1, got, body, tt.want)
		}
	}
	if !strings.Contains(gw.logs.String(), "sign-in limit not applied: store unavailable") {
		t.Errorf("the outage was not logged:\n%s", gw.logs.String())
	}
}
