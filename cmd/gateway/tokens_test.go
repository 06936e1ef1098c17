package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callgate/callgate/engine/assertion"
	"github.com/callgate/callgate/engine/jwk"
)

// runTokenCmd runs `gateway token args...` with AUTH_SECRET set to secret (none when empty),
// stdin piped and the given clock (nil: the real one).
func runTokenCmd(t *testing.T, secret, stdin string, now func() time.Time, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string {
			if k == "AUTH_SECRET" {
				return secret
			}
			return ""
		},
		now: now,
	}
	err = c.run(context.Background(), append([]string{"token"}, args...))
	return out.String(), errOut.String(), err
}

// tokenCase is one configured format with the key golang-jwt verifies its tokens with (nil
// for jwe, which only the gateway's own secret opens).
type tokenCase struct {
	name   string
	yaml   string
	alg    string // the header's alg
	verify any
	kid    string
}

// tokenCases writes a data directory for each format: the ES256 and EdDSA ones hold their
// default key file, as serve would have generated it; the RS256 one a listed key file.
func tokenCases(t *testing.T) (cases []tokenCase, dataDir string) {
	t.Helper()
	dataDir = t.TempDir()
	cases = []tokenCase{
		{name: "jwe", yaml: "", alg: "dir"},
		{name: "jws HS256", yaml: "session: {token: {format: jws}}", alg: "HS256", verify: []byte(testGatewaySecret)},
	}
	for _, c := range []struct{ alg, file, yaml string }{
		{jwk.ES256, "session-token-es256.pem", "session: {token: {format: jws, alg: ES256}}"},
		{jwk.EdDSA, "session-token-eddsa.pem", "session: {token: {format: jws, alg: EdDSA}}"},
		{jwk.RS256, "keys/rsa.pem", "session: {token: {format: jws, alg: RS256, keys: [keys/rsa.pem]}}"},
	} {
		k, err := jwk.Generate(c.alg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dataDir, c.file)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := jwk.Write(path, k); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tokenCase{name: "jws " + c.alg, yaml: c.yaml, alg: c.alg, verify: k.Public(), kid: k.ID})
	}
	return cases, dataDir
}

// decodedToken is what `token decode` prints.
type decodedToken struct {
	Header map[string]any  `json:"header"`
	Claims json.RawMessage `json:"claims"`
}

// TestTokenEncodeDecode: for every format, encode makes a token of the claims (argument) that
// decode (standard input) verifies and prints, claims in their order; a jws token is one
// golang-jwt verifies on its own.
func TestTokenEncodeDecode(t *testing.T) {
	cases, dataDir := tokenCases(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, tc.yaml)
			before := time.Now().Unix()
			out, errOut, err := runTokenCmd(t, testGatewaySecret, "", nil, "encode", "--config", cfg, "--data", dataDir, "--max-age", "1h", `{"sub":"u1","name":"Jane","role":"admin"}`)
			if err != nil {
				t.Fatalf("token encode: %v\n%s", err, errOut)
			}
			tok := strings.TrimSpace(out)

			out, errOut, err = runTokenCmd(t, testGatewaySecret, tok+"\n", nil, "decode", "--config", cfg, "--data", dataDir)
			if err != nil {
				t.Fatalf("token decode: %v\n%s", err, errOut)
			}
			var got decodedToken
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("decode output is not JSON: %v\n%s", err, out)
			}
			if !strings.Contains(out, "\n  \"header\": {\n") {
				t.Errorf("decode output is not indented JSON:\n%s", out)
			}
			if got.Header["alg"] != tc.alg {
				t.Errorf("header %v, want alg %s", got.Header, tc.alg)
			}
			if tc.kid != "" && got.Header["kid"] != tc.kid {
				t.Errorf("header %v, want kid %s", got.Header, tc.kid)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, got.Claims); err != nil {
				t.Fatal(err)
			}
			if want := `{"sub":"u1","name":"Jane","role":"admin","iat":`; !strings.HasPrefix(compact.String(), want) {
				t.Errorf("claims %s, want them in their order, starting %s", compact.String(), want)
			}
			var claims struct{ Iat, Exp int64 }
			if err := json.Unmarshal(got.Claims, &claims); err != nil {
				t.Fatal(err)
			}
			if claims.Iat < before || claims.Exp-claims.Iat != 3600 {
				t.Errorf("iat %d, exp %d: want iat now and exp one hour later", claims.Iat, claims.Exp)
			}

			if tc.verify != nil {
				if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return tc.verify, nil }, jwt.WithValidMethods([]string{tc.alg})); err != nil {
					t.Errorf("golang-jwt does not verify the token: %v", err)
				}
			}
		})
	}
}

// TestTokenDecodeRefuses: a token that does not verify prints nothing on stdout and fails
// with the reason an operator looks for.
func TestTokenDecodeRefuses(t *testing.T) {
	cases, dataDir := tokenCases(t)
	byName := map[string]tokenCase{}
	for _, c := range cases {
		byName[c.name] = c
	}
	encode := func(t *testing.T, tc tokenCase, secret string, now func() time.Time, maxAge string) string {
		t.Helper()
		out, errOut, err := runTokenCmd(t, secret, `{"sub":"u1"}`, now, "encode", "--config", writeConfig(t, tc.yaml), "--data", dataDir, "--max-age", maxAge)
		if err != nil {
			t.Fatalf("token encode: %v\n%s", err, errOut)
		}
		return strings.TrimSpace(out)
	}
	twoHoursAgo := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	inAnHour := func() time.Time { return time.Now().Add(time.Hour) }
	hs, es := byName["jws HS256"], byName["jws ES256"]
	// A second ES256 data directory: its key is unknown to the first.
	otherCases, otherDir := tokenCases(t)
	otherES := otherCases[2]
	otherTok, errOut, err := runTokenCmd(t, testGatewaySecret, `{"sub":"u1"}`, nil, "encode", "--config", writeConfig(t, otherES.yaml), "--data", otherDir)
	if err != nil {
		t.Fatalf("token encode: %v\n%s", err, errOut)
	}
	hsTok := encode(t, hs, testGatewaySecret, nil, "1h")
	parts := strings.Split(hsTok, ".")
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		tc     tokenCase
		secret string
		tok    string
		reason string
	}{
		{"expired jws", hs, testGatewaySecret, encode(t, hs, testGatewaySecret, twoHoursAgo, "1h"), "expired"},
		{"expired jwe", byName["jwe"], testGatewaySecret, encode(t, byName["jwe"], testGatewaySecret, twoHoursAgo, "1h"), "expired"},
		{"issued in the future", es, testGatewaySecret, encode(t, es, testGatewaySecret, inAnHour, "2h"), "issued in the future"},
		{"bad signature", hs, testGatewaySecret, parts[0] + "." + parts[1] + "." + flipChar(parts[2], 5), "bad signature"},
		{"other secret", hs, "another-secret-another-secret-0123456789", hsTok, "bad signature"},
		{"alg none", hs, testGatewaySecret, none, "bad signature"},
		{"unknown kid", es, testGatewaySecret, strings.TrimSpace(otherTok), "unknown kid"},
		{"jwe given to jws", hs, testGatewaySecret, encode(t, byName["jwe"], testGatewaySecret, nil, "1h"), "wrong format"},
		{"jws given to jwe", byName["jwe"], testGatewaySecret, hsTok, "wrong format"},
		{"jwe under another secret", byName["jwe"], "another-secret-another-secret-0123456789", encode(t, byName["jwe"], testGatewaySecret, nil, "1h"), "does not decrypt"},
		{"not a token", es, testGatewaySecret, "hello", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runTokenCmd(t, tt.secret, "", nil, "decode", "--config", writeConfig(t, tt.tc.yaml), "--data", dataDir, tt.tok)
			if err == nil {
				t.Fatalf("token decode: got success, printed %s; want a refusal", out)
			}
			if out != "" {
				t.Errorf("token decode printed %q for a token that does not verify", out)
			}
			if !strings.Contains(err.Error(), "token does not verify") || !strings.Contains(err.Error(), ": "+tt.reason) {
				t.Errorf("token decode: got %q, want the reason %q", err, tt.reason)
			}
		})
	}
}

// TestTokenCommandErrors: what the command refuses before any token is made or read.
func TestTokenCommandErrors(t *testing.T) {
	empty := t.TempDir()
	es := writeConfig(t, "session: {token: {format: jws, alg: ES256}}")
	tests := []struct {
		name, secret, stdin string
		args                []string
		want                string
	}{
		{"no subcommand", testGatewaySecret, "", nil, "usage"},
		{"unknown subcommand", testGatewaySecret, "", []string{"verify"}, "usage"},
		{"no secret anywhere", "", "", []string{"encode", "--data", empty, `{}`}, "no session secret"},
		{"default key not generated yet", testGatewaySecret, "", []string{"encode", "--config", es, "--data", empty, `{}`}, "gateway serve creates it on first start"},
		{"claims not an object", testGatewaySecret, "", []string{"encode", "--data", empty, `[1,2]`}, "not a JSON object"},
		{"nothing on stdin", testGatewaySecret, "  \n", []string{"decode", "--data", empty}, "nothing to read"},
		{"max-age not positive", testGatewaySecret, "", []string{"encode", "--data", empty, "--max-age", "0s", `{}`}, "--max-age must be positive"},
		{"short secret for HS256", "short", "", []string{"encode", "--config", writeConfig(t, "session: {token: {format: jws}}"), "--data", empty, `{}`}, "HS256 needs at least 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runTokenCmd(t, tt.secret, tt.stdin, nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("gateway token %v: got %v (stdout %q), want an error containing %q", tt.args, err, out, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(empty, "secret")); err == nil {
		t.Errorf("the token command generated a secret in %s; only serve may", empty)
	}
	if _, err := os.Stat(filepath.Join(empty, "session-token-es256.pem")); err == nil {
		t.Errorf("the token command generated a key in %s; only serve may", empty)
	}
}

// TestSessionKeyIsNotAnAssertionKey: the apps receive tokens the assertion keys sign, so a
// session.token.keys entry that is one of them is refused.
func TestSessionKeyIsNotAnAssertionKey(t *testing.T) {
	data := t.TempDir()
	if _, err := assertion.Open(assertion.Options{Dir: data, Issuer: "http://127.0.0.1", TTL: 5 * time.Minute,
		RotateEvery: 720 * time.Hour, PublishAhead: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(data, assertion.KeysDir, "*.pem"))
	if len(files) == 0 {
		t.Fatal("no assertion key written")
	}
	cfg := writeConfig(t, fmt.Sprintf("session: {token: {format: jws, alg: ES256, keys: [%q]}}", files[0]))
	_, _, err := runTokenCmd(t, testGatewaySecret, "", nil, "encode", "--config", cfg, "--data", data, `{"sub":"x"}`)
	if err == nil || !strings.Contains(err.Error(), "is an assertion key") {
		t.Errorf("an assertion key as the session key: got %v, want it refused", err)
	}
}

// flipChar changes the character at i to another base64url character.
func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
