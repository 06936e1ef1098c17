package config

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestSessionTokenSettings(t *testing.T) {
	tests := []struct {
		yaml      string
		wantField string // "" = valid
		wantAlg   string
	}{
		{"", "", ""},
		{"session: {token: {format: jwe}}", "", ""},
		{"session: {token: {format: jws}}", "", "HS256"},
		{"session: {token: {format: jws, alg: ES256}}", "", "ES256"},
		{"session: {token: {format: jws, alg: EdDSA, keys: [new.pem, /etc/callgate/old.pem]}}", "", "EdDSA"},
		{"session: {token: {format: jwt}}", "session.token.format", ""},
		{"session: {token: {alg: ES256}}", "session.token.format", ""},
		{"session: {token: {keys: [a.pem]}}", "session.token.format", ""},
		{"session: {token: {format: jws, alg: none}}", "session.token.alg", ""},
		{"session: {token: {format: jws, alg: hs256}}", "session.token.alg", ""},
		{"session: {token: {format: jws, alg: HS512}}", "session.token.alg", ""},
		{"session: {token: {format: jws, keys: [a.pem]}}", "session.token.keys", ""},
		{"session: {token: {format: jws, alg: RS256, keys: [a.pem, a.pem]}}", "session.token.keys[1]", ""},
		{"session: {token: {format: jws, alg: RS256, keys: [\" \"]}}", "session.token.keys[0]", ""},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.yaml), "test.yaml")
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.yaml, err)
		}
		c.ApplyDefaults()
		err = c.Validate()
		var got string
		if ce, ok := err.(*Error); ok {
			got = ce.Field
		} else if err != nil {
			got = err.Error()
		}
		if got != tt.wantField {
			t.Errorf("Validate(%q): got field %q (%v), want %q", tt.yaml, got, err, tt.wantField)
		}
		if err == nil && c.Session.Token.Alg != tt.wantAlg {
			t.Errorf("Validate(%q): alg %q, want %q", tt.yaml, c.Session.Token.Alg, tt.wantAlg)
		}
	}
}

func TestSessionTokenKeyFiles(t *testing.T) {
	tests := []struct {
		token         SessionTokenConfig
		want          []string
		wantGenerated bool
	}{
		{SessionTokenConfig{Format: "jwe"}, nil, false},
		{SessionTokenConfig{Format: "jws", Alg: "HS256"}, nil, false},
		{SessionTokenConfig{Format: "jws", Alg: "ES256"}, []string{filepath.Join("data", "session-token-es256.pem")}, true},
		{SessionTokenConfig{Format: "jws", Alg: "RS256", Keys: []string{"k/new.pem", "/abs/old.pem"}},
			[]string{filepath.Join("data", "k", "new.pem"), "/abs/old.pem"}, false},
	}
	for _, tt := range tests {
		c := Config{DataDir: "data", Session: SessionConfig{Token: tt.token}}
		got, generated := c.SessionTokenKeyFiles()
		if !slices.Equal(got, tt.want) || generated != tt.wantGenerated {
			t.Errorf("SessionTokenKeyFiles(%+v) = %v, %v; want %v, %v", tt.token, got, generated, tt.want, tt.wantGenerated)
		}
	}
}
