package assertion

import (
	"encoding/json"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"
)

// Claims is an assertion's claim set in the order its claims were set, as a JavaScript
// object keeps them: the app that decodes the token sees the claims an authorized()
// callback returned in the order the callback wrote them. Setting a claim that is already
// there replaces its value and keeps its place, as assignment does in JavaScript.
type Claims struct {
	names  []string
	values []json.RawMessage
}

// NewClaims returns an empty claim set with room for n claims.
func NewClaims(n int) *Claims {
	return &Claims{names: make([]string, 0, n), values: make([]json.RawMessage, 0, n)}
}

// Set sets name to v, which must marshal as JSON.
func (c *Claims) Set(name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("claim %q: %w", name, err)
	}
	c.setRaw(name, raw)
	return nil
}

// SetObject sets every member of the JSON object obj, in its order.
func (c *Claims) SetObject(obj []byte) error {
	if !gjson.ValidBytes(obj) {
		return fmt.Errorf("claims: invalid JSON")
	}
	res := gjson.ParseBytes(obj)
	if !res.IsObject() {
		return fmt.Errorf("claims: %s is not an object", res.Type)
	}
	res.ForEach(func(key, value gjson.Result) bool {
		c.setRaw(key.String(), json.RawMessage(value.Raw))
		return true
	})
	return nil
}

func (c *Claims) setRaw(name string, raw json.RawMessage) {
	for i, n := range c.names {
		if n == name {
			c.values[i] = raw
			return
		}
	}
	c.names = append(c.names, name)
	c.values = append(c.values, raw)
}

// Len is the number of claims.
func (c *Claims) Len() int { return len(c.names) }

// clone returns a copy of c with room for n more claims.
func (c *Claims) clone(n int) *Claims {
	d := NewClaims(len(c.names) + n)
	d.names = append(d.names, c.names...)
	d.values = append(d.values, c.values...)
	return d
}

// MarshalJSON writes the claims as one JSON object, in order.
func (c *Claims) MarshalJSON() ([]byte, error) {
	n := 2
	for i := range c.names {
		n += len(c.names[i]) + len(c.values[i]) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, name := range c.names {
		if i > 0 {
			b = append(b, ',')
		}
		q, err := json.Marshal(name)
		if err != nil {
			return nil, fmt.Errorf("claim name %q: %w", name, err)
		}
		b = append(b, q...)
		b = append(b, ':')
		b = append(b, c.values[i]...)
	}
	return append(b, '}'), nil
}

// signedClaims gives golang-jwt the ordered claim set to sign. The registered-claim getters
// serve validation, which is the app's job, not the signer's.
type signedClaims struct{ *Claims }

var _ jwt.Claims = signedClaims{}

func (signedClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (signedClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (signedClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (signedClaims) GetIssuer() (string, error)                   { return "", nil }
func (signedClaims) GetSubject() (string, error)                  { return "", nil }
func (signedClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }
