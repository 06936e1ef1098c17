package presets_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/callgate/callgate/engine/oauth/presets"
	"github.com/callgate/callgate/engine/script"
)

// loadPresets loads the fixture that configures every preset. The test imports the script
// host, which runs the sources; the package itself imports nothing from the module.
func loadPresets(t *testing.T) *script.Generation {
	t.Helper()
	gen, err := script.Load(context.Background(), script.Options{
		Dir: filepath.Join("../../../testdata/scripts", "oauth-presets"),
		Env: map[string]string{"GITHUB_ID": "gh-client", "GITHUB_SECRET": "gh-secret"},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(gen.Close)
	return gen
}

func TestNames(t *testing.T) {
	want := []string{"auth0", "azure-ad", "github", "gitlab", "google", "keycloak", "microsoft-entra-id", "oauth", "oidc"}
	got := presets.Names()
	if !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if presets.Names()[0] != "auth0" {
		t.Error("Names() returns the package's own slice")
	}
}

func TestSource(t *testing.T) {
	for _, name := range presets.Names() {
		src, ok := presets.Source(name)
		if !ok {
			t.Errorf("Source(%q) not found", name)
			continue
		}
		for _, part := range []string{"function merge(base, over)", "export default function "} {
			if !strings.Contains(src, part) {
				t.Errorf("Source(%q) lacks %q", name, part)
			}
		}
	}
	for _, name := range []string{"", "credentials", "callgate/providers/github", "github/x", "GitHub"} {
		if _, ok := presets.Source(name); ok {
			t.Errorf("Source(%q) found, want none", name)
		}
	}
}

// TestOAuthPresetProfiles runs each preset's profile() on a recorded provider response.
func TestOAuthPresetProfiles(t *testing.T) {
	gen := loadPresets(t)
	tokens := map[string]any{"access_token": "at", "token_type": "bearer"}
	tests := []struct {
		provider, file string
		want           map[string]any
	}{
		{"github", "github-user.json", map[string]any{"id": "583231", "name": "The Octocat", "email": "octocat@github.com", "image": "https://avatars.githubusercontent.com/u/583231?v=4"}},
		{"github", "github-user-private-email.json", map[string]any{"id": "1234567", "name": "mona", "email": nil, "image": "https://avatars.githubusercontent.com/u/1234567?v=4"}},
		{"gitlab", "gitlab-user.json", map[string]any{"id": "42", "name": "Jane Doe", "email": "jane@example.com", "image": "https://gitlab.example.com/uploads/-/system/user/avatar/42/avatar.png"}},
		{"google", "google-id-token-claims.json", map[string]any{"id": "110169484474386276334", "name": "Jane Doe", "email": "jane.doe@gmail.com", "image": "https://lh3.googleusercontent.com/a/ACg8ocJ"}},
		{"microsoft-entra-id", "entra-id-token-claims.json", map[string]any{"id": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "name": "Adele Vance", "email": "AdeleV@contoso.example", "image": nil}},
		{"azure-ad", "entra-id-token-claims.json", map[string]any{"id": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "name": "Adele Vance", "email": "AdeleV@contoso.example", "image": nil}},
		{"keycloak", "keycloak-id-token-claims.json", map[string]any{"id": "f1d4c2a0-1111-4d5e-9a3b-2c9f0e7d6a55", "name": "bob", "email": "bob@example.com", "image": nil}},
		{"auth0", "auth0-id-token-claims.json", map[string]any{"id": "auth0|65c0ffee1234567890abcdef", "name": "carol", "email": "carol@example.com", "image": "https://s.gravatar.com/avatar/abc.png"}},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("../../../testdata/oauth", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var profile map[string]any
			if err := json.Unmarshal(raw, &profile); err != nil {
				t.Fatal(err)
			}
			got, err := gen.Profile(context.Background(), tt.provider, profile, tokens)
			if err != nil {
				t.Fatalf("Profile: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}
