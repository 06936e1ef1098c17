package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evanw/esbuild/pkg/api"
)

// nextAuthClientPage is the proxied app's page: it shows getSession() and signs in with
// signIn("hydra"), both from the real next-auth/react client bundled by bundleNextAuthClient.
const nextAuthClientPage = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>next-auth/react client</title>
<script src="/app/next-auth-client.js"></script></head>
<body><h1>App using next-auth/react</h1>
<button id="signin">Sign in with Hydra</button>
<pre id="session">loading…</pre>
<script>
NextAuthClient.getSession().then((s) => {
  document.getElementById("session").textContent = JSON.stringify(s);
  document.body.dataset.ready = "1";
});
document.getElementById("signin").addEventListener("click", () => {
  NextAuthClient.signIn("hydra", { callbackUrl: location.origin + "/app/?signed-in=1" });
});
</script></body></html>`

// bundleNextAuthClient bundles next-auth/react (from testdata/browser/node_modules) for a
// plain page with esbuild. In a Next.js app the bundler supplies process.env.NEXTAUTH_URL;
// here a banner defines it, so the client talks to the gateway at origin.
func bundleNextAuthClient(t *testing.T, pkgDir, origin string) []byte {
	t.Helper()
	abs, err := filepath.Abs(pkgDir)
	if err != nil {
		t.Fatal(err)
	}
	res := api.Build(api.BuildOptions{
		Stdin: &api.StdinOptions{
			Contents:   `export { signIn, signOut, getSession, getProviders } from "next-auth/react";`,
			ResolveDir: abs, Loader: api.LoaderJS, Sourcefile: "next-auth-client-entry.js",
		},
		Bundle: true, Write: false, Platform: api.PlatformBrowser, Format: api.FormatIIFE,
		GlobalName: "NextAuthClient", Target: api.ES2020,
		Define:   map[string]string{"process.env.NODE_ENV": strconv.Quote("production")},
		Banner:   map[string]string{"js": "var process = { env: { NEXTAUTH_URL: " + strconv.Quote(origin) + " } };"},
		LogLevel: api.LogLevelSilent,
	})
	if len(res.Errors) > 0 {
		var msgs []string
		for _, m := range res.Errors {
			msgs = append(msgs, m.Text)
		}
		t.Fatalf("bundle next-auth/react: %s", strings.Join(msgs, "; "))
	}
	if len(res.OutputFiles) != 1 {
		t.Fatalf("bundle next-auth/react: got %d output files, want 1", len(res.OutputFiles))
	}
	return res.OutputFiles[0].Contents
}

// TestBrowserNextAuthClientSignInThroughHydra runs next-auth/react's signIn("hydra") in
// headless Chromium on a page of an app behind the gateway: through Ory Hydra's login form
// and consent, back through the gateway's callback, to the page, where getSession()
// returns the user.
func TestBrowserNextAuthClientSignInThroughHydra(t *testing.T) {
	chromium, node, pkg := requireBrowserPackages(t)
	hydra := startHydraProvider(t)

	// The bundle needs the gateway's origin, known only once the gateway listens, after
	// the app has started.
	var bundle atomic.Pointer[[]byte]
	app := nextAuthPageApp(t, nextAuthClientPage, &bundle)

	const clientID, clientSecret = "gateway-browser", "gateway-browser-secret-0123456789"
	scripts := t.TempDir()
	authConfig := fmt.Sprintf(`import OIDC from "callgate/providers/oidc";
export default {
  providers: [OIDC({ id: "hydra", name: "Hydra", issuer: %q, clientId: %q, clientSecret: %q,
    authorization: { params: { scope: "openid offline_access email profile" } } })],
};
`, hydra.Issuer, clientID, clientSecret)
	if err := os.WriteFile(filepath.Join(scripts, "auth.config.js"), []byte(authConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	routes := fmt.Sprintf("routes:\n  - {name: app, path: /app, upstream: %s, public: true}\n", app.URL)
	if err := os.WriteFile(cfg, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{ScriptsDir: scripts, Args: []string{"--config", cfg}})
	js := bundleNextAuthClient(t, pkg, gw.URL)
	bundle.Store(&js)
	hydra.createClient(t, clientID, clientSecret, gw.URL+"/api/auth/callback/hydra", nil)

	outDir := screenshotDir(t)

	start := gw.URL + "/app/"
	landed := gw.URL + "/app/?signed-in=1"
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "nextauth-signin.mjs")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "START_URL="+start, "LANDED_URL="+landed, "USERNAME=ada",
		"OUT_DIR="+outDir, "PROFILE_DIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("node nextauth-signin.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var got struct {
		SessionBefore, ProviderLoginURL, LandedURL, SessionAfter string
		Navigations, PageErrors, Screenshots                     []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("node nextauth-signin.mjs printed %q: %v", stdout.String(), err)
	}
	if got.SessionBefore != "null" {
		t.Errorf("getSession() before sign-in: got %s, want null", got.SessionBefore)
	}
	if !strings.HasPrefix(got.ProviderLoginURL, hydra.LoginApp+"/login?login_challenge=") {
		t.Errorf("provider login page: got %q, want Hydra's login app at %s/login", got.ProviderLoginURL, hydra.LoginApp)
	}
	if got.LandedURL != landed {
		t.Errorf("landed on %q, want the callbackUrl given to signIn, %q", got.LandedURL, landed)
	}
	var session struct {
		User struct {
			Name, Email string
		}
		Expires string
	}
	if err := json.Unmarshal([]byte(got.SessionAfter), &session); err != nil {
		t.Fatalf("getSession() after sign-in: %q is not a session: %v", got.SessionAfter, err)
	}
	if session.User.Email != "ada@example.com" || session.User.Name != "Ada Lovelace" || session.Expires == "" {
		t.Errorf("getSession() after sign-in: got %s, want Ada Lovelace <ada@example.com> with an expiry", got.SessionAfter)
	}
	// The trip, in order: the page, Hydra's authorization endpoint (left through redirects,
	// so it is not a navigation of its own), Hydra's login form, the gateway's callback
	// (a redirect as well), the page again.
	var trip []string
	for _, u := range got.Navigations {
		switch {
		case strings.HasPrefix(u, gw.URL+"/app/"):
			trip = append(trip, "app")
		case strings.HasPrefix(u, hydra.LoginApp+"/login"):
			trip = append(trip, "provider-login")
		}
	}
	if want := "app,provider-login,app"; strings.Join(trip, ",") != want {
		t.Errorf("navigations: got %s (%v), want %s", strings.Join(trip, ","), got.Navigations, want)
	}
	if len(got.PageErrors) > 0 {
		t.Errorf("errors in the page: %v", got.PageErrors)
	}
	if len(got.Screenshots) != 3 {
		t.Errorf("screenshots: got %d, want 3", len(got.Screenshots))
	}
	for _, shot := range got.Screenshots {
		if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s: %v (want a PNG file)", shot, err)
		}
	}
	if strings.Contains(gw.Logs(), "OAUTH_CALLBACK_ERROR") {
		t.Errorf("the gateway refused a callback; log:\n%s", gw.Logs())
	}
}

// requireBrowserPackages returns Chromium, Node and testdata/browser, whose npm packages
// (playwright-core, next-auth, react) must be installed: in CI their absence fails the test,
// elsewhere it skips it.
func requireBrowserPackages(t *testing.T) (chromium, node, pkg string) {
	t.Helper()
	chromium = requireTool(t, "chromium", "/usr/bin/chromium")
	node = requireTool(t, "node")
	pkg = repoPath("testdata", "browser")
	for _, dep := range []string{"playwright-core", "next-auth", "react"} {
		if _, err := os.Stat(filepath.Join(pkg, "node_modules", dep, "package.json")); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed in %s (test.sh runs npm ci there)", dep, pkg)
			}
			t.Skipf("%s is not installed in %s (run ./test.sh or npm ci there); skipping", dep, pkg)
		}
	}
	return chromium, node, pkg
}

// nextAuthPageApp is the app behind the gateway in the browser tests: page at /app/, and
// at /app/next-auth-client.js the next-auth/react bundle, once the test has built it into
// bundle (it needs the gateway's origin, known only after the app has started).
func nextAuthPageApp(t *testing.T, page string, bundle *atomic.Pointer[[]byte]) *httptest.Server {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, page)
		case "/app/next-auth-client.js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			if b := bundle.Load(); b != nil {
				_, _ = w.Write(*b)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(app.Close)
	return app
}
