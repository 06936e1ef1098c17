package inspect

import (
	"encoding/json"
	"strings"

	"github.com/valyala/fastjson"
)

// Redacted replaces every value the inspector must not show.
const Redacted = "[redacted]"

// The core's redaction. The inspector shows arguments and results as the script saw them,
// which is exactly where the secrets of a sign-in pass: the password in authorize's
// credentials and in req.body, the OAuth tokens in account, cookies and the Authorization
// header in req.headers, a user record's password hash. A value is redacted when its key
// says it is secret (whatever the nesting: everything under a secret key is), when the
// flow declared the key secret (the credentials provider's password fields, whatever
// their names), or when the value itself is a compact JWS or JWE. Redaction is by the
// core, not the script: a script cannot opt its values out of it.

// secretKeyParts make a key secret wherever they appear in it (after lowercasing and
// dropping '_' and '-'): "password", "passwordHash", "client_secret", "x-api-key".
var secretKeyParts = []string{"password", "passwd", "secret", "apikey", "privatekey", "credential"}

// secretKeys are secret as whole keys.
var secretKeys = map[string]bool{
	"code": true, "codeverifier": true, "cookie": true, "cookies": true, "setcookie": true,
	"authorization": true, "proxyauthorization": true, "otp": true, "totp": true,
	"recoverycode": true, "recoverycodes": true, "state": true, "nonce": true, "pin": true,
}

// secretKey reports whether a key names a secret: the parts above, or a name ending in
// "token" (csrfToken, access_token, id_token, sessionToken) other than "token" itself,
// which is jwt's claims object and is shown, its own secrets redacted.
func secretKey(key string, extra []string) bool {
	k := normalKey(key)
	if secretKeys[k] || (strings.HasSuffix(k, "token") && k != "token") {
		return true
	}
	for _, p := range secretKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	for _, e := range extra {
		if strings.EqualFold(e, key) {
			return true
		}
	}
	return false
}

// normalKey lowercases key and drops '_' and '-': "client_secret", "X-Api-Key" and
// "csrfToken" become "clientsecret", "xapikey" and "csrftoken".
func normalKey(key string) string {
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_' || c == '-':
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// looksLikeJOSE reports a compact JWS (three parts) or JWE (five) whose header is JSON:
// a raw token, wherever a script put it.
func looksLikeJOSE(s string) bool {
	if len(s) < 32 || !strings.HasPrefix(s, "eyJ") {
		return false
	}
	dots := strings.Count(s, ".")
	if dots != 2 && dots != 4 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type redactor struct {
	extra []string
	// values are secrets the user typed (a password), redacted wherever a script copied
	// them: into the token, into a message, into another field.
	values []string
}

func newRedactor(extra []string, values ...string) redactor {
	return redactor{extra: extra, values: values}
}

// minSecretValue is the shortest typed secret searched for inside other strings: a
// one-letter password would redact every string holding that letter.
const minSecretValue = 4

func (r redactor) holdsSecretValue(s string) bool {
	for _, v := range r.values {
		if v == s || (len(v) >= minSecretValue && strings.Contains(s, v)) {
			return true
		}
	}
	return false
}

// parsers are reused: a traced request redacts several values, each parsed once.
var parsers fastjson.ParserPool

// redactedJSON is Redacted as a JSON string.
const redactedJSON = `"` + Redacted + `"`

// json rewrites one JSON value with its secrets redacted, keeping the key order the
// script saw. Input it cannot read is replaced whole: nothing unredacted gets through.
func (r redactor) json(raw json.RawMessage) json.RawMessage {
	if !json.Valid(raw) { // fastjson is lenient ("00"); what it writes must be JSON
		return json.RawMessage(`"[unreadable]"`)
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(raw)
	if err != nil {
		return json.RawMessage(`"[unreadable]"`)
	}
	return r.write(make([]byte, 0, len(raw)+32), v, false)
}

func (r redactor) write(buf []byte, v *fastjson.Value, secret bool) []byte {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		buf = append(buf, '{')
		first := true
		o.Visit(func(key []byte, val *fastjson.Value) {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			k := string(key)
			buf = appendJSONString(buf, k)
			buf = append(buf, ':')
			buf = r.write(buf, val, secret || secretKey(k, r.extra))
		})
		return append(buf, '}')
	case fastjson.TypeArray:
		items, _ := v.Array()
		buf = append(buf, '[')
		for i, item := range items {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = r.write(buf, item, secret)
		}
		return append(buf, ']')
	case fastjson.TypeString:
		str := string(v.GetStringBytes())
		if secret || looksLikeJOSE(str) || r.holdsSecretValue(str) {
			return append(buf, redactedJSON...)
		}
		return appendJSONString(buf, str)
	case fastjson.TypeNumber:
		if secret {
			return append(buf, redactedJSON...)
		}
		return v.MarshalTo(buf)
	default: // true, false, null
		return v.MarshalTo(buf)
	}
}

// appendJSONString appends s as a JSON string, escaping what JSON requires and <, > and &
// as encoding/json does, so that no text can close a script element wherever it is shown;
// bytes that are not UTF-8 become U+FFFD.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	s = strings.ToValidUTF8(s, "\uFFFD")
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}
