package script

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/oauth/presets"
)

func loadPresets(t *testing.T) *Generation {
	t.Helper()
	return load(t, filepath.Join(fixtures, "oauth-presets"), func(o *Options) {
		o.Env = map[string]string{"GITHUB_ID": "gh-client", "GITHUB_SECRET": "gh-secret"}
	}).gen
}

func TestOAuthPresetsConfig(t *testing.T) {
	gen := loadPresets(t)
	byID := map[string]Provider{}
	for _, p := range gen.Config().Providers {
		byID[p.ID] = p
	}
	tests := []struct {
		id, typ, name string
		want          OAuthProvider
	}{
		{"github", "oauth", "GitHub", OAuthProvider{
			AuthorizationURL: "https://github.com/login/oauth/authorize", AuthorizationParams: map[string]string{"scope": "read:user user:email"},
			TokenURL: "https://github.com/login/oauth/access_token", UserinfoURL: "https://api.github.com/user",
			UserinfoEmailsURL: "https://api.github.com/user/emails",
			ClientID:          "gh-client", ClientSecret: "gh-secret", Checks: []string{"state"}, HasProfile: true,
		}},
		{"google", "oidc", "Google", OAuthProvider{
			Issuer: "https://accounts.google.com", ClientID: "google-client", ClientSecret: "s",
			AuthorizationParams: map[string]string{"scope": "openid email profile", "prompt": "consent", "access_type": "offline"},
			Checks:              []string{"pkce", "state", "nonce"}, IDToken: true, HasProfile: true, Refresh: true,
		}},
		{"azure-ad", "oidc", "Azure Active Directory", OAuthProvider{
			Issuer: "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0", ClientID: "azure-client", ClientSecret: "s",
			AuthorizationParams: map[string]string{"scope": "openid profile email"}, Checks: []string{"pkce", "state", "nonce"}, IDToken: true, HasProfile: true,
		}},
		{"microsoft-entra-id", "oidc", "Microsoft Entra ID", OAuthProvider{
			Issuer: "https://login.microsoftonline.com/tenant-x/v2.0", ClientID: "entra-client", ClientSecret: "s",
			AuthorizationParams: map[string]string{"scope": "openid profile email"}, Checks: []string{"pkce", "state", "nonce"}, IDToken: true, HasProfile: true,
		}},
		{"gitlab", "oauth", "GitLab", OAuthProvider{
			AuthorizationURL: "https://gitlab.example.com/oauth/authorize", AuthorizationParams: map[string]string{"scope": "read_user"},
			TokenURL: "https://gitlab.example.com/oauth/token", UserinfoURL: "https://gitlab.example.com/api/v4/user",
			ClientID: "gitlab-client", ClientSecret: "s", Checks: []string{"pkce", "state"}, HasProfile: true,
		}},
		{"keycloak", "oidc", "Keycloak", OAuthProvider{
			Issuer: "https://kc.example.com/realms/main", ClientID: "kc-client", ClientSecret: "s",
			AuthorizationParams: map[string]string{"scope": "openid email profile"}, Checks: []string{"pkce", "state", "nonce"}, IDToken: true, HasProfile: true,
		}},
		{"auth0", "oidc", "Auth0", OAuthProvider{
			Issuer: "https://tenant.eu.auth0.com/", ClientID: "a0-client", ClientSecret: "s",
			AuthorizationParams: map[string]string{"scope": "openid email profile"}, Checks: []string{"pkce", "state", "nonce"}, IDToken: true, HasProfile: true,
			Refresh: true, RefreshGrace: time.Minute,
		}},
		{"acme", "oauth", "Acme", OAuthProvider{
			AuthorizationURL: "https://acme.example.com/authorize", TokenURL: "https://acme.example.com/token", UserinfoURL: "https://acme.example.com/me",
			ClientID: "acme-client", ClientSecret: "s", TokenAuthMethod: "client_secret_post", Checks: []string{"state"},
			AllowDangerousEmailAccountLinking: true,
		}},
		{"corp", "oidc", "Corp SSO", OAuthProvider{
			Issuer: "https://sso.corp.example", ClientID: "corp-client", AuthorizationParams: map[string]string{"scope": "openid email profile"},
			Checks: []string{"state"}, IDToken: true, BackchannelLogout: true, EndSession: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, ok := byID[tt.id]
			if !ok {
				t.Fatalf("provider %q missing; got %v", tt.id, byID)
			}
			if p.Type != tt.typ || p.Name != tt.name {
				t.Errorf("type, name = %q, %q; want %q, %q", p.Type, p.Name, tt.typ, tt.name)
			}
			if p.OAuth == nil {
				t.Fatal("OAuth is nil")
			}
			want := tt.want
			if want.RefreshGrace == 0 {
				want.RefreshGrace = defaultRefreshGrace
			}
			if !reflect.DeepEqual(*p.OAuth, want) {
				t.Errorf("got  %+v\nwant %+v", *p.OAuth, want)
			}
		})
	}
}

// TestProfileWithoutFunction: Profile of a provider that defines no profile() is an error.
// The presets' profile functions are tested in engine/oauth/presets.
func TestProfileWithoutFunction(t *testing.T) {
	gen := loadPresets(t)
	tokens := map[string]any{"access_token": "at", "token_type": "bearer"}
	if _, err := gen.Profile(context.Background(), "acme", map[string]any{}, tokens); err == nil {
		t.Error("Profile of a provider without profile(): got nil error, want one")
	}
}

// TestBuiltinListNamesPresets: the import error's list of built-in modules names every
// provider module.
func TestBuiltinListNamesPresets(t *testing.T) {
	for _, name := range presets.Names() {
		if !strings.Contains(builtinList, name) {
			t.Errorf("builtinList does not name %q", name)
		}
		if _, ok := builtinSource(presets.ModulePrefix + name); !ok {
			t.Errorf("builtinSource(%q) not found", presets.ModulePrefix+name)
		}
	}
	if _, ok := builtinSource(presets.ModulePrefix + "nope"); ok {
		t.Error(`builtinSource("callgate/providers/nope") found`)
	}
}

func TestOAuthProviderConfigErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"no client id", `import OIDC from "callgate/providers/oidc"; export default {providers: [OIDC({issuer: "https://x.example"})]}`, "clientId is required"},
		{"oidc without issuer", `import OIDC from "callgate/providers/oidc"; export default {providers: [OIDC({clientId: "c"})]}`, "needs issuer or wellKnown"},
		{"oauth without token url", `import OAuth from "callgate/providers/oauth"; export default {providers: [OAuth({id: "x", clientId: "c", authorization: "https://x.example/a", userinfo: "https://x.example/u"})]}`, "needs authorization and token URLs"},
		{"bad check", `import OIDC from "callgate/providers/oidc"; export default {providers: [OIDC({clientId: "c", issuer: "https://x.example", checks: ["magic"]})]}`, `may hold only`},
		{"nonce without id token", `import OAuth from "callgate/providers/oauth"; export default {providers: [OAuth({id: "x", clientId: "c", authorization: "https://x.example/a", token: "https://x.example/t", userinfo: "https://x.example/u", checks: ["nonce"]})]}`, "needs an ID token"},
		{"relative url", `import OAuth from "callgate/providers/oauth"; export default {providers: [OAuth({id: "x", clientId: "c", authorization: "/a", token: "https://x.example/t", userinfo: "https://x.example/u"})]}`, "absolute http(s) URL"},
		{"entra common tenant", `import E from "callgate/providers/microsoft-entra-id"; export default {providers: [E({clientId: "c", tenantId: "common"})]}`, "tenantId"},
		{"keycloak without issuer", `import K from "callgate/providers/keycloak"; export default {providers: [K({clientId: "c"})]}`, "issuer option is required"},
		{"logout without id token", `import OAuth from "callgate/providers/oauth"; export default {providers: [OAuth({id: "x", clientId: "c", authorization: "https://x.example/a", token: "https://x.example/t", userinfo: "https://x.example/u", logout: {backchannel: true}})]}`, "logout needs an ID token"},
		{"logout not an object", `import OIDC from "callgate/providers/oidc"; export default {providers: [OIDC({clientId: "c", issuer: "https://x.example", logout: true})]}`, "logout must be an object"},
		{"logout unknown key", `import OIDC from "callgate/providers/oidc"; export default {providers: [OIDC({clientId: "c", issuer: "https://x.example", logout: {frontchannel: true}})]}`, "logout.frontchannel is not an option"},
		{"logout flag not boolean", `import OIDC from "callgate/providers/oidc"; export default {providers: [OIDC({clientId: "c", issuer: "https://x.example", logout: {backchannel: "yes"}})]}`, "logout.backchannel must be a boolean"},
		{"unknown type", `export default {providers: [{type: "saml", id: "s"}]}`, `"credentials", "email", "passkey", "oauth" or "oidc", got "saml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			se := loadErr(t, dir)
			if !strings.Contains(se.Message, tt.want) {
				t.Errorf("error %q, want it to contain %q", se.Message, tt.want)
			}
		})
	}
}
