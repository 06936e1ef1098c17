package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// stuckConfig protects every route with an authorized callback that, on /stuck/<how>, never
// returns by itself: a loop, which an interrupt stops, or a regular expression that
// backtracks for days inside regexp2, which no interrupt reaches.
const stuckConfig = `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: async () => null })],
  callbacks: {
    authorized({ request }) {
      if (request.path === "/stuck/loop") for (;;) {}
      if (request.path === "/stuck/regexp") return /^(a+)+\1$/.test("a".repeat(40) + "b");
      return true;
    },
  },
};
`

// TestShutdownWithStuckCallback: SIGTERM while a request runs a callback that does not end
// by itself, whose own deadline (30 s) is far past the shutdown grace (1 s): serve returns
// within the grace plus a margin, whatever the callback is doing.
func TestShutdownWithStuckCallback(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()
	dir := t.TempDir()
	scripts := filepath.Join(dir, "scripts")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scripts, "auth.config.js"), []byte(stuckConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	const grace = time.Second
	cfgFile := filepath.Join(dir, "callgate.yaml")
	yaml := fmt.Sprintf("server:\n  shutdown_grace: %s\nscript:\n  timeout: 30s\n  watch: false\nroutes:\n  - {name: app, path: /, upstream: %s}\n", grace, upstream.URL)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"loop", "regexp"} {
		t.Run(how, func(t *testing.T) {
			out := &syncBuffer{}
			env := map[string]string{"AUTH_SECRET": testGatewaySecret}
			c := &cli{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(k string) string { return env[k] }}
			addr := freeLoopbackAddr(t)
			base := "http://" + addr
			ctx, sigterm := context.WithCancel(context.Background())
			defer sigterm()
			served := make(chan struct{})
			go func() {
				defer close(served)
				_ = c.run(ctx, []string{"serve", "--listen", addr, "--url", base, "--data", filepath.Join(t.TempDir(), "data"),
					"--scripts", scripts, "--config", cfgFile})
			}()
			defer func() {
				select {
				case <-served:
				case <-time.After(60 * time.Second):
					t.Errorf("serve still running a minute after SIGTERM")
				}
				if t.Failed() {
					t.Logf("gateway output:\n%s", out)
				}
			}()
			if err := waitUntilReady(ctx, base+"/api/auth/providers", served); err != nil {
				t.Fatalf("serve: %v\n%s", err, out)
			}

			go func() {
				client := &http.Client{Timeout: time.Minute}
				if res, err := client.Get(base + "/stuck/" + how); err == nil {
					res.Body.Close()
				}
			}()
			waitForInflightCall(t, base)

			sigterm()
			start := time.Now()
			select {
			case <-served:
			case <-time.After(grace + 10*time.Second):
				t.Fatalf("serve did not return within %v of SIGTERM (grace %v)", time.Since(start), grace)
			}
			if d := time.Since(start); d > grace+5*time.Second {
				t.Errorf("serve returned %v after SIGTERM, want within the %v grace plus a margin", d, grace)
			}
		})
	}
}

// waitForInflightCall polls /metrics until a script call holds the generation: the stuck
// request has reached its callback. Nothing else tells the test when that happens.
func waitForInflightCall(t *testing.T, base string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	testkit.WaitFor(t, "the stuck request reaches its callback", 15*time.Second, func() error {
		if n := inflight(client, base); n <= 0 {
			return fmt.Errorf("%d calls in flight", n)
		}
		return nil
	})
}

// inflight reads callgate_script_inflight from /metrics; -1 when it cannot.
func inflight(client *http.Client, base string) int {
	res, err := client.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "callgate_script_inflight "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int(n)
		}
	}
	return -1
}
