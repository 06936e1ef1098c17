package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// nextAuthEmailPage is the proxied app's page for the e-mail sign-in: getSession(), and a
// button that calls signIn("email", {email}) from the real next-auth/react client.
const nextAuthEmailPage = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>next-auth/react e-mail</title>
<script src="/app/next-auth-client.js"></script></head>
<body><h1>App using next-auth/react</h1>
<button id="signin">Sign in by e-mail</button>
<pre id="session">loading…</pre>
<script>
NextAuthClient.getSession().then((s) => {
  document.getElementById("session").textContent = JSON.stringify(s);
  document.body.dataset.ready = "1";
});
document.getElementById("signin").addEventListener("click", () => {
  NextAuthClient.signIn("email", { email: "Grace@Example.com", callbackUrl: location.origin + "/app/?signed-in=1" });
});
</script></body></html>`

// TestBrowserNextAuthClientEmailSignIn runs next-auth/react's signIn("email") in headless
// Chromium on a page of an app behind the gateway: the gateway sends the link through
// Mailpit, the test reads it from Mailpit's API and the same browser opens it, landing on
// the page with getSession() returning the user.
func TestBrowserNextAuthClientEmailSignIn(t *testing.T) {
	chromium, node, pkg := requireBrowserPackages(t)
	mailpit := testkit.StartMailpit(t, testkit.MailpitBinary(t, repoPath()))

	var bundle atomic.Pointer[[]byte]
	app := nextAuthPageApp(t, nextAuthEmailPage, &bundle)
	scripts := t.TempDir()
	authConfig := fmt.Sprintf(`import Email from "callgate/providers/email";
export default { providers: [Email({ from: "Callgate <auth@example.com>", server: "smtp://%s:%d" })] };
`, mailpit.SMTPHost, mailpit.SMTPPort)
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

	start, landed := gw.URL+"/app/", gw.URL+"/app/?signed-in=1"
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "nextauth-email.mjs")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "START_URL="+start, "LANDED_URL="+landed,
		"OUT_DIR="+screenshotDir(t), "PROFILE_DIR="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testkit.SyncBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewScanner(stdout)
	next := func(into any) {
		t.Helper()
		if !out.Scan() {
			_ = cmd.Wait()
			t.Fatalf("node nextauth-email.mjs ended early: %v\nstderr: %s\ngateway log:\n%s", out.Err(), stderr.String(), gw.Logs())
		}
		if err := json.Unmarshal(out.Bytes(), into); err != nil {
			t.Fatalf("node nextauth-email.mjs printed %q: %v", out.Text(), err)
		}
	}
	var sent struct{ Stage, VerifyRequestURL string }
	next(&sent)
	if sent.Stage != "sent" {
		t.Fatalf("first stage: got %+v", sent)
	}
	// The message is in Mailpit by the time the gateway answered: its SMTP DATA was
	// accepted before the redirect to verify-request.
	msgs := mailpit.Messages(t)
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0].Address != "grace@example.com" {
		t.Fatalf("Mailpit messages: got %+v, want one to grace@example.com", msgs)
	}
	link := regexp.MustCompile(regexp.QuoteMeta(gw.URL) + `/api/auth/callback/email\?\S+`).FindString(mailpit.Message(t, msgs[0].ID).Text)
	if link == "" {
		t.Fatal("no sign-in link in the message")
	}
	if _, err := io.WriteString(stdin, link+"\n"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Stage, SessionBefore, VerifyRequestURL, VerifyRequestHeading, LandedURL, SessionAfter string
		PageErrors, Screenshots                                                               []string
	}
	next(&got)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node nextauth-email.mjs: %v\nstderr: %s", err, stderr.String())
	}
	if got.SessionBefore != "null" {
		t.Errorf("getSession() before sign-in: got %s, want null", got.SessionBefore)
	}
	if want := gw.URL + "/api/auth/verify-request?provider=email&type=email"; got.VerifyRequestURL != want || got.VerifyRequestHeading != "Check your email" {
		t.Errorf("after signIn: at %q (%q), want %s with \"Check your email\"", got.VerifyRequestURL, got.VerifyRequestHeading, want)
	}
	if got.LandedURL != landed {
		t.Errorf("landed on %q, want the callbackUrl given to signIn, %q", got.LandedURL, landed)
	}
	var session struct {
		User    struct{ Email string }
		Expires string
	}
	if err := json.Unmarshal([]byte(got.SessionAfter), &session); err != nil || session.User.Email != "grace@example.com" || session.Expires == "" {
		t.Errorf("getSession() after the link: got %s (%v), want grace@example.com with an expiry", got.SessionAfter, err)
	}
	if len(got.PageErrors) > 0 {
		t.Errorf("errors in the page: %v", got.PageErrors)
	}
	for _, shot := range got.Screenshots {
		if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s: %v (want a PNG file)", shot, err)
		}
	}
	if strings.Contains(gw.Logs(), "SIGNIN_EMAIL_ERROR") || strings.Contains(gw.Logs(), "CALLBACK_EMAIL_ERROR") {
		t.Errorf("the gateway refused a step; log:\n%s", gw.Logs())
	}
}
