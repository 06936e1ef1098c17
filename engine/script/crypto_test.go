package script

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// cryptoCase is one expression run in a callback: it returns want, or throws a TypeError
// whose message contains wantErr. match, when set, is checked instead of want (random
// output).
type cryptoCase struct {
	name, expr string
	want       any
	match      string
	wantErr    string
}

var cryptoCases = []cryptoCase{
	// FIPS 180-2 and RFC 4231 / RFC 2202 vectors; the UTF-8 one from sha256sum.
	{name: "sha256 abc", expr: `crypto.sha256("abc")`, want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{name: "sha256 abc hex", expr: `crypto.sha256("abc", "hex")`, want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{name: "sha256 abc base64url", expr: `crypto.sha256("abc", "base64url")`, want: "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"},
	{name: "sha256 empty", expr: `crypto.sha256("")`, want: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{name: "sha256 UTF-8", expr: `crypto.sha256("\u00e9")`, want: "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c"},
	{name: "hmac sha256 RFC 4231 case 2", expr: `crypto.hmac("sha256", "Jefe", "what do ya want for nothing?")`, want: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	{name: "hmac sha256 base64url", expr: `crypto.hmac("sha256", "Jefe", "what do ya want for nothing?", "base64url")`, want: "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM"},
	{name: "hmac sha512 RFC 4231 case 2", expr: `crypto.hmac("sha512", "Jefe", "what do ya want for nothing?")`, want: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
	{name: "hmac sha1 RFC 2202 case 2", expr: `crypto.hmac("sha1", "Jefe", "what do ya want for nothing?")`, want: "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
	{name: "named exports are the default's", expr: `randomBytes === crypto.randomBytes && randomUUID === crypto.randomUUID && sha256 === crypto.sha256 && hmac === crypto.hmac && timingSafeEqual === crypto.timingSafeEqual`, want: true},
	{name: "named sha256", expr: `sha256("abc")`, want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{name: "module frozen", expr: `Object.isFrozen(crypto)`, want: true},

	{name: "timingSafeEqual equal", expr: `crypto.timingSafeEqual("abc", "abc")`, want: true},
	{name: "timingSafeEqual empty", expr: `crypto.timingSafeEqual("", "")`, want: true},
	{name: "timingSafeEqual differs", expr: `crypto.timingSafeEqual("abc", "abd")`, want: false},
	{name: "timingSafeEqual different length", expr: `crypto.timingSafeEqual("abc", "abcd")`, want: false},
	{name: "timingSafeEqual a prefix of b", expr: `timingSafeEqual("", "a")`, want: false},
	{name: "timingSafeEqual of a MAC", expr: `crypto.timingSafeEqual(crypto.hmac("sha256", "k", "m"), crypto.hmac("sha256", "k", "m"))`, want: true},

	{name: "randomBytes hex default", expr: `crypto.randomBytes(16)`, match: `^[0-9a-f]{32}$`},
	{name: "randomBytes hex", expr: `crypto.randomBytes(1, "hex")`, match: `^[0-9a-f]{2}$`},
	{name: "randomBytes base64url", expr: `crypto.randomBytes(16, "base64url")`, match: `^[A-Za-z0-9_-]{22}$`},
	{name: "randomBytes max", expr: `crypto.randomBytes(1024).length`, want: 2048.0},
	{name: "randomBytes differ", expr: `crypto.randomBytes(16) !== crypto.randomBytes(16)`, want: true},
	{name: "randomUUID", expr: `crypto.randomUUID()`, match: `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`},

	{name: "randomBytes zero", expr: `crypto.randomBytes(0)`, wantErr: "crypto.randomBytes: n must be an integer from 1 to 1024, got 0"},
	{name: "randomBytes too many", expr: `crypto.randomBytes(1025)`, wantErr: "crypto.randomBytes: n must be an integer from 1 to 1024, got 1025"},
	{name: "randomBytes fraction", expr: `crypto.randomBytes(1.5)`, wantErr: "crypto.randomBytes: n must be an integer from 1 to 1024, got 1.5"},
	{name: "randomBytes NaN", expr: `crypto.randomBytes(NaN)`, wantErr: "crypto.randomBytes: n must be an integer from 1 to 1024, got NaN"},
	{name: "randomBytes Infinity", expr: `crypto.randomBytes(Infinity)`, wantErr: "got Infinity"},
	{name: "randomBytes string", expr: `crypto.randomBytes("16")`, wantErr: "crypto.randomBytes: n must be an integer from 1 to 1024, got string"},
	{name: "randomBytes missing", expr: `crypto.randomBytes()`, wantErr: "got undefined"},
	{name: "randomBytes encoding", expr: `crypto.randomBytes(4, "base64")`, wantErr: `crypto.randomBytes: encoding must be "hex" or "base64url", got "base64"`},
	{name: "sha256 not a string", expr: `crypto.sha256(42)`, wantErr: "crypto.sha256: data must be a string, got number"},
	{name: "sha256 String object", expr: `crypto.sha256(new String("abc"))`, wantErr: "crypto.sha256: data must be a string, got object"},
	{name: "sha256 encoding", expr: `crypto.sha256("abc", "latin1")`, wantErr: `crypto.sha256: encoding must be "hex" or "base64url", got "latin1"`},
	{name: "sha256 encoding not a string", expr: `crypto.sha256("abc", 64)`, wantErr: `encoding must be "hex" or "base64url", got number`},
	{name: "hmac md5", expr: `crypto.hmac("md5", "k", "m")`, wantErr: `crypto.hmac: algorithm must be "sha256", "sha512" or "sha1", got "md5"`},
	{name: "hmac upper case", expr: `crypto.hmac("SHA256", "k", "m")`, wantErr: `algorithm must be "sha256", "sha512" or "sha1", got "SHA256"`},
	{name: "hmac algorithm missing", expr: `crypto.hmac()`, wantErr: `algorithm must be "sha256", "sha512" or "sha1", got undefined`},
	{name: "hmac key not a string", expr: `crypto.hmac("sha256", null, "m")`, wantErr: "crypto.hmac: key must be a string, got null"},
	{name: "hmac data not a string", expr: `crypto.hmac("sha256", "k", ["m"])`, wantErr: "crypto.hmac: data must be a string, got array"},
	{name: "hmac encoding", expr: `crypto.hmac("sha256", "k", "m", "base32")`, wantErr: `crypto.hmac: encoding must be "hex" or "base64url", got "base32"`},
	{name: "timingSafeEqual not strings", expr: `crypto.timingSafeEqual("1", 1)`, wantErr: "crypto.timingSafeEqual: b must be a string, got number"},
}

// cryptoConfig runs cryptoCases[i] when the jwt callback gets {case: i}.
func cryptoConfig() string {
	var b strings.Builder
	b.WriteString(`import Credentials from "callgate/providers/credentials";
import crypto, { randomBytes, randomUUID, sha256, hmac, timingSafeEqual } from "callgate/crypto";
const cases = [
`)
	for _, c := range cryptoCases {
		fmt.Fprintf(&b, "  () => (%s),\n", c.expr)
	}
	b.WriteString(`];
export default {
  providers: [Credentials({ authorize: async () => null })],
  callbacks: {
    jwt({ token }) {
      try {
        return { out: cases[token.case]() };
      } catch (e) {
        return { name: e.name, typeError: e instanceof TypeError, message: e.message };
      }
    },
  },
};
`)
	return b.String()
}

func TestCryptoModule(t *testing.T) {
	l := load(t, writeDir(t, map[string]string{"auth.config.js": cryptoConfig()}), nil)
	for i, tc := range cryptoCases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{"case": i}})
			if err != nil {
				t.Fatalf("%s: %v", tc.expr, err)
			}
			got := res.(map[string]any)
			if tc.wantErr != "" {
				msg, _ := got["message"].(string)
				if got["typeError"] != true || got["name"] != "TypeError" || !strings.Contains(msg, tc.wantErr) {
					t.Errorf("%s: got %v, want a TypeError containing %q", tc.expr, got, tc.wantErr)
				}
				return
			}
			out, thrown := got["out"], got["message"]
			if thrown != nil {
				t.Fatalf("%s threw %s: %v", tc.expr, got["name"], thrown)
			}
			if tc.match != "" {
				s, _ := out.(string)
				if !regexp.MustCompile(tc.match).MatchString(s) {
					t.Errorf("%s: got %v, want a match of %s", tc.expr, out, tc.match)
				}
				return
			}
			if out != tc.want {
				t.Errorf("%s: got %#v, want %#v", tc.expr, out, tc.want)
			}
		})
	}
}

func TestCryptoImportName(t *testing.T) {
	if !strings.Contains(builtinList, `"callgate/crypto"`) || !strings.Contains(builtinList, `"callgate/providers/passkey"`) {
		t.Errorf("builtinList %s does not name callgate/crypto and callgate/providers/passkey", builtinList)
	}
	se := loadErr(t, writeDir(t, map[string]string{"auth.config.js": `import c from "callgate/cryptography"; export default {providers: []};`}))
	if !strings.Contains(se.Message, `"callgate/crypto"`) {
		t.Errorf("import error %q, want it to list callgate/crypto", se.Message)
	}
}
