package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/callgate/callgate/internal/testkit"
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
	bin := testkit.HydraBinary(t, repoPath())
	publicAddr, adminAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	h := &hydraProvider{Issuer: "http://" + publicAddr, Admin: "http://" + adminAddr}
	app := httptest.NewServer(h.loginConsentApp(t))
	t.Cleanup(app.Close)
	h.LoginApp = app.URL

	_, publicPort, _ := net.SplitHostPort(publicAddr)
	_, adminPort, _ := net.SplitHostPort(adminAddr)
	public, _ := strconv.Atoi(publicPort)
	admin, _ := strconv.Atoi(adminPort)
	testkit.Hydra{
		Binary: bin, Issuer: h.Issuer, LoginURL: app.URL + "/login", ConsentURL: app.URL + "/consent",
		LogoutURL: app.URL + "/logout", PublicPort: public, AdminPort: admin,
	}.Start(t)
	return h
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
// extra holds more client metadata (backchannel_logout_uri, post_logout_redirect_uris).
func (h *hydraProvider) createClient(t *testing.T, id, secret, redirectURI string, extra map[string]any) {
	t.Helper()
	client := map[string]any{
		"client_id": id, "client_secret": secret,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid offline_access email profile", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "client_secret_basic",
	}
	for k, v := range extra {
		client[k] = v
	}
	err := h.adminCall(http.MethodPost, "/admin/clients", client, nil)
	if err != nil {
		t.Fatalf("register the gateway at hydra: %v", err)
	}
}

// loginConsentApp shows a login form (any username signs in as Ada Lovelace; Hydra
// remembers the login in its session cookie), grants every consent and confirms every
// logout (/oauth2/sessions/logout).
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
		challenge := r.URL.Query().Get("login_challenge")
		// A browser Hydra still knows (its remembered login session) is not asked again,
		// as a real login app does: the form shows only when the provider session is over.
		var req struct {
			Skip    bool   `json:"skip"`
			Subject string `json:"subject"`
		}
		if err := h.adminCall(http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+url.QueryEscape(challenge), nil, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if req.Skip {
			accept(w, r, "login", challenge, map[string]any{"subject": req.Subject})
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><title>Hydra test login</title>
<h1>Test identity provider</h1>
<form method="post" action="/login">
<input type="hidden" name="challenge" value="%s">
<label>Username <input name="username" autocomplete="username"></label>
<button type="submit">Sign in at the provider</button>
</form>`, html.EscapeString(challenge))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("username") == "" {
			http.Error(w, "username required", http.StatusBadRequest)
			return
		}
		accept(w, r, "login", r.PostFormValue("challenge"), map[string]any{"subject": "user-" + r.PostFormValue("username"), "remember": true})
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
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		accept(w, r, "logout", r.URL.Query().Get("logout_challenge"), nil)
	})
	return mux
}
