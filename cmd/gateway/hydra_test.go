package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// hydraProvider is Ory Hydra (the OpenID Connect provider of the OAuth tests, built by
// test.sh into testdata/hydra/bin; CALLGATE_HYDRA may name another binary) with its
// in-memory database and a login and consent app: login is a form a browser fills in,
// consent grants what was asked and puts the user's name and e-mail in the ID token.
type hydraProvider struct {
	Issuer   string // Hydra's public URL
	Admin    string
	LoginApp string // origin of the login and consent app
}

func startHydraProvider(t *testing.T) *hydraProvider {
	t.Helper()
	bin := os.Getenv("CALLGATE_HYDRA")
	if bin == "" {
		bin, _ = filepath.Abs(repoPath("testdata", "hydra", "bin", "hydra"))
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("Ory Hydra not found at %s (./test.sh builds it from testdata/hydra)", bin)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	publicAddr, adminAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	h := &hydraProvider{Issuer: "http://" + publicAddr, Admin: "http://" + adminAddr}
	app := httptest.NewServer(h.loginConsentApp(t))
	t.Cleanup(app.Close)
	h.LoginApp = app.URL

	_, publicPort, _ := net.SplitHostPort(publicAddr)
	_, adminPort, _ := net.SplitHostPort(adminAddr)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "all", "--dev")
	cmd.Env = append(os.Environ(),
		"DSN=memory", "SECRETS_SYSTEM=this-is-a-test-only-system-secret",
		"URLS_SELF_ISSUER="+h.Issuer, "URLS_LOGIN="+app.URL+"/login", "URLS_CONSENT="+app.URL+"/consent",
		"SERVE_PUBLIC_PORT="+publicPort, "SERVE_PUBLIC_HOST=127.0.0.1",
		"SERVE_ADMIN_PORT="+adminPort, "SERVE_ADMIN_HOST=127.0.0.1",
		"LOG_LEVEL=error", "SQA_OPT_OUT=true",
	)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start hydra: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("hydra output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(h.Admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra not ready after 30s: %v", err)
		}
		select {
		case <-exited:
			t.Fatalf("hydra exited before it was ready:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// adminCall sends JSON to Hydra's admin API and decodes the answer into out.
func (h *hydraProvider) adminCall(method, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, h.Admin+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", method, path, body, err)
		}
	}
	return nil
}

// createClient registers a confidential client whose only redirect URI is redirectURI.
func (h *hydraProvider) createClient(t *testing.T, id, secret, redirectURI string) {
	t.Helper()
	err := h.adminCall(http.MethodPost, "/admin/clients", map[string]any{
		"client_id": id, "client_secret": secret,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid offline_access email profile", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "client_secret_basic",
	}, nil)
	if err != nil {
		t.Fatalf("register the gateway at hydra: %v", err)
	}
}

// loginConsentApp shows a login form (any username signs in as Ada Lovelace) and grants
// every consent.
func (h *hydraProvider) loginConsentApp(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	accept := func(w http.ResponseWriter, r *http.Request, kind, challenge string, body map[string]any) {
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		path := "/admin/oauth2/auth/requests/" + kind + "/accept?" + kind + "_challenge=" + url.QueryEscape(challenge)
		if err := h.adminCall(http.MethodPut, path, body, &out); err != nil {
			t.Errorf("accept %s: %v", kind, err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, out.RedirectTo, http.StatusFound)
	}
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><title>Hydra test login</title>
<h1>Test identity provider</h1>
<form method="post" action="/login">
<input type="hidden" name="challenge" value="%s">
<label>Username <input name="username" autocomplete="username"></label>
<button type="submit">Sign in at the provider</button>
</form>`, html.EscapeString(r.URL.Query().Get("login_challenge")))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("username") == "" {
			http.Error(w, "username required", http.StatusBadRequest)
			return
		}
		accept(w, r, "login", r.PostFormValue("challenge"), map[string]any{"subject": "user-" + r.PostFormValue("username")})
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		challenge := r.URL.Query().Get("consent_challenge")
		var req struct {
			RequestedScope    []string `json:"requested_scope"`
			RequestedAudience []string `json:"requested_access_token_audience"`
		}
		resp, err := http.Get(h.Admin + "/admin/oauth2/auth/requests/consent?consent_challenge=" + url.QueryEscape(challenge))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_ = json.NewDecoder(resp.Body).Decode(&req)
		resp.Body.Close()
		accept(w, r, "consent", challenge, map[string]any{
			"grant_scope": req.RequestedScope, "grant_access_token_audience": req.RequestedAudience,
			"session": map[string]any{"id_token": map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"}},
		})
	})
	return mux
}
