package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/assertion"
	"github.com/callgate/callgate/engine/jwk"
	"github.com/callgate/callgate/engine/token"
)

// sessionJWKSPath serves the public keys of the signed session token (session.token.format
// jws with RS256, ES256 or EdDSA). It is not the assertion JWKS (/.well-known/jwks.json): an
// app that trusts assertions must not take a session token for one.
const sessionJWKSPath = "/.well-known/session-jwks.json"

// sessionJWKSMaxAge is how long a client may cache the session JWKS, in seconds. The keys
// change only on a restart with a new key list, which keeps the old keys listed.
const sessionJWKSMaxAge = 300

// openSessionTokens returns the session token codec session.token asks for: the secrets'
// JWE ring (jwe), or a signed codec keyed by the secrets (HS256) or by the key files. With
// generate, the default key file is created when missing (serve); without, a missing key is
// an error (the token command, which must not invent a key nothing signed with).
func openSessionTokens(cfg config.Config, secrets []string, ring *token.KeyRing, generate bool, now func() time.Time) (token.Codec, error) {
	t := cfg.Session.Token
	if t.Format != config.TokenFormatJWS {
		return ring, nil
	}
	o := token.SignedOptions{Alg: t.Alg}
	if t.Alg == config.TokenAlgHS256 {
		o.Secrets = secrets
	}
	paths, isDefault := cfg.SessionTokenKeyFiles()
	assertionKeys := assertionKeyIDs(cfg.DataDir)
	for _, path := range paths {
		var k jwk.Key
		var err error
		if isDefault && generate {
			k, err = jwk.ReadOrCreate(path, t.Alg)
		} else {
			k, err = jwk.Read(path)
		}
		if err != nil {
			if isDefault && errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("session.token: no %s key at %s yet: gateway serve creates it on first start", t.Alg, path)
			}
			return nil, fmt.Errorf("session.token.keys: %w", err)
		}
		if assertionKeys[k.ID] {
			// Every app behind the gateway receives tokens this key signs: with it as a
			// session key, any app could pass an assertion off as a session cookie.
			return nil, fmt.Errorf("session.token.keys: %s is an assertion key (%s): give session tokens a key of their own", path, assertion.KeysDir)
		}
		o.Keys = append(o.Keys, k)
	}
	codec, err := token.NewSigned(o, token.WithClock(now))
	if err != nil {
		return nil, fmt.Errorf("session.token: %w", err)
	}
	return codec, nil
}

// sessionJWKSHandler serves the signed session token's public keys, or is nil when there are
// none to publish (jwe, HS256): then the path is not the gateway's.
func sessionJWKSHandler(codec token.Codec) http.Handler {
	signed, ok := codec.(*token.Signed)
	if !ok || signed.JWKS() == nil {
		return nil
	}
	return jwk.ServeSet(signed.JWKS, sessionJWKSMaxAge)
}

// describeSessionTokens is the start-up log line's attributes for the session token.
func describeSessionTokens(codec token.Codec) []any {
	attrs := []any{"format", codec.Format()}
	if signed, ok := codec.(*token.Signed); ok {
		attrs = append(attrs, "alg", signed.Alg())
		if signed.JWKS() != nil {
			attrs = append(attrs, "jwks", sessionJWKSPath)
		}
	}
	return attrs
}

const tokenUsage = `Usage:
  gateway token decode [--config FILE] [--data DIR] [TOKEN]
  gateway token encode [--config FILE] [--data DIR] [--max-age 720h] [CLAIMS]

Session tokens in the format and with the keys serve uses: session.token in the YAML file,
the secret from AUTH_SECRET / NEXTAUTH_SECRET, secret_file or DIR/secret, the key files
from DIR. Run 'gateway token <command> --help' for a command's flags.
`

const tokenDecodeUsage = `Usage: gateway token decode [--config FILE] [--data DIR] [TOKEN]

Verifies TOKEN (read from standard input when absent or "-") with the keys serve uses and
prints {"header": …, "claims": …} as indented JSON, the claims in the token's order. A token
that does not verify prints nothing and exits 1 with the reason: expired, bad signature,
unknown kid, wrong format, ...

Flags:
`

const tokenEncodeUsage = `Usage: gateway token encode [--config FILE] [--data DIR] [--max-age 720h] [CLAIMS]

Prints a session token of CLAIMS (a JSON object, read from standard input when absent or "-")
plus iat, exp (now + --max-age) and jti, as a sign-in would, in the format and with the keys
serve uses: for tests and for apps that read the token.

Flags:
`

func (c *cli) runToken(ctx context.Context, args []string) error {
	cmd, err := c.subcommand(args, tokenUsage, "decode", "encode")
	if cmd == "" {
		return err
	}
	usage := tokenDecodeUsage
	if cmd == "encode" {
		usage = tokenEncodeUsage
	}
	fs := flag.NewFlagSet("token "+cmd, flag.ContinueOnError)
	var f serveFlags
	fs.StringVar(&f.configFile, "config", "", "YAML configuration file (session.token, secret_file, data)")
	fs.StringVar(&f.data, "data", "", "data directory: generated secret and key files (default ./"+config.DefaultDataDir+")")
	maxAge := new(time.Duration)
	if cmd == "encode" {
		fs.DurationVar(maxAge, "max-age", 30*24*time.Hour, "the token's lifetime (exp = now + max-age)")
	}
	rest, err := c.parseFlags(fs, usage, args[1:])
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return c.usageError(fs, usage, "one %s at most, got %d arguments", map[string]string{"decode": "TOKEN", "encode": "CLAIMS"}[cmd], len(rest))
	}
	arg := ""
	if len(rest) == 1 {
		arg = rest[0]
	}
	input, err := c.tokenInput(arg)
	if err != nil {
		return err
	}
	cfg, err := c.resolveConfig(f)
	if err != nil {
		return err
	}
	codec, err := c.tokenCodec(cfg)
	if err != nil {
		return err
	}
	if cmd == "encode" {
		if *maxAge <= 0 {
			return errors.New("token encode: --max-age must be positive")
		}
		tok, err := codec.EncodeJSON(input, *maxAge)
		if err != nil {
			return fmt.Errorf("token encode: %w", err)
		}
		fmt.Fprintln(c.stdout, tok)
		return nil
	}
	return c.decodeToken(codec, string(input))
}

// tokenInput is the argument, or standard input (bounded) when it is absent or "-".
func (c *cli) tokenInput(arg string) ([]byte, error) {
	if arg != "" && arg != "-" {
		return []byte(strings.TrimSpace(arg)), nil
	}
	data, err := io.ReadAll(io.LimitReader(c.stdin, token.MaxTokenBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("nothing to read: give the token or claims as an argument or on standard input")
	}
	return data, nil
}

// tokenCodec is serve's codec, without generating anything: no secret, no key file.
func (c *cli) tokenCodec(cfg config.Config) (token.Codec, error) {
	secrets, err := c.readSecrets(cfg)
	if err != nil {
		return nil, err
	}
	now := c.now
	if now == nil {
		now = time.Now
	}
	ring, err := token.NewKeyRing(secrets, "", token.WithClock(now))
	if err != nil {
		return nil, fmt.Errorf("session secret: %w", err)
	}
	return openSessionTokens(cfg, secrets, ring, false, now)
}

func (c *cli) decodeToken(codec token.Codec, tok string) error {
	_, payload, err := codec.DecodePayload(tok)
	if err != nil {
		return fmt.Errorf("token does not verify (%s %s): %s: %w", codec.Format(), algOf(codec), decodeReason(err), err)
	}
	header, err := token.Header(tok)
	if err != nil {
		return fmt.Errorf("token header: %w", err)
	}
	out, err := json.MarshalIndent(struct {
		Header json.RawMessage `json:"header"`
		Claims json.RawMessage `json:"claims"`
	}{header, payload}, "", "  ")
	if err != nil {
		return fmt.Errorf("print token: %w", err)
	}
	fmt.Fprintf(c.stdout, "%s\n", out)
	return nil
}

func algOf(codec token.Codec) string {
	if signed, ok := codec.(*token.Signed); ok {
		return signed.Alg()
	}
	return "dir+A256GCM"
}

// decodeReason names why a token was refused, in the words an operator looks for.
func decodeReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{token.ErrEmpty, "empty"},
		{token.ErrTooLarge, "too large"},
		{token.ErrWrongFormat, "wrong format"},
		{token.ErrUnknownKey, "unknown kid"},
		{token.ErrSignature, "bad signature"},
		{token.ErrDecrypt, "does not decrypt with any secret (wrong secret or tampered)"},
		{token.ErrExpired, "expired"},
		{token.ErrNotYetValid, "not yet valid"},
		{token.ErrIssuedInFuture, "issued in the future"},
		{token.ErrInvalidClaims, "invalid claims"},
		{token.ErrMalformed, "malformed"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "invalid"
}

// assertionKeyIDs are the key ids of the assertion keys in the data directory (none when it
// has none yet, or they cannot be read: the assertion key ring reports that itself).
func assertionKeyIDs(dataDir string) map[string]bool {
	ids := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(dataDir, assertion.KeysDir, "*.pem"))
	for _, f := range files {
		if k, err := jwk.Read(f); err == nil {
			ids[k.ID] = true
		}
	}
	return ids
}
