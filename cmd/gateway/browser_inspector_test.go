package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// inspectorScripts defines every callback a credentials sign-in and a session read run,
// so that the inspector has each of them to show.
const inspectorScripts = `import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

export default {
  providers: [
    Credentials({
      name: "credentials",
      credentials: {
        username: { label: "Username", type: "text" },
        password: { label: "Password", type: "password" },
      },
      async authorize(credentials) {
        const user = await users.findOne({ username: credentials?.username });
        if (!user || !(await bcrypt.compare(credentials?.password ?? "", user.password))) return null;
        return { id: user._id.toString(), name: user.name, email: user.email, role: user.role };
      },
    }),
  ],
  callbacks: {
    async signIn({ user }) {
      return user.role !== "suspended";
    },
    async redirect({ url, baseUrl }) {
      return url.startsWith(baseUrl) ? url : baseUrl;
    },
    async jwt({ token, user, trigger }) {
      if (user) {
        token.role = user.role;
        token.signedInBy = trigger;
      }
      return token;
    },
    async session({ session, token }) {
      session.user.role = token.role;
      return session;
    },
  },
};
`

// inspectorStep is one step of a flow as the inspector page draws it.
type inspectorStep struct {
	Callback, Core, Badge, Result string
	Args                          []string
}

type inspectorFlowView struct {
	ID, Route, Status string
	Steps             []inspectorStep
}

// callbacks are the names of the flow's callback steps, in order.
func (f inspectorFlowView) callbacks() []string {
	var out []string
	for _, s := range f.Steps {
		if s.Callback != "" {
			out = append(out, s.Callback)
		}
	}
	return out
}

// step is the first step of the flow for the callback (or core step) named, and its index;
// -1 when there is none.
func (f inspectorFlowView) step(callback, core string) (inspectorStep, int) {
	for i, s := range f.Steps {
		if (callback != "" && s.Callback == callback) || (core != "" && s.Core == core) {
			return s, i
		}
	}
	return inspectorStep{}, -1
}

// TestBrowserInspectorShowsSignInLive opens the inspector in headless Chromium on a gateway
// started with --dev, then signs in with the credentials form and reads the session in a
// second page. The inspector page draws, live and without a reload, the sign-in's flow
// (redirect checking the callback URL, then authorize, signIn and jwt with trigger signIn,
// then the core's redirect) and the session read's (jwt, then session). The password, the
// CSRF token and the session cookie's value appear nowhere: not in the page, not in the raw
// event stream, not in the JSON snapshot. Screenshots of the inspector after each step,
// its HTML, the raw stream and the snapshot are kept under $CALLGATE_ARTIFACTS (or
// $ARTIFACTS_DIR/browser) when set, else in a temporary directory the test prints.
func TestBrowserInspectorShowsSignInLive(t *testing.T) {
	chromium, node, pkg := requireBrowserPackages(t)

	// A password of this run only, so that finding it anywhere can mean one thing.
	raw := make([]byte, 12)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	password := "pw-" + hex.EncodeToString(raw)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users, err := json.Marshal([]map[string]string{{
		"_id": "65a1f0c2e4b0a1b2c3d4e5f6", "username": "jatin", "name": "Jatin", "email": "jatin@example.com",
		"role": "admin", "password": string(hash),
	}})
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(usersFile, users, 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: writeFiles(t, map[string]string{"auth.config.js": inspectorScripts}),
		UsersFile:  usersFile,
		Args:       []string{"--dev"},
		// The inspector answers loopback hosts; the page is opened the way a developer does.
		Host: "localhost",
	})

	outDir := inspectorArtifactsDir(t)
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "inspector.mjs")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "BASE_URL="+gw.URL, "USERNAME=jatin", "PASSWORD="+password,
		"OUT_DIR="+outDir, "PROFILE_DIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("node inspector.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var got struct {
		LandedURL     string
		Session       struct{ User struct{ Name, Role string } }
		Flows         []inspectorFlowView
		SameDocument  bool
		Navigations   int
		CSRFToken     string
		SessionCookie string
		Files         struct{ HTML, Events, Flows string }
		Screenshots   []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("node inspector.mjs printed %q: %v", stdout.String(), err)
	}
	for _, shot := range got.Screenshots {
		if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s: %v (want a PNG file)", shot, err)
		} else {
			t.Logf("screenshot: %s", shot)
		}
	}
	if got.LandedURL != gw.URL+"/" {
		t.Errorf("after sign-in the browser landed on %q, want %q", got.LandedURL, gw.URL+"/")
	}
	if got.Session.User.Name != "Jatin" || got.Session.User.Role != "admin" {
		t.Errorf("GET /api/auth/session: got user %+v, want Jatin with the role the session callback adds", got.Session.User)
	}
	if !got.SameDocument || got.Navigations != 1 {
		t.Errorf("the inspector page was reloaded (same document: %v, navigations: %d): it must draw flows live", got.SameDocument, got.Navigations)
	}
	if len(got.Flows) != 2 {
		t.Fatalf("got %d flows from the driver, want the sign-in's and the session read's", len(got.Flows))
	}

	signIn, read := got.Flows[0], got.Flows[1]
	if signIn.Route != "POST /api/auth/callback/credentials" || !strings.HasPrefix(signIn.Status, "302 ") {
		t.Errorf("sign-in flow: got %q answered %q, want POST /api/auth/callback/credentials answered 302", signIn.Route, signIn.Status)
	}
	// The callback URL is checked first (NextAuth does so for every request), then the
	// credentials, the sign-in decision and the token; the core redirects last.
	wantOrder := []string{"callbacks.redirect", "authorize", "callbacks.signIn", "callbacks.jwt"}
	if cbs := signIn.callbacks(); !slices.Equal(cbs, wantOrder) {
		t.Errorf("sign-in flow callbacks: got %q, want %q", cbs, wantOrder)
	}
	jwt, jwtAt := signIn.step("callbacks.jwt", "")
	if jwt.Badge != "trigger: signIn" {
		t.Errorf("sign-in flow: callbacks.jwt badge %q, want %q", jwt.Badge, "trigger: signIn")
	}
	if !strings.Contains(jwt.Result, `"signedInBy": "signIn"`) {
		t.Errorf("sign-in flow: callbacks.jwt shows result %q, want the token it returned (signedInBy: signIn)", jwt.Result)
	}
	if _, at := signIn.step("", "redirect"); at < jwtAt {
		t.Errorf("sign-in flow: core redirect step at %d, want one after callbacks.jwt (at %d); steps %+v", at, jwtAt, signIn.Steps)
	}
	authorize, _ := signIn.step("authorize", "")
	if len(authorize.Args) == 0 || !strings.Contains(authorize.Args[0], `"username": "jatin"`) ||
		!strings.Contains(authorize.Args[0], `"password": "[redacted]"`) {
		t.Errorf("sign-in flow: authorize's arguments %q, want the credentials with the username and the password redacted", authorize.Args)
	}

	if read.Route != "GET /api/auth/session" || !strings.HasPrefix(read.Status, "200 ") {
		t.Errorf("session flow: got %q answered %q, want GET /api/auth/session answered 200", read.Route, read.Status)
	}
	_, readJWT := read.step("callbacks.jwt", "")
	sess, readSession := read.step("callbacks.session", "")
	if readJWT < 0 || readSession < readJWT {
		t.Errorf("session flow callbacks: got %q, want callbacks.jwt then callbacks.session", read.callbacks())
	}
	if !strings.Contains(sess.Result, `"role": "admin"`) {
		t.Errorf("session flow: callbacks.session shows result %q, want the session it returned (role admin)", sess.Result)
	}

	// The secrets the sign-in carried, and the three places the inspector shows things.
	secrets := map[string]string{"password": password, "CSRF token": got.CSRFToken, "session cookie": got.SessionCookie}
	for name, v := range secrets {
		if len(v) < 16 {
			t.Fatalf("the driver saw no %s (%q): nothing to look for", name, v)
		}
	}
	for _, place := range []struct{ name, path, mustShow string }{
		{"the inspector page's HTML", got.Files.HTML, "authorize"},
		{"the raw event stream", got.Files.Events, `"name":"authorize"`},
		{"the /-/inspector/flows snapshot", got.Files.Flows, `"name":"authorize"`},
	} {
		b, err := os.ReadFile(place.path)
		if err != nil {
			t.Fatalf("read %s: %v", place.name, err)
		}
		t.Logf("%s: %s", place.name, place.path)
		text := string(b)
		// The search must cover the sign-in: the place holds authorize's call, redacted.
		if !strings.Contains(text, place.mustShow) || !strings.Contains(text, "[redacted]") {
			t.Errorf("%s does not show authorize's call with a redacted value", place.name)
		}
		for name, v := range secrets {
			if strings.Contains(text, v) {
				t.Errorf("%s contains the %s", place.name, name)
			}
		}
	}
}

// inspectorArtifactsDir is where the inspector's browser test keeps what it saw:
// $CALLGATE_ARTIFACTS/inspector when set, else screenshotDir's choice.
func inspectorArtifactsDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("CALLGATE_ARTIFACTS")
	if root == "" {
		return screenshotDir(t)
	}
	dir := filepath.Join(root, "inspector")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artifacts directory: %v", err)
	}
	t.Logf("artifacts: %s", dir)
	return dir
}
