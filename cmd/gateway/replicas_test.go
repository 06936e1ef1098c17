package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// These tests run several gateways on one Redis, as replicas behind a load balancer would.

// testRedisURL returns REDIS_URL, skipping outside CI when it is unset and failing in CI.
func testRedisURL(t *testing.T) string {
	t.Helper()
	return testkit.RedisURL(t, "the multi-replica tests")
}

func randomPrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "callgate-replicas-" + hex.EncodeToString(b[:])
}

// databaseScripts is an auth config with the database strategy; its session callback adds
// the store user's id and role, which only the user record (not a token) can supply.
const databaseScripts = `import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

export default {
  session: { strategy: "database", maxAge: 3600, updateAge: 1 },
  providers: [
    Credentials({
      credentials: { username: {}, password: {} },
      async authorize(credentials) {
        const user = await users.findOne({ username: credentials.username });
        if (!user || !(await bcrypt.compare(credentials.password, user.password))) return null;
        return { id: user._id, name: user.name, email: user.email };
      },
    }),
  ],
  callbacks: {
    async session({ session, user }) {
      session.user.id = user.id;
      session.user.role = user.role;
      return session;
    },
  },
};
`

// replicaSetup writes the shared config (and scripts for the database strategy), imports
// the test users into Redis under a fresh prefix, and returns the serve arguments.
func replicaSetup(t *testing.T, redisURL, strategy string, extraYAML string) (args []string, scriptsDir, prefix string) {
	t.Helper()
	prefix = randomPrefix(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	yaml := fmt.Sprintf("store: %q\nredis:\n  key_prefix: %s\n  read_timeout: 300ms\n  write_timeout: 300ms\n  dial_timeout: 300ms\n  pool_timeout: 500ms\n%s", redisURL, prefix, extraYAML)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if strategy == "database" {
		scriptsDir = filepath.Join(dir, "scripts")
		if err := os.MkdirAll(scriptsDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(scriptsDir, "auth.config.js"), []byte(databaseScripts), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runCLI(t, "users", "import", "--store", redisURL, "--key-prefix", prefix, repoPath("testdata", "users.json"))
	return []string{"--config", cfg}, scriptsDir, prefix
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	out := &syncBuffer{}
	c := &cli{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(string) string { return "" }}
	if err := c.run(t.Context(), args); err != nil {
		t.Fatalf("gateway %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out.String()
}

func getSession(t *testing.T, client *http.Client, gw *testGateway) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/api/auth/session", nil)
	res := do(t, client, req)
	var body map[string]any
	_ = json.Unmarshal(res.Body, &body)
	return res.Status, body
}

func sessionUserName(body map[string]any) string {
	u, _ := body["user"].(map[string]any)
	name, _ := u["name"].(string)
	return name
}

func TestReplicasShareSessionsAndRevocations(t *testing.T) {
	redisURL := testRedisURL(t)
	for _, strategy := range []string{"jwt", "database"} {
		t.Run(strategy, func(t *testing.T) {
			args, scripts, prefix := replicaSetup(t, redisURL, strategy, "")
			clock := &movedClock{}
			a := startGateway(t, gatewayOptions{Args: args, ScriptsDir: scripts, Now: clock.Now})
			b := startGateway(t, gatewayOptions{Args: args, ScriptsDir: scripts, Now: clock.Now})

			client := newBrowserClient(t) // cookies ignore the port: A and B share them
			if res := signInWithCredentials(t, client, a, "jatin", "secret"); res.Status != http.StatusOK {
				t.Fatalf("sign in through A: got %d %s, want 200", res.Status, res.Body)
			}
			cookieValue := jarCookie(t, client, a, sessionCookieName)
			if strategy == "database" && len(cookieValue) != 64 {
				t.Errorf("database session cookie: got %d characters, want a 64-hex opaque token", len(cookieValue))
			}
			for _, gw := range []*testGateway{b, a} {
				status, body := getSession(t, client, gw)
				if status != http.StatusOK || sessionUserName(body) != "Jatin" {
					t.Fatalf("GET /session through %s: got %d %v, want Jatin's session", gw.URL, status, body)
				}
				if strategy == "database" {
					if u := body["user"].(map[string]any); u["role"] != "admin" || u["id"] != "65a1f0c2e4b0a1b2c3d4e5f6" {
						t.Errorf("database session user: got %v, want id and role from the store record", u)
					}
				}
			}
			if strategy == "database" {
				out := runCLI(t, "sessions", "list", "--user", "jatin", "--store", redisURL, "--key-prefix", prefix)
				if !strings.Contains(out, "1 database session for jatin") {
					t.Errorf("sessions list: got %q, want one session", out)
				}
			}

			// Sign out everywhere through the shared store; A must refuse within a second.
			start := time.Now()
			runCLI(t, "sessions", "revoke", "--user", "jatin", "--store", redisURL, "--key-prefix", prefix)
			testkit.WaitFor(t, "GET /session through A answers {} after the revocation", time.Second, func() error {
				if status, body := getSession(t, client, a); status != http.StatusOK || len(body) != 0 {
					return fmt.Errorf("got %d %v", status, body)
				}
				return nil
			})
			t.Logf("revocation took effect on A after %v", time.Since(start))
			// The revocation covers tokens issued before it (to the second), not a new
			// sign-in: the gateways' clock moves past the revocation's second.
			clock.advance(1100 * time.Millisecond)
			fresh := newBrowserClient(t)
			if res := signInWithCredentials(t, fresh, b, "jatin", "secret"); res.Status != http.StatusOK {
				t.Fatalf("sign in again through B: got %d %s", res.Status, res.Body)
			}
			if status, body := getSession(t, fresh, a); status != http.StatusOK || sessionUserName(body) != "Jatin" {
				t.Errorf("new session after the revocation, through A: got %d %v, want Jatin's session", status, body)
			}
		})
	}
}

func TestReplicasCountFailedSignInsTogether(t *testing.T) {
	redisURL := testRedisURL(t)
	args, _, _ := replicaSetup(t, redisURL, "jwt", "security:\n  signin_max_failures_per_username: 3\n  signin_failure_window: 1m\n")
	a := startGateway(t, gatewayOptions{Args: args})
	b := startGateway(t, gatewayOptions{Args: args})
	client := newBrowserClient(t)
	for i, gw := range []*testGateway{a, b, a} {
		if res := signInWithCredentials(t, client, gw, "jatin", "wrong"); res.Status != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: got %d %s, want 401", i+1, res.Status, res.Body)
		}
	}
	for _, tt := range []struct {
		gw       *testGateway
		password string
	}{{b, "wrong"}, {a, "secret"}} {
		res := signInWithCredentials(t, client, tt.gw, "jatin", tt.password)
		if res.Status != http.StatusTooManyRequests {
			t.Fatalf("sign-in after 3 failures on two replicas (password %q): got %d %s, want 429", tt.password, res.Status, res.Body)
		}
		if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("Retry-After: got %q, want seconds until the window ends", ra)
		}
		var body struct{ URL string }
		if err := json.Unmarshal(res.Body, &body); err != nil || !strings.Contains(body.URL, "error=TooManyRequests") || !strings.HasPrefix(body.URL, "http") {
			t.Errorf("429 body: got %s, want {\"url\": absolute error URL with error=TooManyRequests}", res.Body)
		}
	}
	// Another username is not limited by jatin's count.
	if res := signInWithCredentials(t, client, b, "alice", "wrong"); res.Status != http.StatusUnauthorized {
		t.Errorf("alice's first failure: got %d, want 401", res.Status)
	}
}

// cheapUser is jatin with password "secret" hashed at bcrypt's lowest cost, so that 100
// parallel sign-ins under the race detector measure the store, not bcrypt.
const cheapUser = `[{"_id": "65a1f0c2e4b0a1b2c3d4e5f6", "username": "jatin", "name": "Jatin",
  "password": "$2a$04$zSMo0yXvN50TAk0CSD5Km.v1uYJkWlRPkneslBRQsu8HBUuEAGUsi"}]`

func TestReplicasConcurrentSignInsAndReads(t *testing.T) {
	redisURL := testRedisURL(t)
	prefix := randomPrefix(t)
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "users.json")
	cfg := filepath.Join(dir, "gateway.yaml")
	scripts := filepath.Join(dir, "scripts")
	for path, content := range map[string]string{
		usersFile: cheapUser,
		// Sign-in limits count attempts in flight (a slot is reserved before authorize runs),
		// so 100 simultaneous sign-ins of one account from one address need limits above 100.
		cfg: fmt.Sprintf("store: %q\nredis:\n  key_prefix: %s\nscript:\n  timeout: 60s\n"+
			"security:\n  signin_max_failures_per_username: 1000\n  signin_max_failures_per_address: 1000\n", redisURL, prefix),
		filepath.Join(scripts, "auth.config.js"): databaseScripts,
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runCLI(t, "users", "import", "--store", redisURL, "--key-prefix", prefix, usersFile)
	args := []string{"--config", cfg}
	a := startGateway(t, gatewayOptions{Args: args, ScriptsDir: scripts})
	b := startGateway(t, gatewayOptions{Args: args, ScriptsDir: scripts})
	const n = 100
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gws := []*testGateway{a, b}
			client := newBrowserClient(t)
			client.Timeout = time.Minute // 100 requests queue for a few JS runtimes
			if res := signInWithCredentials(t, client, gws[i%2], "jatin", "secret"); res.Status != http.StatusOK {
				t.Errorf("sign-in %d: got %d %s", i, res.Status, res.Body)
				return
			}
			if status, body := getSession(t, client, gws[(i+1)%2]); status != http.StatusOK || sessionUserName(body) != "Jatin" {
				t.Errorf("session read %d: got %d %v", i, status, body)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	if ok.Load() != n {
		t.Fatalf("parallel sign-ins and reads: %d of %d succeeded", ok.Load(), n)
	}
	out := runCLI(t, "sessions", "list", "--user", "jatin", "--store", redisURL, "--key-prefix", prefix)
	if !strings.Contains(out, fmt.Sprintf("%d database sessions for jatin", n)) {
		t.Errorf("sessions list after %d parallel sign-ins: got %q, want %d sessions (no lost update)", n, out[strings.LastIndex(out[:len(out)-1], "\n")+1:], n)
	}
}

// TestRedisOutageDuringLoad stops a private redis-server while clients read sessions, then
// starts it again: database sessions answer 503 (never 200 {} or a panic) while it is down,
// jwt sessions keep working (revocation check fails open), and both recover without a
// restart.
func TestRedisOutageDuringLoad(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; .ci/run installs it")
		}
		t.Skip("redis-server is not installed: skipping the outage test")
	}
	addr := freeLoopbackAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	startRedis := func() *exec.Cmd {
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--dir", dir, "--save", "", "--appendonly", "yes")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		waitForRedisPing(t, port)
		return cmd
	}
	redis := startRedis()
	t.Cleanup(func() { _ = redis.Process.Kill(); _ = redis.Wait() })
	redisURL := "redis://" + addr + "/0"

	dbArgs, scripts, _ := replicaSetup(t, redisURL, "database", "")
	jwtArgs, _, _ := replicaSetup(t, redisURL, "jwt", "")
	clock := &movedClock{}
	dbGW := startGateway(t, gatewayOptions{Args: dbArgs, ScriptsDir: scripts, Now: clock.Now})
	jwtGW := startGateway(t, gatewayOptions{Args: jwtArgs})
	dbClient, jwtClient := newBrowserClient(t), newBrowserClient(t)
	for _, c := range []struct {
		client *http.Client
		gw     *testGateway
	}{{dbClient, dbGW}, {jwtClient, jwtGW}} {
		if res := signInWithCredentials(t, c.client, c.gw, "jatin", "secret"); res.Status != http.StatusOK {
			t.Fatalf("sign in: got %d %s", res.Status, res.Body)
		}
	}

	// Load: readers on both gateways until told to stop, recording every outcome.
	var mu sync.Mutex
	outcomes := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client, gw, kind := dbClient, dbGW, "database"
			if i%2 == 1 {
				client, gw, kind = jwtClient, jwtGW, "jwt"
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, gw.URL+"/api/auth/session", nil)
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("%s read: %v", kind, err)
					return
				}
				var body map[string]any
				_ = json.NewDecoder(res.Body).Decode(&body)
				res.Body.Close()
				key := fmt.Sprintf("%s %d", kind, res.StatusCode)
				if res.StatusCode == http.StatusOK && sessionUserName(body) != "Jatin" {
					key += " without session"
				}
				mu.Lock()
				outcomes[key]++
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	seen := func(key string) int {
		mu.Lock()
		defer mu.Unlock()
		return outcomes[key]
	}
	testkit.WaitFor(t, "the readers see both sessions", 10*time.Second, func() error {
		if seen("database 200") == 0 || seen("jwt 200") == 0 {
			return errors.New("no database 200 and jwt 200 yet")
		}
		return nil
	})
	_ = redis.Process.Kill()
	_ = redis.Wait()
	// The database gateway reuses a session read for dbSessionTTL (a second): its clock
	// moves past that, and the readers then meet the outage.
	clock.advance(1500 * time.Millisecond)
	testkit.WaitFor(t, "the readers meet the outage", 10*time.Second, func() error {
		if seen("database 503") == 0 {
			return errors.New("no database 503 yet")
		}
		return nil
	})

	// While Redis is down: the database session answers 503 with a JSON message.
	status, body := getSession(t, dbClient, dbGW)
	if status != http.StatusServiceUnavailable || body["message"] == nil {
		t.Errorf("database session with Redis down: got %d %v, want 503 with a message", status, body)
	}
	if status, body := getSession(t, jwtClient, jwtGW); status != http.StatusOK || sessionUserName(body) != "Jatin" {
		t.Errorf("jwt session with Redis down (fail open): got %d %v, want Jatin's session", status, body)
	}

	for _, path := range []string{"/healthz", "/-/status"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, dbGW.URL+path, nil)
		res := do(t, http.DefaultClient, req)
		if !strings.Contains(string(res.Body), `"state": "unavailable"`) && !strings.Contains(string(res.Body), `"state":"unavailable"`) {
			t.Errorf("GET %s with Redis down: got %d %s, want the store reported unavailable", path, res.Status, res.Body)
		}
	}

	redis = startRedis()
	// appendonly kept the data: the session is still there after the restart.
	testkit.WaitFor(t, "database session after Redis came back (recovery without restart)", 10*time.Second, func() error {
		if status, body := getSession(t, dbClient, dbGW); status != http.StatusOK || sessionUserName(body) != "Jatin" {
			return fmt.Errorf("got %d %v, want Jatin's session", status, body)
		}
		return nil
	})
	// The readers see the recovery too, not only this one request.
	recovered := seen("database 200")
	testkit.WaitFor(t, "the readers see the recovery", 10*time.Second, func() error {
		if seen("database 200") <= recovered {
			return errors.New("no database 200 since Redis came back")
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("outcomes during the outage run: %v", outcomes)
	for k, n := range outcomes {
		switch k {
		case "database 200", "database 503", "jwt 200":
		default:
			t.Errorf("outcome %q happened %d times; want only database 200/503 and jwt 200", k, n)
		}
	}
	if outcomes["database 503"] == 0 || outcomes["database 200"] == 0 || outcomes["jwt 200"] == 0 {
		t.Errorf("outcomes %v: want database 200 and 503 and jwt 200 all seen", outcomes)
	}
	if got := dbGW.Logs(); strings.Contains(got, "panic") {
		t.Errorf("gateway log mentions a panic:\n%s", got)
	}
}
