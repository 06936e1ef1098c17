package inspect

import (
	"bytes"
	"encoding/json"
	"strings"
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
	k := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(key))
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

type redactor struct{ extra []string }

func newRedactor(extra []string) redactor { return redactor{extra: extra} }

// json rewrites one JSON value with its secrets redacted, keeping the key order the
// script saw. Input it cannot read is replaced whole: nothing unredacted gets through.
func (r redactor) json(raw json.RawMessage) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := r.value(dec, &buf, false); err != nil {
		return json.RawMessage(`"[unreadable]"`)
	}
	return buf.Bytes()
}

func (r redactor) value(dec *json.Decoder, buf *bytes.Buffer, secret bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			buf.WriteByte('{')
			for first := true; dec.More(); first = false {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				if !first {
					buf.WriteByte(',')
				}
				writeString(buf, key)
				buf.WriteByte(':')
				if err := r.value(dec, buf, secret || secretKey(key, r.extra)); err != nil {
					return err
				}
			}
			buf.WriteByte('}')
		case '[':
			buf.WriteByte('[')
			for first := true; dec.More(); first = false {
				if !first {
					buf.WriteByte(',')
				}
				if err := r.value(dec, buf, secret); err != nil {
					return err
				}
			}
			buf.WriteByte(']')
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		if secret || looksLikeJOSE(t) {
			writeString(buf, Redacted)
		} else {
			writeString(buf, t)
		}
	case json.Number:
		if secret {
			writeString(buf, Redacted)
		} else {
			buf.WriteString(t.String())
		}
	case bool:
		if t {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	}
	return nil
}

func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s)
	buf.Write(b)
}
