package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireTool returns the path of a system tool, skipping the test with the reason when it
// is missing, except in CI, where a missing tool is a failure (.ci/run installs it).
func requireTool(t *testing.T, name string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, f := range fallbacks {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI (apt-get install -y %s)", name, name)
	}
	t.Skipf("%s is not installed (apt-get install -y %s); skipping", name, name)
	return ""
}

// nginxScaffold is what the documented auth_request block (docs/proxy.md) needs around it
// to run as a test: a pid file, logs and temporary paths in the test's directory, and the
// server it goes in. The block itself is read from the doc, so the doc cannot drift from
// what is tested.
const nginxScaffold = `
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path {{DIR}}/body;
  proxy_temp_path {{DIR}}/proxy;
  fastcgi_temp_path {{DIR}}/fastcgi;
  uwsgi_temp_path {{DIR}}/uwsgi;
  scgi_temp_path {{DIR}}/scgi;
  server {
    listen {{LISTEN}};
{{DOCUMENTED}}
  }
}
`

// The addresses the documented block uses for the gateway and the app.
const (
	docGatewayAddr  = "127.0.0.1:3000"
	docUpstreamAddr = "127.0.0.1:8080"
)

// documentedNginxBlock returns the nginx block under "### nginx" in docs/proxy.md.
func documentedNginxBlock(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(repoPath("docs", "proxy.md"))
	if err != nil {
		t.Fatalf("read docs/proxy.md: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### nginx\n")
	if !ok {
		t.Fatal("docs/proxy.md: no \"### nginx\" section")
	}
	_, block, ok := strings.Cut(section, "```nginx\n")
	if !ok {
		t.Fatal("docs/proxy.md: no ```nginx block in the nginx section")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("docs/proxy.md: the ```nginx block is not closed")
	}
	for _, addr := range []string{docGatewayAddr, docUpstreamAddr} {
		if !strings.Contains(block, addr) {
			t.Fatalf("docs/proxy.md: the nginx block no longer uses %s, which the test replaces", addr)
		}
	}
	return block
}

func startNginx(t *testing.T, listen, gateway, upstream string) {
	t.Helper()
	bin := requireTool(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	block := strings.NewReplacer(docGatewayAddr, gateway, docUpstreamAddr, upstream).Replace(documentedNginxBlock(t))
	conf := strings.NewReplacer("{{DIR}}", dir, "{{LISTEN}}", listen, "{{DOCUMENTED}}", block).Replace(nginxScaffold)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatalf("write nginx config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// One process (no master and workers): stopping it stops nginx, and no orphaned worker
	// can hold the output pipe open.
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off; master_process off;")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nnginx error.log:\n%s", out, log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited before listening: %s\n%s", out, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s within 10s", listen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNginxAuthRequest(t *testing.T) {
	requireTool(t, "nginx", "/usr/sbin/nginx")
	up := echoUpstream(t)
	nginxAddr := freeLoopbackAddr(t)
	nginxURL := "http://" + nginxAddr
	// The gateway's public URL is nginx's: browsers only ever talk to nginx.
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: filepath.Join("testdata", "proxy-scripts"),
		Args:       []string{"--url", nginxURL, "--config", writeConfig(t, "proxy:\n  trusted_proxies: [127.0.0.1]\n")},
	})
	startNginx(t, nginxAddr, strings.TrimPrefix(gw.URL, "http://"), strings.TrimPrefix(up.URL, "http://"))

	client := newBrowserClient(t)
	html := http.Header{"Accept": {"text/html"}}

	// Signed out: nginx turns the gateway's 401 into the sign-in redirect, even with a
	// forged identity header. The original URL's query (with an encoded & in a value)
	// must come back whole in callbackUrl.
	const page = "/reports/42?tab=a%26b&x=1"
	res := get(t, client, nginxURL+page, http.Header{"Accept": {"text/html"}, "X-Callgate-User": {"admin"}})
	wantLocation := nginxURL + "/api/auth/signin?callbackUrl=" + url.QueryEscape(nginxURL+page)
	if res.Status != http.StatusFound || res.Header.Get("Location") != wantLocation {
		t.Fatalf("signed out GET %s through nginx: got %d Location %q, want 302 %q; body %s", page, res.Status, res.Header.Get("Location"), wantLocation, res.Body)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Query().Get("callbackUrl") != nginxURL+page {
		t.Fatalf("sign-in redirect %q: got callbackUrl %q, want %q", res.Header.Get("Location"), loc.Query().Get("callbackUrl"), nginxURL+page)
	}

	// Sign in through nginx with that callbackUrl, as the sign-in form would.
	var csrf struct{ CSRFToken string }
	csrfRes := get(t, client, nginxURL+"/api/auth/csrf", nil)
	if err := json.Unmarshal(csrfRes.Body, &csrf); err != nil || csrf.CSRFToken == "" {
		t.Fatalf("GET /api/auth/csrf through nginx: got %d %s", csrfRes.Status, csrfRes.Body)
	}
	form := url.Values{"username": {"jatin"}, "password": {"secret"}, "csrfToken": {csrf.CSRFToken}, "callbackUrl": {loc.Query().Get("callbackUrl")}, "json": {"true"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, nginxURL+"/api/auth/callback/credentials", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	signIn := do(t, client, req)
	var landed struct{ URL string }
	if err := json.Unmarshal(signIn.Body, &landed); err != nil || landed.URL != nginxURL+page {
		t.Fatalf("sign in through nginx: got %d %s, want url %s", signIn.Status, signIn.Body, nginxURL+page)
	}

	// Signed in: the upstream gets the identity nginx copied from the auth answer.
	res = get(t, client, landed.URL, html)
	var s seen
	if err := json.Unmarshal(res.Body, &s); err != nil || res.Status != http.StatusOK {
		t.Fatalf("signed in GET through nginx: got %d %s, want 200 from the upstream", res.Status, res.Body)
	}
	for header, want := range map[string]string{"X-Callgate-User": "65a1f0c2e4b0a1b2c3d4e5f6", "X-Callgate-Email": "jatin@example.com"} {
		if s.Headers[header] != want {
			t.Errorf("upstream behind nginx: %s got %q, want %q", header, s.Headers[header], want)
		}
	}
	if s.Path != page {
		t.Errorf("upstream behind nginx: got %q, want %s", s.Path, page)
	}
	if parts := strings.Split(s.Headers["X-Callgate-Assertion"], "."); len(parts) != 3 {
		t.Errorf("upstream behind nginx: got assertion %q, want a JWT", s.Headers["X-Callgate-Assertion"])
	}

	// A redirect chosen by the authorized callback reaches the browser through the same
	// @signin location.
	if res := get(t, client, nginxURL+"/redirect", html); res.Status != http.StatusFound || res.Header.Get("Location") != nginxURL+"/elsewhere" && res.Header.Get("Location") != "/elsewhere" {
		t.Errorf("signed in GET /redirect through nginx: got %d Location %q, want 302 to /elsewhere", res.Status, res.Header.Get("Location"))
	}

	// Denied by the authorized callback: nginx passes the 403 on.
	if res := get(t, client, nginxURL+"/deny", html); res.Status != http.StatusForbidden {
		t.Errorf("signed in GET /deny through nginx: got %d, want 403", res.Status)
	}
}
