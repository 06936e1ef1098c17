package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/token"
)

// migrationFixture is a NextAuth v4 app's auth files (testdata/nextauth-migration/README.md).
func migrationFixture(elem ...string) string {
	return repoPath(append([]string{"testdata", "nextauth-migration"}, elem...)...)
}

// copyFile copies src to dst byte for byte, creating dst's directory.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// migratedScripts is what docs/migrating-from-nextauth.md has the user do: the route file,
// its session types and the tsconfig.json copied into a scripts directory as they are, where
// the app has them (or, with routeAs, the route file as that name), and the user-lookup
// module replaced by the one reading the gateway's store.
func migratedScripts(t *testing.T, routeAs string) string {
	t.Helper()
	dir := t.TempDir()
	asIs := map[string]string{
		"app/api/auth/[...nextauth]/route.ts": "app/api/auth/[...nextauth]/route.ts",
		"types/next-auth.d.ts":                "types/next-auth.d.ts",
		"tsconfig.json":                       "tsconfig.json",
	}
	if routeAs != "" {
		asIs["app/api/auth/[...nextauth]/route.ts"] = routeAs
	}
	for from, to := range asIs {
		copyFile(t, migrationFixture(filepath.FromSlash(from)), filepath.Join(dir, filepath.FromSlash(to)))
	}
	copyFile(t, migrationFixture("callgate", "lib", "users.ts"), filepath.Join(dir, "lib", "users.ts"))

	// Copied as is: the files the gateway runs are the app's, byte for byte; only the lookup
	// module differs from the app's.
	for from, to := range asIs {
		want, _ := os.ReadFile(migrationFixture(filepath.FromSlash(from)))
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(to)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s is not the app's %s as is (%v)", to, from, err)
		}
	}
	app, _ := os.ReadFile(migrationFixture("lib", "users.ts"))
	moved, _ := os.ReadFile(filepath.Join(dir, "lib", "users.ts"))
	if bytes.Equal(app, moved) || !bytes.Contains(app, []byte("mongodb")) || !bytes.Contains(moved, []byte("callgate/store")) {
		t.Fatal("lib/users.ts: want the app's MongoDB lookup replaced by one reading callgate/store")
	}
	return dir
}

// TestNextAuthRouteFileMigration: a NextAuth v4 route file, its types/next-auth.d.ts and its
// tsconfig.json paths run unchanged; the unmodified next-auth/react client signs in through
// them and its session carries what the route file's callbacks add (id, role).
func TestNextAuthRouteFileMigration(t *testing.T) {
	node := requireNodeInterop(t)
	for _, layout := range []struct{ name, routeAs string }{
		{"the app's tree", ""},
		{"route file as auth.config.ts", "auth.config.ts"},
	} {
		t.Run(layout.name, func(t *testing.T) { signInThroughRouteFile(t, node, migratedScripts(t, layout.routeAs)) })
	}
}

func signInThroughRouteFile(t *testing.T, node nodeInterop, scripts string) {
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: scripts,
		// The app's NEXTAUTH_SECRET, listed so that the route file's
		// `secret: process.env.NEXTAUTH_SECRET` reads it.
		Env:  map[string]string{"NEXTAUTH_SECRET": testGatewaySecret},
		Args: []string{"--config", writeConfig(t, "env: [NEXTAUTH_SECRET]\n")},
	})

	out, runErr := node.run(t.Context(), "client.mjs", gw.URL)
	var run clientRun
	if err := json.Unmarshal(out, &run); err != nil {
		t.Fatalf("client.mjs output is not its JSON document: %v\nrun error: %v\noutput:\n%s", err, runErr, out)
	}
	if runErr != nil {
		t.Errorf("client.mjs: %v", runErr)
	}
	results := map[string]json.RawMessage{}
	for _, s := range run.Steps {
		if s.Error != "" {
			t.Errorf("%s threw: %s", s.Step, s.Error)
		}
		results[s.Step] = s.Result
	}

	var failed struct {
		Error string `json:"error"`
		OK    bool   `json:"ok"`
	}
	if err := json.Unmarshal(results["signInWrongPassword"], &failed); err != nil || failed.OK || failed.Error != "CredentialsSignin" {
		t.Errorf("signIn with a wrong password: got %s, want CredentialsSignin", results["signInWrongPassword"])
	}
	equalJSON(fmt.Sprintf(`{"error":null,"status":200,"ok":true,"url":%q}`, gw.URL+"/login"))(t, results["signIn"])
	var session map[string]any
	if err := json.Unmarshal(results["getSession"], &session); err != nil || session == nil {
		t.Fatalf("getSession: got %s, want a session", results["getSession"])
	}
	// id and role are there only because the route file's jwt and session callbacks ran.
	if !reflect.DeepEqual(session["user"], referenceUser) {
		t.Errorf("session user: got %#v, want %#v", session["user"], referenceUser)
	}
	// The route file's session.maxAge (7 days) is the session's, not NextAuth's 30 days.
	expires, err := time.Parse(time.RFC3339, fmt.Sprint(session["expires"]))
	if want := time.Now().Add(7 * 24 * time.Hour); err != nil || expires.Before(want.Add(-time.Hour)) || expires.After(want.Add(time.Hour)) {
		t.Errorf("session expires: got %v, want about %v (the route file's maxAge)", session["expires"], want)
	}
	equalJSON(`null`)(t, results["getSessionAfterSignOut"])

	logs := gw.Logs()
	for _, unwanted := range []string{"unknown auth config key", "SCRIPT_OPTION_IGNORED", "SCRIPT_LITERAL_SECRET", testGatewaySecret} {
		if strings.Contains(logs, unwanted) {
			t.Errorf("gateway log has %q:\n%s", unwanted, logs)
		}
	}
}

// secretScripts is a NextAuth route file whose secret is the expression secret.
func secretScripts(t *testing.T, secret string) string {
	t.Helper()
	return writeFiles(t, map[string]string{"auth.config.ts": `import NextAuth from "next-auth";
import CredentialsProvider from "next-auth/providers/credentials";
const handler = NextAuth({
  providers: [CredentialsProvider({ authorize: () => null })],
  secret: ` + secret + `,
});
export { handler as GET, handler as POST };
`})
}

// sessionUnder reports whether the gateway at base reads a session token encrypted with
// secret.
func sessionUnder(t *testing.T, base, secret string) bool {
	t.Helper()
	keys, err := token.NewKeyRing([]string{secret}, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := keys.Encode(map[string]any{"name": "Keyed", "sub": "1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req := mustRequest(t, http.MethodGet, base+"/api/auth/session", nil)
	req.Header.Set("Cookie", "next-auth.session-token="+tok)
	res := do(t, newBrowserClient(t), req)
	return strings.Contains(string(res.Body), `"name":"Keyed"`)
}

// TestServeSecretFromScript: with no AUTH_SECRET, NEXTAUTH_SECRET or secret_file, the route
// file's secret (from a listed variable) is the session secret, and no development secret is
// generated; a reload whose script sets another secret is refused and the first one stays.
func TestServeSecretFromScript(t *testing.T) {
	scripts := secretScripts(t, "process.env.APP_SECRET")
	data := filepath.Join(t.TempDir(), "data")
	base, out := runServeUntilReady(t, map[string]string{"APP_SECRET": "the-app-secret"},
		"--data", data, "--scripts", scripts, "--config", writeConfig(t, "env: [APP_SECRET]\n"))
	if !sessionUnder(t, base, "the-app-secret") {
		t.Errorf("a token under the script's secret is not read\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(data, "secret")); !os.IsNotExist(err) {
		t.Errorf("a development secret was generated although the script sets one (%v)", err)
	}

	if err := os.WriteFile(filepath.Join(scripts, "auth.config.ts"), []byte(strings.Replace(
		mustRead(t, filepath.Join(scripts, "auth.config.ts")), "process.env.APP_SECRET", `"another-secret"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload that changes the secret to be refused", func() bool {
		return strings.Contains(out.String(), "SCRIPT_RELOAD_REFUSED") && strings.Contains(out.String(), "changing it takes a restart")
	})
	if !sessionUnder(t, base, "the-app-secret") || sessionUnder(t, base, "another-secret") {
		t.Errorf("after the refused reload: want the first secret still the only one\n%s", out)
	}
	if strings.Contains(out.String(), "the-app-secret") {
		t.Errorf("the secret is in the log:\n%s", out)
	}
}

// TestServeRefusesTwoSecrets: a script secret other than the operator's stops serve with
// both places named, instead of one silently winning.
func TestServeRefusesTwoSecrets(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"AUTH_SECRET", map[string]string{"AUTH_SECRET": "operator-secret", "APP_SECRET": "app-secret"}},
		{"NEXTAUTH_SECRET", map[string]string{"NEXTAUTH_SECRET": "operator-secret", "APP_SECRET": "app-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(k string) string { return tc.env[k] }}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := c.run(ctx, []string{"serve", "--data", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0",
				"--scripts", secretScripts(t, "process.env.APP_SECRET"), "--config", writeConfig(t, "env: [APP_SECRET]\n")})
			if err == nil || !strings.Contains(err.Error(), "secret differs from the session secret the gateway runs with") || !strings.Contains(err.Error(), "auth.config.ts:5:") {
				t.Errorf("serve: got %v, want the secret conflict at auth.config.ts:5\n%s", err, out.String())
			}
			if strings.Contains(out.String()+fmt.Sprint(err), "app-secret") {
				t.Errorf("the secret is in the output:\n%s", out.String())
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNextAuthUnmovedLookupNamesTheStep: with the app's own MongoDB lookup copied too,
// `gateway check` stops at its import and names the step that replaces it.
func TestNextAuthUnmovedLookupNamesTheStep(t *testing.T) {
	dir := migratedScripts(t, "")
	copyFile(t, migrationFixture("lib", "users.ts"), filepath.Join(dir, "lib", "users.ts"))
	var out bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	err := c.run(context.Background(), []string{"check", dir})
	if err == nil || !strings.Contains(out.String(), "lib/users.ts:1:") || !strings.Contains(out.String(), `import "mongodb" is not allowed`) || !strings.Contains(out.String(), "users.findOne") {
		t.Errorf("gateway check: got %v\n%s\nwant the mongodb import at lib/users.ts:1 refused, naming users.findOne", err, out.String())
	}
}
