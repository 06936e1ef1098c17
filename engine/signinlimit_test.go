package engine_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/clientaddr"
)

// signInFrom posts a failed-or-not credentials sign-in as a load balancer would, naming
// the client in X-Forwarded-For.
func signInFrom(t *testing.T, b *browser, forwardedFor, username, password string) int {
	t.Helper()
	form := url.Values{"username": {username}, "password": {password}, "csrfToken": {b.csrf()}, "json": {"true"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.gw.srv.URL+"/api/auth/callback/credentials", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", b.cookieHeader())
	req.Header.Set("X-Forwarded-For", forwardedFor)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sign in from %s: %v", forwardedFor, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestSignInLimitPerClientBehindProxy: behind a trusted load balancer (the test's loopback
// peer), failures are counted per client named in X-Forwarded-For; from an untrusted peer
// that header is ignored and every client shares the peer's count.
func TestSignInLimitPerClientBehindProxy(t *testing.T) {
	trusting, err := clientaddr.New([]string{"127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	distrusting, err := clientaddr.New([]string{"10.9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		addrs *clientaddr.Resolver
		// wantOther is the status of a wrong password from a second client after the first
		// client used up its failures.
		wantOther int
	}{
		{"trusted proxy: counted per client", trusting, http.StatusUnauthorized},
		{"untrusted peer: forwarded header ignored", distrusting, http.StatusTooManyRequests},
		{"no trusted proxies: counted per peer", nil, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw, _ := dbGateway(t, "", engine.SecurityOptions{MaxFailuresPerAddress: 2, FailureWindow: time.Minute, Addresses: tt.addrs}, nil)
			b := gw.browser(t)
			// Different usernames: only the per-address counter can refuse.
			for i, user := range []string{"a", "b"} {
				if got := signInFrom(t, b, "203.0.113.7", user, "wrong"); got != http.StatusUnauthorized {
					t.Fatalf("failure %d from 203.0.113.7: got %d, want 401", i+1, got)
				}
			}
			if got := signInFrom(t, b, "203.0.113.7", "c", "wrong"); got != http.StatusTooManyRequests {
				t.Errorf("third attempt from 203.0.113.7: got %d, want 429", got)
			}
			if got := signInFrom(t, b, "198.51.100.20", "d", "wrong"); got != tt.wantOther {
				t.Errorf("first attempt from 198.51.100.20: got %d, want %d", got, tt.wantOther)
			}
		})
	}
}
