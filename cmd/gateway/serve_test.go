package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/token"
)

// runServeUntilReady runs `gateway serve args...` with the given environment until the test
// ends, and returns the output once the gateway answers.
func runServeUntilReady(t *testing.T, env map[string]string, args ...string) (baseURL string, out *syncBuffer) {
	t.Helper()
	out = &syncBuffer{}
	c := &cli{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(k string) string { return env[k] }}
	addr := freeLoopbackAddr(t)
	baseURL = "http://" + addr
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	var serveErr error
	go func() {
		defer close(served)
		serveErr = c.run(ctx, append([]string{"serve", "--listen", addr, "--url", baseURL}, args...))
	}()
	t.Cleanup(func() {
		stop()
		<-served
		if serveErr != nil {
			t.Errorf("serve returned %v after its context ended, want nil", serveErr)
		}
	})
	if err := waitUntilReady(ctx, baseURL+"/api/auth/providers", served); err != nil {
		t.Fatalf("serve %v: %v (%v)\n%s", args, err, serveErr, out)
	}
	return baseURL, out
}

// TestServeWithEmbeddedDefaults: no secret and an empty store — serve generates a secret
// (mode 0600) and a demo user whose printed one-time password signs in.
func TestServeWithEmbeddedDefaults(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	// Only the deadline differs from the defaults: bcrypt under -race on a busy machine can
	// take seconds, and this test is about the defaults, not about deadlines.
	slow := filepath.Join(dir, "callgate.yaml")
	if err := os.WriteFile(slow, []byte("script:\n  timeout: 60s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, out := runServeUntilReady(t, nil, "--data", data, "--scripts", repoPath("scripts"), "--config", slow)

	info, err := os.Stat(filepath.Join(data, "secret"))
	if err != nil {
		t.Fatalf("generated secret: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode: got %v, want 0600", info.Mode().Perm())
	}
	if !strings.Contains(out.String(), "generated a development secret") {
		t.Errorf("no warning about the generated secret:\n%s", out)
	}
	secret, _ := os.ReadFile(filepath.Join(data, "secret"))
	if strings.Contains(out.String(), strings.TrimSpace(string(secret))) {
		t.Errorf("the secret appears in the output")
	}
	m := regexp.MustCompile(`username: (\S+)\s+password: (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no demo user printed:\n%s", out)
	}
	client := newBrowserClient(t)
	gw := &testGateway{URL: base}
	res := signInWithCredentials(t, client, gw, m[1], m[2])
	if res.Status != 200 || !strings.Contains(string(res.Body), `"url":"`+base) {
		t.Fatalf("demo sign-in: got %d %s", res.Status, res.Body)
	}
	page := do(t, client, mustRequest(t, http.MethodGet, base+"/", nil))
	if !strings.Contains(string(page.Body), "Demo User") || !strings.Contains(string(page.Body), "Sign out") {
		t.Errorf("home page after sign-in lacks the user and the sign-out button:\n%s", page.Body)
	}
}

func mustRequest(t *testing.T, method, target string, body *strings.Reader) *http.Request {
	t.Helper()
	var req *http.Request
	var err error
	if body == nil {
		req, err = http.NewRequest(method, target, nil)
	} else {
		req, err = http.NewRequest(method, target, body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestServeRefusesBadConfiguration: an invalid setting stops serve with a message naming the
// field; a broken script stops it with file:line:column and the offending line.
func TestServeRefusesBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	broken := filepath.Join(dir, "broken")
	write("broken/auth.config.js", "import Credentials from \"callgate/providers/credentials\";\nexport default {\n  providers: [Credentials({ authorize() { return null } })],\n  callbacks: { jwt({ token }) { return token +* 1 } },\n};\n")
	badCallback := filepath.Join(dir, "badcallback")
	write("badcallback/auth.config.js", "import Credentials from \"callgate/providers/credentials\";\nexport default {\n  providers: [Credentials({ authorize() { return null } })],\n  callbacks: { jwt: \"not a function\" },\n};\n")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"unknown YAML field", nil, []string{"--config", write("a.yaml", "lisen: 1.2.3.4:80\n")}, []string{"field lisen not found"}},
		{"bad log level", nil, []string{"--config", write("b.yaml", "log:\n  level: loud\n")}, []string{"log.level", `"loud"`}},
		{"bad duration", nil, []string{"--config", write("c.yaml", "script:\n  timeout: soon\n")}, []string{`"soon"`}},
		{"unknown callback timeout", nil, []string{"--config", write("d.yaml", "script:\n  timeouts:\n    jwtt: 1s\n")}, []string{"script.timeouts.jwtt"}},
		{"bad env name", nil, []string{"--config", write("e.yaml", "env: [\"A-B\"]\n")}, []string{"env[0]"}},
		{"bad url flag", nil, []string{"--url", "ftp://example.com"}, []string{"url", "http or https"}},
		{"url with a path", map[string]string{"AUTH_URL": "https://example.com/app"}, nil, []string{"url", "/app"}},
		{"bad listen", nil, []string{"--listen", "nonsense"}, []string{"listen"}},
		{"stray argument", nil, []string{"now"}, []string{"no arguments"}},
		{"syntax error", map[string]string{"AUTH_SECRET": "s"}, []string{"--scripts", broken}, []string{"auth.config.js:4:", "return token +* 1"}},
		{"callback not a function", map[string]string{"AUTH_SECRET": "s"}, []string{"--scripts", badCallback}, []string{"callbacks.jwt", "function"}},
		{"no scripts", map[string]string{"AUTH_SECRET": "s"}, []string{"--scripts", filepath.Join(dir, "none")}, []string{"none", "no such file or directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(k string) string { return tc.env[k] }}
			args := append([]string{"serve", "--data", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0"}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := c.run(ctx, args)
			if err == nil {
				t.Fatalf("serve %v: got nil error, want a refusal", tc.args)
			}
			msg := err.Error() + "\n" + out.String()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestServeHelp: --help prints the usage and is not an error.
func TestServeHelp(t *testing.T) {
	var out bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	err := c.run(context.Background(), []string{"serve", "--help"})
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-listen") || !strings.Contains(out.String(), "AUTH_SECRET") {
		t.Errorf("serve --help: got %v\n%s", err, out.String())
	}
}

// TestServeSecretFromEnvironment: AUTH_SECRET (a comma-separated list) wins, no file is written,
// and a token encrypted with the second secret is still accepted.
func TestServeSecretFromEnvironment(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base, _ := runServeUntilReady(t, map[string]string{"AUTH_SECRET": "new-secret, old-secret"},
		"--data", data, "--scripts", repoPath("scripts"))
	if _, err := os.Stat(filepath.Join(data, "secret")); !os.IsNotExist(err) {
		t.Errorf("a secret file was written although AUTH_SECRET is set (%v)", err)
	}
	old, err := token.NewKeyRing([]string{"old-secret"}, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := old.Encode(map[string]any{"name": "Rotated", "sub": "1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req := mustRequest(t, http.MethodGet, base+"/api/auth/session", nil)
	req.Header.Set("Cookie", "next-auth.session-token="+tok)
	res := do(t, newBrowserClient(t), req)
	if !strings.Contains(string(res.Body), `"name":"Rotated"`) {
		t.Errorf("token under the second secret: got %d %s, want its session", res.Status, res.Body)
	}
}
