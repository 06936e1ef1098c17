package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func shippedConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(repoPath("scripts", "auth.config.js"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCheckAndTestCommands(t *testing.T) {
	cfg := shippedConfig(t)
	passing := `import config from "./auth.config.js";
import { test, expect, args, token } from "callgate/test";
test("session copies the role", async () => {
  const s = await config.callbacks.session(args.session({ token: token({ role: "admin", id: "u1" }) }));
  expect(s.user).toEqual({ name: "Jane Doe", email: "jane@example.com", role: "admin", id: "u1" });
});
test("jwt copies the role at sign-in", async () => {
  const t = await config.callbacks.jwt(args.jwt.signIn({ user: { id: "u1", role: "ops" } }));
  expect(t.role).toBe("ops");
});
`
	failing := `import config from "./auth.config.js";
import { test, expect, args } from "callgate/test";
test("fine", () => { expect(1).toBe(1); });
test("wrong", async () => {
  const t = await config.callbacks.jwt(args.jwt.signIn({ user: { id: "u1", role: "ops" } }));
  expect(t.role).toBe("admin");
});
`
	for _, tc := range []struct {
		name       string
		args       []string
		wantErr    bool
		wantOut    string
		wantStderr string
	}{
		{"check the shipped scripts", []string{"check", repoPath("scripts")}, false, "callbacks.jwt\n  callbacks.session", ""},
		{"check a syntax error", []string{"check", repoPath("testdata", "scripts", "syntax-error")}, true, "", "auth.config.js:7:21: SyntaxError"},
		{"test passing", []string{"test", writeFiles(t, map[string]string{"auth.config.js": cfg, "auth.test.js": passing})}, false, "2 passed, 0 failed\n", ""},
		{"test failing", []string{"test", writeFiles(t, map[string]string{"auth.config.js": cfg, "auth.test.js": failing})}, true, "--- FAIL: auth.test.js › wrong", ""},
		{"test failing summary", []string{"test", writeFiles(t, map[string]string{"auth.config.js": cfg, "auth.test.js": failing})}, true, "auth.test.js:6:", ""},
		{"test failing counts", []string{"test", writeFiles(t, map[string]string{"auth.config.js": cfg, "auth.test.js": failing})}, true, "1 passed, 1 failed\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
			err := c.run(t.Context(), tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error %v\nstdout:\n%s\nstderr:\n%s", err, tc.wantErr, &out, &errOut)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout: got\n%s\nwant it to contain %q", &out, tc.wantOut)
			}
			if !strings.Contains(errOut.String(), tc.wantStderr) {
				t.Errorf("stderr: got\n%s\nwant it to contain %q", &errOut, tc.wantStderr)
			}
		})
	}
}

type statusBody struct {
	Hash      string `json:"hash"`
	Watching  bool   `json:"watching"`
	Reloads   int    `json:"reloads"`
	LastError *struct {
		File string `json:"file"`
		Line int    `json:"line"`
	} `json:"last_error"`
}

func getStatus(t *testing.T, gw *testGateway) statusBody {
	t.Helper()
	res, err := http.Get(gw.URL + "/-/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s statusBody
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /-/status: status %d, %v", res.StatusCode, err)
	}
	return s
}

// TestServeReloadStatusMetrics: serve with watching off reloads on SIGHUP, and refuses a
// broken file on SIGHUP too; /-/status and /metrics report it.
func TestServeReloadStatusMetrics(t *testing.T) {
	cfg := shippedConfig(t)
	dir := writeFiles(t, map[string]string{"auth.config.js": cfg})
	yml := filepath.Join(t.TempDir(), "callgate.yaml")
	if err := os.WriteFile(yml, []byte("script:\n  watch: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{ScriptsDir: dir, Args: []string{"--config", yml}})
	s0 := getStatus(t, gw)
	if s0.Hash == "" || s0.Watching {
		t.Fatalf("status: got %+v, want a hash and watching false", s0)
	}
	waitStatus := func(cond func(statusBody) bool) statusBody {
		t.Helper()
		var s statusBody
		testkit.WaitFor(t, "the status changes as expected", 5*time.Second, func() error {
			if s = getStatus(t, gw); !cond(s) {
				return fmt.Errorf("status %+v\n%s", s, gw.Logs())
			}
			return nil
		})
		return s
	}

	changed := strings.Replace(cfg, "return session;", "session.reloaded = true;\n      return session;", 1)
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if s := getStatus(t, gw); s.Hash != s0.Hash {
		t.Fatalf("with watch: false the file change was picked up without SIGHUP")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s1 := waitStatus(func(s statusBody) bool { return s.Hash != s0.Hash })
	if s1.Reloads != 1 {
		t.Errorf("reloads: got %d, want 1", s1.Reloads)
	}

	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte("export default {\n  providers: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s2 := waitStatus(func(s statusBody) bool { return s.LastError != nil })
	if s2.Hash != s1.Hash || s2.LastError.File != "auth.config.js" || s2.LastError.Line == 0 {
		t.Errorf("after a broken file: got %+v (error %+v), want hash %s kept and the error at auth.config.js:line", s2, s2.LastError, s1.Hash)
	}
	// The status is updated before the refusal is logged, so the log line is awaited.
	testkit.WaitFor(t, "the refused reload is logged", 5*time.Second, func() error {
		if !strings.Contains(gw.Logs(), "scripts reload refused") {
			return fmt.Errorf("log: got no refused reload line\n%s", gw.Logs())
		}
		return nil
	})

	res, err := http.Get(gw.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`callgate_script_reloads_total{outcome="swapped"} 1`,
		`callgate_script_reloads_total{outcome="failed"} 1`,
		`callgate_script_generation_info{hash="` + s1.Hash + `"} 1`,
		`callgate_http_requests_total{code="200",method="GET",route="/-/status"}`,
	} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("/metrics: got no line %q", want)
		}
	}
}
