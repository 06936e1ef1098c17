package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// privateRedis is a redis-server the test owns, so it can stop and start it.
type privateRedis struct {
	t    *testing.T
	bin  string
	port string
	dir  string
	cmd  *exec.Cmd
	URL  string
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; .ci/run installs it")
		}
		t.Skip("redis-server is not installed: skipping the store outage test")
	}
	addr := freeLoopbackAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	r := &privateRedis{t: t, bin: bin, port: port, dir: t.TempDir(), URL: "redis://" + addr + "/0"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) start() {
	r.t.Helper()
	// appendonly: the sessions survive the restart, as they would on a real Redis.
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", r.port, "--dir", r.dir, "--save", "", "--appendonly", "yes")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	waitForRedisPing(r.t, r.port)
}

func (r *privateRedis) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	// SIGTERM, as an operator's restart would: Redis flushes its append-only file and exits,
	// so the sessions are there when it comes back.
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// TestProxyStoreOutage: with database sessions on Redis and Redis down, a proxied request
// and both forward-auth endpoints answer 503 with a page or JSON that says so (never 200,
// never 401/302 as if signed out), and everything works again once Redis is back.
func TestProxyStoreOutage(t *testing.T) {
	redis := startPrivateRedis(t)
	up := echoUpstream(t)
	routes := fmt.Sprintf("routes:\n  - {name: app, path: /app, upstream: %q}\n", up.URL)
	args, scripts, _ := replicaSetup(t, redis.URL, "database", routes)
	clk := &movedClock{}
	gw := startGateway(t, gatewayOptions{Args: args, ScriptsDir: scripts, Now: clk.Now})
	client := newBrowserClient(t)
	if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK {
		t.Fatalf("sign in: got %d %s", res.Status, res.Body)
	}

	html := http.Header{"Accept": {"text/html"}}
	api := http.Header{"Accept": {"application/json"}}
	requests := []struct {
		name   string
		path   string
		header http.Header
	}{
		{"proxied, browser", "/app/page", html},
		{"proxied, API client", "/app/page", api},
		{"forward-auth", "/_callgate/forward-auth", html},
		{"nginx auth_request", "/_callgate/auth", api},
	}
	for _, rq := range requests {
		if res := get(t, client, gw.URL+rq.path, rq.header); res.Status != http.StatusOK {
			t.Fatalf("%s with Redis up: got %d %s, want 200", rq.name, res.Status, res.Body)
		}
	}

	redis.stop()
	// The proxy reuses a database session read for at most a second (engine/session): move
	// the engine's clock past it rather than wait.
	clk.advance(1500 * time.Millisecond)
	for _, rq := range requests {
		res := get(t, client, gw.URL+rq.path, rq.header)
		if res.Status != http.StatusServiceUnavailable {
			t.Errorf("%s with Redis down: got %d (Location %q) %s, want 503", rq.name, res.Status, res.Header.Get("Location"), res.Body)
			continue
		}
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("%s with Redis down: got no Retry-After, want one", rq.name)
		}
		if rq.header.Get("Accept") == "text/html" {
			if !strings.Contains(string(res.Body), "temporarily unavailable") {
				t.Errorf("%s with Redis down: got page %s, want one saying sign-in is temporarily unavailable", rq.name, res.Body)
			}
			continue
		}
		var body struct{ Error, Message string }
		if err := json.Unmarshal(res.Body, &body); err != nil || body.Error != "service_unavailable" || body.Message == "" {
			t.Errorf("%s with Redis down: got %s, want JSON {error: service_unavailable, message}", rq.name, res.Body)
		}
	}
	if logs := gw.Logs(); !strings.Contains(logs, "STORE_UNAVAILABLE") || strings.Contains(logs, "panic") {
		t.Errorf("gateway log: want STORE_UNAVAILABLE logged and no panic, got:\n%s", logs)
	}

	redis.start()
	deadline := time.Now().Add(10 * time.Second)
	for _, rq := range requests {
		testkit.WaitFor(t, rq.name+" after Redis came back, without a restart", time.Until(deadline), func() error {
			if res := get(t, client, gw.URL+rq.path, rq.header); res.Status != http.StatusOK {
				return fmt.Errorf("got %d %s, want 200", res.Status, res.Body)
			}
			return nil
		})
	}
}
