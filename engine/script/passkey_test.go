package script

import (
	"reflect"
	"strings"
	"testing"
)

func TestPasskeyProvider(t *testing.T) {
	const head = `import Credentials from "callgate/providers/credentials";
import Passkey from "callgate/providers/passkey";
const password = Credentials({ authorize: () => null });
`
	credentials := Provider{ID: "credentials", Name: "Credentials", Type: "credentials"}
	tests := []struct {
		name, body string
		want       []Provider
	}{
		{"defaults", `export default { providers: [password, Passkey()] };`,
			[]Provider{credentials, {ID: "passkey", Name: "Passkey", Type: "passkey"}}},
		{"empty options", `export default { providers: [Passkey({}), password] };`,
			[]Provider{{ID: "passkey", Name: "Passkey", Type: "passkey"}, credentials}},
		{"id and name overridden", `export default { providers: [password, Passkey({ id: "webauthn", name: "Security key" })] };`,
			[]Provider{credentials, {ID: "webauthn", Name: "Security key", Type: "passkey"}}},
		{"alone", `export default { providers: [Passkey()] };`,
			[]Provider{{ID: "passkey", Name: "Passkey", Type: "passkey"}}},
		{"written by hand", `export default { providers: [{ type: "passkey" }] };`,
			[]Provider{{ID: "passkey", Name: "Passkey", Type: "passkey"}}},
		{"credentials written by hand without an id", `export default { providers: [{ type: "credentials", authorize: () => null }, { type: "passkey" }] };`,
			[]Provider{credentials, {ID: "passkey", Name: "Passkey", Type: "passkey"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := load(t, writeDir(t, map[string]string{"auth.config.js": head + tc.body}), nil)
			if got := l.gen.Config().Providers; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("providers: got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPasskeyModuleShape: the module returns the provider object the docs and types
// describe, options spread over the defaults.
func TestPasskeyModuleShape(t *testing.T) {
	src := `import Credentials from "callgate/providers/credentials";
import Passkey from "callgate/providers/passkey";
export default {
  providers: [Credentials({ authorize: () => null })],
  callbacks: { jwt: () => ({ plain: Passkey(), named: Passkey({ name: "Key", extra: 1 }) }) },
};
`
	l := load(t, writeDir(t, map[string]string{"auth.config.js": src}), nil)
	got, err := l.gen.Call(t.Context(), "callbacks.jwt", map[string]any{"token": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"plain": map[string]any{"id": "passkey", "name": "Passkey", "type": "passkey"},
		"named": map[string]any{"id": "passkey", "name": "Key", "type": "passkey", "extra": 1.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPasskeyProviderErrors(t *testing.T) {
	const head = `import Credentials from "callgate/providers/credentials";
import Passkey from "callgate/providers/passkey";
`
	tests := []struct{ name, body, want string }{
		{"two passkey providers", `export default { providers: [Passkey(), Passkey({ id: "other" })] };`,
			"providers[1] is a second passkey provider (providers[0] is one): at most one is allowed"},
		{"id taken by credentials", `export default { providers: [Credentials({ id: "passkey", authorize: () => null }), Passkey()] };`,
			`providers[1].id "passkey" is already used by providers[0]`},
		{"id not a string", `export default { providers: [Passkey({ id: 7 })] };`, "providers[0].id must be a string, got number"},
		{"name not a string", `export default { providers: [Passkey({ name: {} })] };`, "providers[0].name must be a string, got object"},
		{"unknown type", `export default { providers: [{ type: "webauthn", id: "w" }] };`,
			`providers[0].type must be "credentials", "email", "passkey", "oauth" or "oidc", got "webauthn"`},
		{"type missing", `export default { providers: [{ id: "w" }] };`, `providers[0].type must be "credentials", "email", "passkey", "oauth" or "oidc", got ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := loadErr(t, writeDir(t, map[string]string{"auth.config.js": head + tc.body}))
			if se.Name != "ConfigError" || !strings.Contains(se.Message, tc.want) {
				t.Errorf("got %s %q, want a ConfigError containing %q", se.Name, se.Message, tc.want)
			}
		})
	}
}
