package script

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"math"

	"github.com/dop251/goja"
	"github.com/google/uuid"
)

// maxRandomBytes bounds randomBytes: enough for any key or token a script needs, small
// enough that a mistaken length cannot make a huge string.
const maxRandomBytes = 1024

// hmacHashes are the algorithms crypto.hmac takes. SHA-1 is here for RFC 6238/4226
// compatibility (TOTP, HOTP), where it is still the default and still sound as an HMAC.
var hmacHashes = map[string]func() hash.Hash{
	"sha256": sha256.New,
	"sha512": sha512.New,
	"sha1":   sha1.New,
}

// cryptoModule is the Go-backed `callgate/crypto`: random bytes, SHA-256, HMAC and a
// constant-time comparison, all synchronous (each is microseconds of work), on strings,
// with digests spelled in hex (the default) or unpadded base64url.
func (v *vm) cryptoModule() *goja.Object {
	rt := v.rt
	m := rt.NewObject()
	set := func(name string, fn func(goja.FunctionCall) goja.Value) {
		_ = m.Set(name, fn)
	}
	set("randomBytes", func(fc goja.FunctionCall) goja.Value {
		n := fc.Argument(0)
		if v.typeOf(n) != "number" {
			v.throw("TypeError", fmt.Sprintf("crypto.randomBytes: n must be an integer from 1 to %d, got %s", maxRandomBytes, v.typeOf(n)))
		}
		f := n.ToFloat()
		if !(f >= 1 && f <= maxRandomBytes) || f != math.Trunc(f) { // NaN fails the first test
			v.throw("TypeError", fmt.Sprintf("crypto.randomBytes: n must be an integer from 1 to %d, got %v", maxRandomBytes, n))
		}
		enc := v.encoding(fc.Argument(1), "crypto.randomBytes")
		b := make([]byte, int(f))
		_, _ = rand.Read(b) // never fails (crypto/rand: it aborts the process instead)
		return rt.ToValue(enc(b))
	})
	set("randomUUID", func(goja.FunctionCall) goja.Value {
		return rt.ToValue(uuid.NewString())
	})
	set("sha256", func(fc goja.FunctionCall) goja.Value {
		data := v.stringArg(fc.Argument(0), "crypto.sha256", "data")
		enc := v.encoding(fc.Argument(1), "crypto.sha256")
		sum := sha256.Sum256([]byte(data))
		return rt.ToValue(enc(sum[:]))
	})
	set("hmac", func(fc goja.FunctionCall) goja.Value {
		alg := fc.Argument(0)
		s, isStr := alg.Export().(string)
		isStr = isStr && !isObject(alg)
		newHash, ok := hmacHashes[s]
		if !ok || !isStr {
			got := v.typeOf(alg)
			if isStr {
				got = fmt.Sprintf("%q", s)
			}
			v.throw("TypeError", fmt.Sprintf(`crypto.hmac: algorithm must be "sha256", "sha512" or "sha1", got %s`, got))
		}
		key := v.stringArg(fc.Argument(1), "crypto.hmac", "key")
		data := v.stringArg(fc.Argument(2), "crypto.hmac", "data")
		enc := v.encoding(fc.Argument(3), "crypto.hmac")
		mac := hmac.New(newHash, []byte(key))
		mac.Write([]byte(data))
		return rt.ToValue(enc(mac.Sum(nil)))
	})
	set("timingSafeEqual", func(fc goja.FunctionCall) goja.Value {
		a := v.stringArg(fc.Argument(0), "crypto.timingSafeEqual", "a")
		b := v.stringArg(fc.Argument(1), "crypto.timingSafeEqual", "b")
		// The length is not secret (a MAC or a code has a known one); the content is,
		// and ConstantTimeCompare reads every byte of equal-length inputs.
		return rt.ToValue(subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1)
	})
	freeze(rt, m)
	return m
}

// stringArg returns a string argument or throws a TypeError naming fn and the argument.
func (v *vm) stringArg(val goja.Value, fn, name string) string {
	s, ok := val.Export().(string)
	if !ok || isObject(val) {
		v.throw("TypeError", fmt.Sprintf("%s: %s must be a string, got %s", fn, name, v.typeOf(val)))
	}
	return s
}

// encoding reads an optional encoding argument: "hex" (the default) or "base64url"
// (unpadded, as in JWTs and WebAuthn).
func (v *vm) encoding(val goja.Value, fn string) func([]byte) string {
	if isNullish(val) {
		return hex.EncodeToString
	}
	s, ok := val.Export().(string)
	ok = ok && !isObject(val)
	if ok {
		switch s {
		case "hex":
			return hex.EncodeToString
		case "base64url":
			return base64.RawURLEncoding.EncodeToString
		}
	}
	got := v.typeOf(val)
	if ok {
		got = fmt.Sprintf("%q", s)
	}
	v.throw("TypeError", fmt.Sprintf(`%s: encoding must be "hex" or "base64url", got %s`, fn, got))
	return nil
}
