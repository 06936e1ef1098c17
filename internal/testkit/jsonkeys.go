package testkit

import (
	"bytes"
	"encoding/json"
	"testing"
)

// ObjectKeys lists the keys of the JSON object text in their order in the text, which a Go
// map forgets: the tests of key order compare it with what NextAuth (or a script) wrote.
func ObjectKeys(t testing.TB, text []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(text))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s is not a JSON object", text)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("read a key of %s: %v", text, err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("read the value of %q in %s: %v", k, text, err)
		}
	}
	return keys
}
