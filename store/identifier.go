package store

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// EmailKey is the form in which an e-mail is indexed and compared by every backend:
// lower-cased, so that Jatin@Example.com and jatin@example.com are the same account, as
// they are for every mail server in practice. Backends call it rather than lower-casing
// themselves, so that IdentifierKey, built on it, always agrees with their lookups.
func EmailKey(email string) string { return strings.ToLower(email) }

// IdentifierKey is the one form of a sign-in identifier (a username or an e-mail, as a
// client typed it) that per-account counters are keyed by: Unicode NFKC with case folding
// (NFKC_Casefold in spirit: compatibility forms such as fullwidth "ｄｅｍｏ" or the ligature
// "ﬁ" become their plain letters, "Demo" and "DEMO" become "demo", "Straße" becomes
// "strasse"), with invisible format characters (zero-width space, soft hyphen, joiners,
// bidi marks) removed and surrounding white space (any Unicode space, after NFKC has
// mapped the wide ones to " ") trimmed.
//
// It is deliberately coarser than any lookup: it starts from EmailKey, so two e-mails the
// backends treat as one account always have one key, and usernames, which backends compare
// exactly, trivially do too. A script that normalises what it looks up (trims, lower-cases)
// still finds the variants on one counter. The price is that distinct accounts that differ
// only by such variants ("Demo" and "demo") share a counter; for a brute-force limit
// counting too much is the safe side.
func IdentifierKey(identifier string) string {
	s := norm.NFKC.String(EmailKey(identifier))
	// A Caser keeps state between calls and must not be shared between goroutines.
	s = cases.Fold().String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r) {
			return -1
		}
		return r
	}, s)
	// Folding can produce sequences NFKC would compose, and removing a format character
	// can bring composable characters together: normalise once more.
	return strings.TrimSpace(norm.NFKC.String(s))
}
