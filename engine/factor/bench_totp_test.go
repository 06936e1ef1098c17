package factor

import (
	"testing"
	"time"
)

// BenchmarkTOTPVerify is the server's cost of a TOTP check: a valid code of the step after
// the current one, the window's far edge. Verify computes every step of the window whatever
// matches, so this is also the cost of a wrong code.
func BenchmarkTOTPVerify(b *testing.B) {
	now := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)
	v := TOTP{Issuer: "callgate", Now: totpClock(now)}
	code := otpCode(b, rfc6238Secret, now.Add(30*time.Second))
	if _, ok := v.Verify(rfc6238Secret, code); !ok {
		b.Fatal("the next step's code is refused")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := v.Verify(rfc6238Secret, code); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkSealOpen seals and opens a TOTP secret, the cost a check adds to Verify (the
// ring lists two secrets; the value opens with the first).
func BenchmarkSealOpen(b *testing.B) {
	s := mustSealer(b, sealNewSecret, sealOldSecret)
	plain := []byte(rfc6238Secret)
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := s.Seal(plain, "user-1")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open(sealed, "user-1"); err != nil {
			b.Fatal(err)
		}
	}
}
