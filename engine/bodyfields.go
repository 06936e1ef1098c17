package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
)

// A body field given twice is refused (400) before anything reads the body. With two
// values, what one reader takes (the sign-in limit's key, the CSRF check) and what another
// takes (authorize's credentials, built from the same body by a script that may pick
// either one or join them) can differ: username=victim&username=other moved the failure
// count off the account it guessed at. No NextAuth client sends a field twice.

// repeatedFieldError names the field given more than once.
type repeatedFieldError struct{ field string }

func (e repeatedFieldError) Error() string {
	return fmt.Sprintf("the field %q is given more than once", e.field)
}

// repeatedFormField reports the first (in byte order, so the answer is stable) field of
// a parsed form with more than one value. Keys are compared after percent-decoding, as
// every reader sees them: user%6Eame is username.
func repeatedFormField(values url.Values) error {
	var repeated []string
	for k, v := range values {
		if len(v) > 1 {
			repeated = append(repeated, k)
		}
	}
	if len(repeated) == 0 {
		return nil
	}
	return repeatedFieldError{slices.Min(repeated)}
}

// repeatedJSONKey reports the first top-level key that a JSON object gives twice
// (encoding/json keeps the last silently). Keys are compared after unescaping:
// "user\u006eame" is username. raw must already be known to be valid JSON.
func repeatedJSONKey(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil // not an object: the body is empty anyway
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("read JSON key: %w", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return repeatedFieldError{key}
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("read JSON value of %q: %w", key, err)
		}
	}
	return nil
}
