package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// HydraBinary returns the Ory Hydra binary the OAuth tests run: CALLGATE_HYDRA, else
// testdata/hydra/bin/hydra under repoRoot (test.sh builds it there). Without it the test
// skips, except in CI, where it fails.
func HydraBinary(t testing.TB, repoRoot string) string {
	t.Helper()
	return peerBinary(t, repoRoot, "CALLGATE_HYDRA", "hydra", "Ory Hydra")
}

// peerBinary returns a pinned peer's binary: the environment variable env, else
// testdata/<name>/bin/<name> under repoRoot, where test.sh builds it from the pinned module
// in testdata/<name>. Without it the test skips, except in CI, where it fails.
func peerBinary(t testing.TB, repoRoot, env, name, display string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		path, _ = filepath.Abs(filepath.Join(repoRoot, "testdata", name, "bin", name))
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("%s not found at %s (./test.sh builds it from testdata/%s)", display, path, name)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Hydra is how one Hydra process is run: its in-memory database, the issuer URL it puts in
// its tokens, the login, consent and logout app it sends browsers to, and its two loopback
// ports.
type Hydra struct {
	Binary               string
	Issuer               string // URLS_SELF_ISSUER: the URL clients reach the public port by
	LoginURL, ConsentURL string
	// LogoutURL is the logout confirmation page (URLS_LOGOUT) of /oauth2/sessions/logout;
	// "" leaves Hydra's own fallback, which confirms nothing.
	LogoutURL             string
	PublicPort, AdminPort int
}

// AdminURL is the admin API's base URL.
func (h Hydra) AdminURL() string { return fmt.Sprintf("http://127.0.0.1:%d", h.AdminPort) }

// Start runs Hydra until the test ends and returns once its admin API reports ready. The
// process is stopped, and waited for, at cleanup; its output is logged if the test failed.
func (h Hydra) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, h.Binary, "serve", "all", "--dev")
	cmd.Env = append(os.Environ(),
		"DSN=memory", "SECRETS_SYSTEM=this-is-a-test-only-system-secret",
		"URLS_SELF_ISSUER="+h.Issuer, "URLS_LOGIN="+h.LoginURL, "URLS_CONSENT="+h.ConsentURL,
		fmt.Sprintf("SERVE_PUBLIC_PORT=%d", h.PublicPort), "SERVE_PUBLIC_HOST=127.0.0.1",
		fmt.Sprintf("SERVE_ADMIN_PORT=%d", h.AdminPort), "SERVE_ADMIN_HOST=127.0.0.1",
		"LOG_LEVEL=error", "SQA_OPT_OUT=true",
	)
	if h.LogoutURL != "" {
		cmd.Env = append(cmd.Env, "URLS_LOGOUT="+h.LogoutURL)
	}
	runPeer(t, "hydra", cmd, cancel, h.AdminURL()+"/health/ready")
}
