package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// recordedGitHub serves recorded GitHub responses as a GitHub Enterprise server would (the
// preset's enterprise.baseUrl moves every URL to it): authorize sends the browser back
// with a code, the token endpoint answers with a recorded token, /api/v3/user and
// /api/v3/user/emails with the named files (emails "" answers 404, as GitHub does when the
// token lacks the user:email scope).
type recordedGitHub struct {
	srv          *httptest.Server
	emailsCalls  atomic.Int64
	badAuthCalls atomic.Int64 // API calls without the access token
}

func startRecordedGitHub(t *testing.T, userFile, emailsFile string) *recordedGitHub {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "oauth", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tokenBody := read("github-access-token.json")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(tokenBody, &tok); err != nil {
		t.Fatal(err)
	}
	user := read(userFile)
	var emails []byte
	if emailsFile != "" {
		emails = read(emailsFile)
	}
	gh := &recordedGitHub{}
	api := func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("Authorization") != "Bearer "+tok.AccessToken {
			gh.badAuthCalls.Add(1)
			http.Error(w, `{"message":"Requires authentication"}`, http.StatusUnauthorized)
			return
		}
		if body == nil {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		back, err := url.Parse(r.URL.Query().Get("redirect_uri"))
		if err != nil {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		back.RawQuery = url.Values{"code": {"recorded-code"}, "state": {r.URL.Query().Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("code") != "recorded-code" {
			http.Error(w, `{"error":"bad_verification_code"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(tokenBody)
	})
	mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) { api(w, r, user) })
	mux.HandleFunc("GET /api/v3/user/emails", func(w http.ResponseWriter, r *http.Request) {
		gh.emailsCalls.Add(1)
		api(w, r, emails)
	})
	gh.srv = httptest.NewServer(mux)
	t.Cleanup(gh.srv.Close)
	return gh
}

// TestGitHubPrivateEmail signs in with the GitHub preset against recorded responses: an
// account whose /user has no e-mail gets the verified primary one from /user/emails.
func TestGitHubPrivateEmail(t *testing.T) {
	tests := []struct {
		name, user, emails string
		wantEmail          string // "" for a session without an e-mail
		wantEmailsCalls    int64
	}{
		{"public e-mail: the list is not read", "github-user.json", "github-user-emails.json", "octocat@github.com", 0},
		{"private e-mail: the verified primary address", "github-user-private-email.json", "github-user-emails.json", "mona@example.com", 1},
		{"unverified primary: the first verified address", "github-user-private-email.json", "github-user-emails-unverified-primary.json", "mona@users.noreply.github.com", 1},
		{"list refused: signed in without an e-mail", "github-user-private-email.json", "", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := startRecordedGitHub(t, tt.user, tt.emails)
			dir := t.TempDir()
			src := fmt.Sprintf(`import GitHub from "callgate/providers/github";
export default { providers: [GitHub({ clientId: "gh-client", clientSecret: "gh-secret", enterprise: { baseUrl: %q } })] };
`, gh.srv.URL)
			if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			g := startGateway(t, gatewayConfig{fixture: dir, url: gatewayOrigin})
			b := g.browser(t)
			r := b.getPage(followProvider(t, b, "github"))
			if r.status != 302 || errorCode(r) != "" {
				t.Fatalf("callback: got %d Location %q, want a sign-in", r.status, r.header.Get("Location"))
			}
			s, _ := readSession(t, b)
			if s.User.Email != tt.wantEmail {
				t.Errorf("session e-mail: got %q, want %q", s.User.Email, tt.wantEmail)
			}
			if got := gh.emailsCalls.Load(); got != tt.wantEmailsCalls {
				t.Errorf("requests to /user/emails: got %d, want %d", got, tt.wantEmailsCalls)
			}
			if got := gh.badAuthCalls.Load(); got != 0 {
				t.Errorf("API requests without the access token: got %d, want 0", got)
			}
			if tt.emails == "" && !strings.Contains(g.logs.String(), "OAUTH_USERINFO_EMAILS_ERROR") {
				t.Errorf("the refused e-mail list was not logged; log:\n%s", g.logs.String())
			}
		})
	}
}

// followProvider is POST /signin/:provider and the browser's trip through the provider,
// up to the redirect back to the gateway, whose path and query it returns.
func followProvider(t *testing.T, b *browser, providerID string) string {
	t.Helper()
	_, back := signInThroughProvider(t, b, providerID, gatewayOrigin+"/")
	return back
}
