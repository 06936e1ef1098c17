package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// nextAuthSignOutPage is nextAuthClientPage with a sign-out button: signOut() from
// next-auth/react POSTs /api/auth/signout with json=true and goes to the {url} it answers.
const nextAuthSignOutPage = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>next-auth/react client</title>
<script src="/app/next-auth-client.js"></script></head>
<body><h1>App using next-auth/react</h1>
<button id="signin">Sign in with Hydra</button>
<button id="signout">Sign out</button>
<pre id="session">loading…</pre>
<script>
NextAuthClient.getSession().then((s) => {
  document.getElementById("session").textContent = JSON.stringify(s);
  document.body.dataset.ready = "1";
});
document.getElementById("signin").addEventListener("click", () => {
  NextAuthClient.signIn("hydra", { callbackUrl: location.origin + "/app/?signed-in=1" });
});
document.getElementById("signout").addEventListener("click", () => {
  NextAuthClient.signOut({ callbackUrl: location.origin + "/app/?signed-out=1" });
});
</script></body></html>`

// TestBrowserNextAuthClientSignOutThroughHydra runs RP-initiated logout in headless
// Chromium: next-auth/react's signIn("hydra") through Ory Hydra, then its signOut(). The
// gateway ends its session and sends the browser through Hydra's end_session_endpoint
// (with the session's ID token and the page as post_logout_redirect_uri); Hydra ends its
// own session (the login app confirms) and returns the browser to the page, signed out.
// Signing in again must meet Hydra's login form: with Hydra's session alive, the login app
// would let the browser through without it.
func TestBrowserNextAuthClientSignOutThroughHydra(t *testing.T) {
	chromium, node, pkg := requireBrowserPackages(t)
	hydra := startHydraProvider(t)

	var bundle atomic.Pointer[[]byte]
	app := nextAuthPageApp(t, nextAuthSignOutPage, &bundle)

	const clientID, clientSecret = "gateway-browser-logout", "gateway-browser-logout-secret-0123456789"
	scripts := t.TempDir()
	authConfig := fmt.Sprintf(`import OIDC from "callgate/providers/oidc";
export default {
  providers: [OIDC({ id: "hydra", name: "Hydra", issuer: %q, clientId: %q, clientSecret: %q,
    authorization: { params: { scope: "openid offline_access email profile" } },
    logout: { endSession: true, backchannel: true } })],
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
	signedOut := gw.URL + "/app/?signed-out=1"
	hydra.createClient(t, clientID, clientSecret, gw.URL+"/api/auth/callback/hydra", map[string]any{
		"post_logout_redirect_uris": []string{signedOut},
		"backchannel_logout_uri":    gw.URL + "/api/auth/backchannel-logout/hydra",
	})

	outDir := screenshotDir(t)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "nextauth-signout.mjs")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "START_URL="+gw.URL+"/app/", "LANDED_URL="+gw.URL+"/app/?signed-in=1",
		"SIGNED_OUT_URL="+signedOut, "USERNAME=ada", "OUT_DIR="+outDir, "PROFILE_DIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("node nextauth-signout.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var got struct {
		SessionSignedIn, SignedOutURL, SessionSignedOut, LoginAgainURL string
		SignOutTrip, Navigations, PageErrors, Screenshots              []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("node nextauth-signout.mjs printed %q: %v", stdout.String(), err)
	}
	if !strings.Contains(got.SessionSignedIn, `"email":"ada@example.com"`) {
		t.Errorf("getSession() after sign-in: got %s, want Ada's session", got.SessionSignedIn)
	}
	if got.SignedOutURL != signedOut || got.SessionSignedOut != "null" {
		t.Errorf("after signOut(): at %q with session %s, want %q and null", got.SignedOutURL, got.SessionSignedOut, signedOut)
	}
	// The trip: Hydra's end_session_endpoint with the hint, the login app's logout
	// confirmation, back to the page.
	var trip []string
	for _, u := range got.SignOutTrip {
		switch {
		case strings.HasPrefix(u, hydra.Issuer+"/oauth2/sessions/logout?") && strings.Contains(u, "id_token_hint="):
			trip = append(trip, "provider-end-session")
		case strings.HasPrefix(u, hydra.LoginApp+"/logout?logout_challenge="):
			trip = append(trip, "provider-logout-confirm")
		case u == signedOut:
			trip = append(trip, "app")
		}
	}
	if want := "provider-end-session,provider-logout-confirm,app"; strings.Join(trip, ",") != want {
		t.Errorf("sign-out trip: got %s (%v), want %s", strings.Join(trip, ","), got.SignOutTrip, want)
	}
	if !strings.HasPrefix(got.LoginAgainURL, hydra.LoginApp+"/login?login_challenge=") {
		t.Errorf("signing in again reached %q, want Hydra's login form: the provider session should be over", got.LoginAgainURL)
	}
	if len(got.PageErrors) > 0 {
		t.Errorf("errors in the page: %v", got.PageErrors)
	}
	for _, shot := range got.Screenshots {
		if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s: %v (want a PNG file)", shot, err)
		}
	}
	if logs := gw.Logs(); strings.Contains(logs, "SIGNOUT_ERROR") || strings.Contains(logs, "OAUTH_CALLBACK_ERROR") {
		t.Errorf("the gateway logged a failure; log:\n%s", logs)
	}
}
