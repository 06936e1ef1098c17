package store_test

import (
	"testing"

	"github.com/callgate/callgate/store"
)

func TestIdentifierKey(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "demo", "demo"},
		{"capitalised", "Demo", "demo"},
		{"upper case", "DEMO", "demo"},
		{"surrounding spaces", " demo ", "demo"},
		{"tabs and newlines", "\tdemo\r\n", "demo"},
		{"no-break space", "demo\u00a0", "demo"},
		{"ideographic space", "\u3000demo\u3000", "demo"},
		{"fullwidth", "ｄｅｍｏ", "demo"},
		{"fullwidth upper case", "ＤＥＭＯ", "demo"},
		{"mixed width", "Ｄemo", "demo"},
		{"zero-width space inside", "de\u200bmo", "demo"},
		{"soft hyphen inside", "de\u00admo", "demo"},
		{"byte order mark", "\ufeffdemo", "demo"},
		{"ligature", "\ufb01sh", "fish"},
		{"Kelvin sign", "\u212aate", "kate"},
		{"full case folding", "Straße", "strasse"},
		{"decomposed accent", "jose\u0301", "jos\u00e9"},
		{"composed accent", "JOS\u00c9", "jos\u00e9"},
		{"e-mail", " Jatin@Example.COM ", "jatin@example.com"},
		{"fullwidth e-mail", "ｊａｔｉｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", "jatin@example.com"},
		{"only spaces", "   ", ""},
		{"inner space kept", "jane doe", "jane doe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := store.IdentifierKey(tt.in)
			if got != tt.want {
				t.Errorf("IdentifierKey(%+q) = %+q, want %+q", tt.in, got, tt.want)
			}
			if again := store.IdentifierKey(got); again != got {
				t.Errorf("IdentifierKey is not idempotent on %+q: %+q", got, again)
			}
		})
	}
}

// TestIdentifierKeyAgreesWithEmailLookup: two e-mails the backends treat as one account
// (same EmailKey) must have one counter key.
func TestIdentifierKeyAgreesWithEmailLookup(t *testing.T) {
	for _, pair := range [][2]string{
		{"Jatin@Example.com", "jatin@example.com"},
		{"\u212a@x", "k@x"},        // Kelvin sign lower-cases to k
		{"\u0130@x", "i\u0307@x"},  // dotted capital I
		{"\u03a3A@x", "\u03c3a@x"}, // sigma
	} {
		if store.EmailKey(pair[0]) != store.EmailKey(pair[1]) {
			continue // not one account for the backends: nothing to agree on
		}
		if a, b := store.IdentifierKey(pair[0]), store.IdentifierKey(pair[1]); a != b {
			t.Errorf("%+q and %+q are one account by EmailKey but have keys %+q and %+q", pair[0], pair[1], a, b)
		}
	}
}
