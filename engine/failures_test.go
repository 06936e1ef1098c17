package engine_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lineOf returns the 1-based line of the first line of a fixture containing marker.
func lineOf(t *testing.T, fixture, marker string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "scripts", fixture, "auth.config.js"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, marker) {
			return i + 1
		}
	}
	t.Fatalf("marker %q not in fixture %s", marker, fixture)
	return 0
}

// TestScriptFailures: a callback that throws, loops, or returns the wrong shape gives
// NextAuth's outcome, a log line naming the callback and file:line:column in the user's
// source, and the gateway goes on serving.
func TestScriptFailures(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "failures", timeout: 300 * time.Millisecond})
	tests := []struct {
		username   string
		status     int
		body       string
		marker     string // the fixture line the log must point at
		logPattern string
	}{
		{"throw", 401, `{"url":"http://localhost:3000/api/auth/error?error=Account%20locked"}`, `throw new Error("Account locked")`, `callback=authorize kind=thrown error="Error: Account locked"`},
		{"bug", 500, `{"url":"http://localhost:3000/api/auth/error?error=Configuration"}`, `credentials.profile.nickname`, `callback=authorize kind=thrown error="TypeError: `},
		{"slow", 500, `{"url":"http://localhost:3000/api/auth/error?error=Configuration"}`, `for (;;) {}`, `callback=authorize kind=timeout`},
		{"string", 500, `{"url":"http://localhost:3000/api/auth/error?error=Configuration"}`, "", `callback=authorize kind="invalid result"`},
		{"jwtstring", 500, `{"url":"http://localhost:3000/api/auth/error?error=Configuration"}`, "", `callback=callbacks.jwt kind="invalid result"`},
	}
	for _, tc := range tests {
		t.Run(tc.username, func(t *testing.T) {
			b := gw.browser(t)
			start := time.Now()
			r := b.signIn("credentials", tc.username, "x")
			if r.status != tc.status || r.body != tc.body {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.body)
			}
			if r.cookie("next-auth.session-token") != "" {
				t.Errorf("a failed sign-in set a session cookie: %q", r.setCookies)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %s, want the 300ms deadline to stop it", took)
			}
			logs := gw.logs.String()
			if !strings.Contains(logs, tc.logPattern) {
				t.Errorf("log lacks %q:\n%s", tc.logPattern, logs)
			}
			if tc.marker != "" {
				line := lineOf(t, "failures", tc.marker)
				at := regexp.MustCompile(`at=auth\.config\.js:` + strconv.Itoa(line) + `:\d+`)
				if !at.MatchString(logs) {
					t.Errorf("log does not point at auth.config.js:%d:", line)
				}
			}
			// The next request is served normally.
			if r := b.signIn("credentials", "alice", "x"); r.status != 200 || r.cookie("next-auth.session-token") == "" {
				t.Errorf("next sign-in: got %d %s", r.status, r.body)
			}
		})
	}
}

// TestSessionCallbackTimeoutKeepsCookie: a session callback that loops forever is
// interrupted at its deadline; the answer is a 500 and the cookie is kept, and other
// sessions go on working.
func TestSessionCallbackTimeoutKeepsCookie(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "failures", timeout: 300 * time.Millisecond})
	looping := gw.browser(t)
	if r := looping.signIn("credentials", "sessionloop", "x"); r.status != 200 {
		t.Fatalf("sign in: %d %s", r.status, r.body)
	}
	r := looping.getPage("/api/auth/session")
	if r.status != http.StatusInternalServerError || len(r.setCookies) != 0 {
		t.Errorf("got %d %s %q, want 500 and no Set-Cookie", r.status, r.body, r.setCookies)
	}
	line := lineOf(t, "failures", "while (true) {}")
	if !strings.Contains(gw.logs.String(), "callback=callbacks.session kind=timeout") ||
		!regexp.MustCompile(`at=auth\.config\.js:`+strconv.Itoa(line)+`:\d+`).MatchString(gw.logs.String()) {
		t.Errorf("log does not name the session callback timeout at line %d:\n%s", line, gw.logs.String())
	}
	other := gw.browser(t)
	other.signIn("credentials", "alice", "x")
	if r := other.getPage("/api/auth/session"); r.status != 200 || !strings.Contains(r.body, `"name":"alice"`) {
		t.Errorf("another session after the timeout: got %d %s", r.status, r.body)
	}
}
