package factor

import (
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit/softauthn"
)

// BenchmarkPasskeyFinishLogin is the server side of one second-factor authentication:
// decode the state, parse the answer (JSON, base64url, authenticator data), check client
// data, RP ID hash, flags and credential, parse the COSE key and verify the ES256
// signature.
func BenchmarkPasskeyFinishLogin(b *testing.B) {
	f := newFixture(b)
	c := beginLogin(b, f.p, &f.alice)
	response := f.aliceKey.Get(b, c.Options).Response(b)
	lookup := known(f.alice)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.p.FinishLogin(c.State, response, lookup); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasskeyFinishLoginDiscoverable is a passwordless sign-in: the same, with the
// user found by the lookup.
func BenchmarkPasskeyFinishLoginDiscoverable(b *testing.B) {
	f := newFixture(b)
	c := beginLogin(b, f.p, nil)
	response := f.aliceKey.Get(b, c.Options).Response(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.p.FinishLogin(c.State, response, f.owner); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasskeyFinishRegistration is the server side of adding a passkey ("none"
// attestation: no attestation signature to check).
func BenchmarkPasskeyFinishRegistration(b *testing.B) {
	p := newTestPasskeys(b)
	carol := User{ID: "user-carol", Name: "carol@example.com", DisplayName: "Carol"}
	c, err := p.BeginRegistration(carol)
	if err != nil {
		b.Fatal(err)
	}
	response := softauthn.New(b, testOrigin).Create(b, c.Options).Response(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.FinishRegistration(carol, c.State, response, "bench", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasskeyBeginLogin is the cost of starting a ceremony: a random challenge and
// the options and state encoded.
func BenchmarkPasskeyBeginLogin(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.p.BeginLogin(&f.alice); err != nil {
			b.Fatal(err)
		}
	}
}
