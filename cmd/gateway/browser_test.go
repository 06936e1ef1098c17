package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrowserSignInThroughProxy opens a protected URL of a proxied app in headless Chromium,
// is sent to the sign-in page, signs in with the form and lands on the original URL, which
// greets the user by the name the gateway put in X-Callgate-Name. Screenshots of the sign-in
// page and of the landed page are kept under $ARTIFACTS_DIR when set, else in a temporary
// directory the test prints.
func TestBrowserSignInThroughProxy(t *testing.T) {
	chromium := requireTool(t, "chromium", "/usr/bin/chromium")
	node := requireTool(t, "node")
	pkg := repoPath("testdata", "browser")
	if _, err := os.Stat(filepath.Join(pkg, "node_modules", "playwright-core", "package.json")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("playwright-core is not installed in %s (test.sh runs npm ci there)", pkg)
		}
		t.Skipf("playwright-core is not installed in %s (run ./test.sh or npm ci there); skipping", pkg)
	}

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><title>Reports</title><h1 id="greeting">Hello, %s</h1><p>You asked for %s</p>`,
			html.EscapeString(r.Header.Get("X-Callgate-Name")), html.EscapeString(r.URL.RequestURI()))
	}))
	t.Cleanup(app.Close)
	gw := startGateway(t, gatewayOptions{Args: []string{"--upstream", app.URL}})

	outDir := screenshotDir(t)

	start := gw.URL + "/reports/2030?view=full"
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "signin.mjs")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "START_URL="+start, "USERNAME=jatin", "PASSWORD=secret",
		"OUT_DIR="+outDir, "PROFILE_DIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("node signin.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var got struct {
		SigninURL, LandedURL, Greeting string
		Screenshots                    []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("node signin.mjs printed %q: %v", stdout.String(), err)
	}
	wantSignin := gw.URL + "/api/auth/signin?callbackUrl=" + url.QueryEscape(start)
	if got.SigninURL != wantSignin {
		t.Errorf("sign-in page URL: got %q, want %q", got.SigninURL, wantSignin)
	}
	if got.LandedURL != start {
		t.Errorf("landed on %q, want the original URL %q", got.LandedURL, start)
	}
	if strings.TrimSpace(got.Greeting) != "Hello, Jatin" {
		t.Errorf("app greeting: got %q, want %q", got.Greeting, "Hello, Jatin")
	}
	for _, shot := range got.Screenshots {
		if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s: %v (want a PNG file)", shot, err)
		}
	}
}

// screenshotDir is where a browser test saves its screenshots: $ARTIFACTS_DIR/browser when
// the test run keeps artifacts, else a temporary directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, "browser")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("create artifacts directory: %v", err)
		}
	}
	t.Logf("screenshots: %s", dir)
	return dir
}
