package config

import (
	"strings"
	"testing"
)

func TestBearerSettings(t *testing.T) {
	const idp = "bearer:\n  providers:\n    - {id: idp, issuer: https://idp.example, audience: [api]}\n"
	route := func(extra string) string {
		return "routes:\n  - {name: api, path: /api, upstream: http://127.0.0.1:9000" + extra + "}\n"
	}
	tests := []struct {
		name, yaml, wantField string // wantField "" = valid
	}{
		{"no bearer at all", route(""), ""},
		{"the session token", route(", bearer: [session]"), ""},
		{"a provider and the session", idp + route(", bearer: [idp, session]"), ""},
		{"introspection", "bearer:\n  providers:\n    - {id: idp, issuer: https://idp.example, audience: [api], introspection: {client_id: gw, client_secret_env: IDP_SECRET}}\n" + route(", bearer: [idp]"), ""},
		{"an unknown provider", route(", bearer: [idp]"), "routes[0].bearer[0]"},
		{"a public route", route(", public: true, bearer: [session]"), "routes[0].bearer"},
		{"no id", "bearer:\n  providers:\n    - {issuer: https://idp.example, audience: [api]}\n", "bearer.providers[0].id"},
		{"the reserved id", "bearer:\n  providers:\n    - {id: session, issuer: https://idp.example, audience: [api]}\n", "bearer.providers[0].id"},
		{"a duplicate id", idp + "    - {id: idp, issuer: https://other.example, audience: [api]}\n", "bearer.providers[1].id"},
		{"no issuer", "bearer:\n  providers:\n    - {id: idp, audience: [api]}\n", "bearer.providers[0].issuer"},
		{"no audience", "bearer:\n  providers:\n    - {id: idp, issuer: https://idp.example}\n", "bearer.providers[0].audience"},
		{"an empty audience", "bearer:\n  providers:\n    - {id: idp, issuer: https://idp.example, audience: [\"\"]}\n", "bearer.providers[0].audience"},
		{"a negative cache", "bearer:\n  providers:\n    - {id: idp, issuer: https://idp.example, audience: [api], cache_ttl: -1s}\n", "bearer.providers[0].cache_ttl"},
		{"introspection without a client", "bearer:\n  providers:\n    - {id: idp, issuer: https://idp.example, audience: [api], introspection: {client_secret_env: X}}\n", "bearer.providers[0].introspection.client_id"},
		{"introspection without a secret", "bearer:\n  providers:\n    - {id: idp, issuer: https://idp.example, audience: [api], introspection: {client_id: gw}}\n", "bearer.providers[0].introspection.client_secret_env"},
		{"a bad introspection URL", "bearer:\n  providers:\n    - {id: idp, issuer: https://idp.example, audience: [api], introspection: {url: \"ftp://x\", client_id: gw, client_secret_env: X}}\n", "bearer.providers[0].introspection.url"},
	}
	for _, tt := range tests {
		got, err := invalidField(t, tt.yaml)
		if got != tt.wantField {
			t.Errorf("%s: got error field %q (%v), want %q", tt.name, got, err, tt.wantField)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "config: "+tt.wantField) {
			t.Errorf("%s: message %q does not name the field", tt.name, err)
		}
	}
}
