package factor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit/softauthn"
	"github.com/callgate/callgate/store"
)

const (
	testRPID   = "auth.example.com"
	testOrigin = "https://auth.example.com"
)

func newTestPasskeys(t testing.TB) *Passkeys {
	t.Helper()
	p, err := NewPasskeys(PasskeyConfig{RPID: testRPID, RPName: "callgate", Origins: []string{testOrigin}})
	if err != nil {
		t.Fatalf("NewPasskeys: %v", err)
	}
	return p
}

// fixture is a relying party with two users, each with one passkey registered through a
// real registration ceremony.
type fixture struct {
	p          *Passkeys
	alice, bob User
	aliceKey   *softauthn.Authenticator
	bobKey     *softauthn.Authenticator
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		p:        newTestPasskeys(t),
		alice:    User{ID: "user-alice", Name: "alice@example.com", DisplayName: "Alice"},
		bob:      User{ID: "user-bob", Name: "bob@example.com", DisplayName: "Bob"},
		aliceKey: softauthn.New(t, testOrigin),
		bobKey:   softauthn.New(t, testOrigin),
	}
	f.register(t, &f.alice, f.aliceKey, "Alice's laptop")
	f.register(t, &f.bob, f.bobKey, "Bob's key")
	return f
}

func (f *fixture) register(t testing.TB, u *User, a *softauthn.Authenticator, name string) store.Passkey {
	t.Helper()
	c, err := f.p.BeginRegistration(*u)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	pk, err := f.p.FinishRegistration(*u, c.State, a.Create(t, c.Options).Response(t), name, time.Now())
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	u.Passkeys = append(u.Passkeys, pk)
	return pk
}

// owner finds a credential's user as a store would: by credential ID alone.
func (f *fixture) owner(credentialID, _ []byte) (User, error) {
	for _, u := range []User{f.alice, f.bob} {
		for _, pk := range u.Passkeys {
			if bytes.Equal(pk.ID, credentialID) {
				return u, nil
			}
		}
	}
	return User{}, store.ErrNotFound
}

// known is the lookup of a second-factor login: the user is known already.
func known(u User) func(credentialID, userHandle []byte) (User, error) {
	return func(credentialID, userHandle []byte) (User, error) { return u, nil }
}

func beginLogin(t testing.TB, p *Passkeys, u *User) Ceremony {
	t.Helper()
	c, err := p.BeginLogin(u)
	if err != nil {
		t.Fatalf("BeginLogin: %v", err)
	}
	return c
}

// editState rewrites one member of a ceremony state, as a browser could if the caller
// did not seal it.
func editState(t testing.TB, state []byte, member string, value any) []byte {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(state, &s); err != nil {
		t.Fatalf("decode state: %v", err)
	}
	if value == nil {
		delete(s, member)
	} else {
		s[member] = value
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("encode state: %v", err)
	}
	return b
}

func expired(t testing.TB, state []byte) []byte {
	return editState(t, state, "expires", time.Now().Add(-time.Minute).Format(time.RFC3339Nano))
}

func TestPasskeyRegisterAndLogIn(t *testing.T) {
	p := newTestPasskeys(t)
	alice := User{ID: "user-alice", Name: "alice@example.com", DisplayName: "Alice"}
	key := softauthn.New(t, testOrigin)

	reg, err := p.BeginRegistration(alice)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	now := time.Now().Add(time.Minute).Round(0)
	pk, err := p.FinishRegistration(alice, reg.State, key.Create(t, reg.Options).Response(t), "Laptop", now)
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	wantKey := softauthn.COSEKey(t, key.PublicKey())
	checks := []struct {
		what      string
		got, want any
	}{
		{"ID", pk.ID, key.CredentialID()},
		{"UserID", pk.UserID, alice.ID},
		{"Name", pk.Name, "Laptop"},
		{"PublicKey", pk.PublicKey, wantKey},
		{"AttestationType", pk.AttestationType, "none"},
		{"AAGUID", pk.AAGUID, key.AAGUID()},
		{"SignCount", pk.SignCount, uint32(0)},
		{"Transports", pk.Transports, []string{"internal", "hybrid"}},
		{"BackupEligible", pk.BackupEligible, true},
		{"BackupState", pk.BackupState, false},
		{"CreatedAt", pk.CreatedAt, now},
		{"LastUsedAt", pk.LastUsedAt, time.Time{}},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("registered passkey %s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	alice.Passkeys = []store.Passkey{pk}

	// Second factor: the user is known, the credential must be theirs.
	login := beginLogin(t, p, &alice)
	res, err := p.FinishLogin(login.State, key.Get(t, login.Options).Response(t), known(alice))
	if err != nil {
		t.Fatalf("FinishLogin (second factor): %v", err)
	}
	want := LoginResult{CredentialID: key.CredentialID(), UserID: alice.ID, SignCount: 1, UserVerified: true}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("second factor: got %+v, want %+v", res, want)
	}
	alice.Passkeys[0].SignCount = res.SignCount

	// Passwordless: no user until the user handle names one.
	var handles [][]byte
	lookup := func(credentialID, userHandle []byte) (User, error) {
		handles = append(handles, userHandle)
		if !bytes.Equal(credentialID, key.CredentialID()) {
			return User{}, store.ErrNotFound
		}
		return alice, nil
	}
	login = beginLogin(t, p, nil)
	as := key.Get(t, login.Options)
	as.Flags |= softauthn.FlagBS // the passkey has since been synced
	// Without a password the authenticator must verify the user: presence alone is refused.
	noUV := as
	noUV.Flags &^= softauthn.FlagUV
	if _, err := p.FinishLogin(login.State, noUV.Response(t), lookup); !errors.Is(err, ErrRefused) {
		t.Fatalf("FinishLogin (discoverable) without user verification: got %v, want ErrRefused", err)
	}
	handles = nil
	login = beginLogin(t, p, nil)
	as = key.Get(t, login.Options)
	as.Flags |= softauthn.FlagBS
	res, err = p.FinishLogin(login.State, as.Response(t), lookup)
	if err != nil {
		t.Fatalf("FinishLogin (discoverable): %v", err)
	}
	want = LoginResult{CredentialID: key.CredentialID(), UserID: alice.ID, SignCount: 3, BackupState: true, UserVerified: true}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("discoverable: got %+v, want %+v", res, want)
	}
	if len(handles) != 1 || string(handles[0]) != alice.ID {
		t.Errorf("lookup got user handles %q, want one: %q", handles, alice.ID)
	}
}

// An authenticator that keeps no counter reports 0 every time (many synced passkeys do):
// that is not a regression.
func TestPasskeyLoginWithoutCounter(t *testing.T) {
	f := newFixture(t)
	for i := range 2 {
		login := beginLogin(t, f.p, &f.alice)
		as := f.aliceKey.Get(t, login.Options)
		as.Counter = 0
		res, err := f.p.FinishLogin(login.State, as.Response(t), known(f.alice))
		if err != nil {
			t.Fatalf("login %d with counter 0: %v", i, err)
		}
		if res.SignCount != 0 {
			t.Errorf("login %d: got SignCount %d, want 0", i, res.SignCount)
		}
	}
}

func TestPasskeyLoginRefused(t *testing.T) {
	type lookupFunc = func(credentialID, userHandle []byte) (User, error)
	cases := []struct {
		name string
		// discoverable begins with no user; otherwise the ceremony is Alice's second factor.
		discoverable bool
		// edit changes Alice's answer; state and lookup, when set, replace the ceremony's.
		edit   func(t *testing.T, f *fixture, as *softauthn.Assertion)
		state  func(t *testing.T, f *fixture, c Ceremony) []byte
		lookup func(f *fixture) lookupFunc
		// response, when set, replaces the whole answer.
		response func(t *testing.T, f *fixture, c Ceremony) []byte
		want     error
		reason   string
	}{
		{
			name:   "forged signature (another key)",
			edit:   func(t *testing.T, f *fixture, as *softauthn.Assertion) { *as = as.SignedBy(softauthn.NewKey(t)) },
			want:   ErrRefused,
			reason: "signature",
		},
		{
			name:   "forged signature, discoverable",
			edit:   func(t *testing.T, f *fixture, as *softauthn.Assertion) { *as = as.SignedBy(softauthn.NewKey(t)) },
			want:   ErrRefused,
			reason: "signature", discoverable: true,
		},
		{
			name: "wrong origin",
			edit: func(t *testing.T, f *fixture, as *softauthn.Assertion) {
				as.ClientData.Origin = "https://auth.example.com.evil.test"
			},
			want:   ErrRefused,
			reason: "origin",
		},
		{
			name:   "wrong RP ID hash",
			edit:   func(t *testing.T, f *fixture, as *softauthn.Assertion) { *as = as.WithRPID("evil.test") },
			want:   ErrRefused,
			reason: "RP Hash",
		},
		{
			name:   "registration client data",
			edit:   func(t *testing.T, f *fixture, as *softauthn.Assertion) { as.ClientData.Type = "webauthn.create" },
			want:   ErrRefused,
			reason: "ceremony type",
		},
		{
			name:   "cross-origin client data",
			edit:   func(t *testing.T, f *fixture, as *softauthn.Assertion) { as.ClientData.CrossOrigin = true },
			want:   ErrRefused,
			reason: "cross origin",
		},
		{
			name: "challenge of another ceremony",
			state: func(t *testing.T, f *fixture, c Ceremony) []byte {
				return beginLogin(t, f.p, &f.alice).State
			},
			want:   ErrRefused,
			reason: "challenge",
		},
		{
			name:         "challenge of another passwordless ceremony",
			discoverable: true,
			state: func(t *testing.T, f *fixture, c Ceremony) []byte {
				return beginLogin(t, f.p, nil).State
			},
			want:   ErrRefused,
			reason: "challenge",
		},
		{
			name: "challenge made up",
			edit: func(t *testing.T, f *fixture, as *softauthn.Assertion) {
				as.ClientData.Challenge = softauthn.B64.EncodeToString(softauthn.RandomBytes(t, 32))
			},
			want:   ErrRefused,
			reason: "challenge",
		},
		{
			name: "replayed assertion of a finished ceremony",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte {
				earlier := beginLogin(t, f.p, &f.alice)
				old := f.aliceKey.Get(t, earlier.Options).Response(t)
				if _, err := f.p.FinishLogin(earlier.State, old, known(f.alice)); err != nil {
					t.Fatalf("the earlier login: %v", err)
				}
				return old
			},
			want:   ErrRefused,
			reason: "challenge",
		},
		{
			name: "credential not the user's",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte {
				return f.bobKey.Get(t, c.Options).Response(t)
			},
			want:   ErrRefused,
			reason: "not owned by the user",
		},
		{
			name:   "lookup answers another user than the ceremony's",
			lookup: func(f *fixture) lookupFunc { return known(f.bob) },
			response: func(t *testing.T, f *fixture, c Ceremony) []byte {
				return f.bobKey.Get(t, c.Options).Response(t)
			},
			want:   ErrRefused,
			reason: "another user",
		},
		{
			name:   "user handle mismatch",
			edit:   func(t *testing.T, f *fixture, as *softauthn.Assertion) { as.UserHandle = []byte(f.bob.ID) },
			want:   ErrRefused,
			reason: "User handle",
		},
		{
			name:         "user handle mismatch, discoverable",
			discoverable: true,
			edit:         func(t *testing.T, f *fixture, as *softauthn.Assertion) { as.UserHandle = []byte(f.bob.ID) },
			want:         ErrRefused,
			reason:       "User handle",
		},
		{
			name:         "no user handle, discoverable",
			discoverable: true,
			edit:         func(t *testing.T, f *fixture, as *softauthn.Assertion) { as.UserHandle = nil },
			want:         ErrRefused,
			reason:       "blank User Handle",
		},
		{
			name:         "lookup answers another user, discoverable",
			discoverable: true,
			lookup:       func(f *fixture) lookupFunc { return known(f.bob) },
			want:         ErrRefused,
			reason:       "User handle",
		},
		{
			name:   "UP flag missing",
			edit:   func(t *testing.T, f *fixture, as *softauthn.Assertion) { *as = as.WithoutUserPresence() },
			want:   ErrRefused,
			reason: "User presence",
		},
		{
			name:   "BE flag changed",
			edit:   func(t *testing.T, f *fixture, as *softauthn.Assertion) { as.Flags &^= softauthn.FlagBE },
			want:   ErrRefused,
			reason: "Backup Eligible",
		},
		{
			name: "counter regression",
			edit: func(t *testing.T, f *fixture, as *softauthn.Assertion) {
				f.alice.Passkeys[0].SignCount = 100
				as.Counter = 7
			},
			want:   ErrRefused,
			reason: "signature counter did not increase",
		},
		{
			name: "counter repeated",
			edit: func(t *testing.T, f *fixture, as *softauthn.Assertion) {
				f.alice.Passkeys[0].SignCount = as.Counter
			},
			want:   ErrRefused,
			reason: "signature counter did not increase",
		},
		{
			name:         "counter regression, discoverable",
			discoverable: true,
			edit: func(t *testing.T, f *fixture, as *softauthn.Assertion) {
				f.alice.Passkeys[0].SignCount = 100
				as.Counter = 99
			},
			want:   ErrRefused,
			reason: "signature counter did not increase",
		},
		{
			name:   "expired state",
			state:  func(t *testing.T, f *fixture, c Ceremony) []byte { return expired(t, c.State) },
			want:   ErrRefused,
			reason: "expired",
		},
		{
			name:   "state without expiry",
			state:  func(t *testing.T, f *fixture, c Ceremony) []byte { return editState(t, c.State, "expires", nil) },
			want:   ErrMalformed,
			reason: "expiry",
		},
		{
			name: "state of a registration",
			state: func(t *testing.T, f *fixture, c Ceremony) []byte {
				reg, err := f.p.BeginRegistration(f.alice)
				if err != nil {
					t.Fatal(err)
				}
				return reg.State
			},
			want:   ErrMalformed,
			reason: "registration",
		},
		{
			name:   "state not JSON",
			state:  func(t *testing.T, f *fixture, c Ceremony) []byte { return c.State[:len(c.State)/2] },
			want:   ErrMalformed,
			reason: "ceremony state",
		},
		{
			name:     "malformed JSON",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte { return []byte(`{"id": "abc", "type": `) },
			want:     ErrMalformed,
			reason:   "Parse error for Assertion",
		},
		{
			name: "trailing data after the JSON",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte {
				return append(f.aliceKey.Get(t, c.Options).Response(t), []byte(` {}`)...)
			},
			want:   ErrMalformed,
			reason: "trailing",
		},
		{
			name: "bad base64",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte {
				return softauthn.WithResponseField(t, f.aliceKey.Get(t, c.Options).Response(t), "signature", "not*base64url!")
			},
			want:   ErrMalformed,
			reason: "illegal base64",
		},
		{
			name: "client data not JSON",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte {
				return softauthn.WithResponseField(t, f.aliceKey.Get(t, c.Options).Response(t), "clientDataJSON", softauthn.B64.EncodeToString([]byte(`{"type":`)))
			},
			want:   ErrMalformed,
			reason: "JSON input",
		},
		{
			name: "truncated authData",
			edit: func(t *testing.T, f *fixture, as *softauthn.Assertion) {
				as.AuthData = softauthn.AuthData(as.RPID, as.Flags, as.Counter)[:36]
			},
			want:   ErrMalformed,
			reason: "too short",
		},
		{
			name: "authData with bytes left over",
			edit: func(t *testing.T, f *fixture, as *softauthn.Assertion) {
				as.AuthData = append(softauthn.AuthData(as.RPID, as.Flags, as.Counter), 0xa0)
			},
			want:   ErrMalformed,
			reason: "Attested credential flag not set",
		},
		{
			name: "extension flag with malformed CBOR",
			edit: func(t *testing.T, f *fixture, as *softauthn.Assertion) {
				as.AuthData = append(softauthn.AuthData(as.RPID, as.Flags|0x80, as.Counter), 0xbf, 0x61)
			},
			want:   ErrMalformed,
			reason: "extension outputs",
		},
		{
			name: "id differs from rawId",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte {
				r := f.aliceKey.Get(t, c.Options).Response(t)
				return bytes.Replace(r, []byte(`"id":"`), []byte(`"id":"AAAA`), 1)
			},
			want:   ErrMalformed,
			reason: "rawId",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			var c Ceremony
			lookup := known(f.alice)
			if tc.discoverable {
				c = beginLogin(t, f.p, nil)
				lookup = f.owner
			} else {
				c = beginLogin(t, f.p, &f.alice)
			}
			if tc.lookup != nil {
				lookup = tc.lookup(f)
			}
			state := c.State
			if tc.state != nil {
				state = tc.state(t, f, c)
			}
			var response []byte
			if tc.response != nil {
				response = tc.response(t, f, c)
			} else {
				as := f.aliceKey.Get(t, c.Options)
				if tc.edit != nil {
					tc.edit(t, f, &as)
				}
				response = as.Response(t)
			}
			res, err := f.p.FinishLogin(state, response, lookup)
			checkFailure(t, err, tc.want, tc.reason)
			if fmt.Sprint(res) != fmt.Sprint(LoginResult{}) {
				t.Errorf("a refused login returned %+v, want the zero result", res)
			}
		})
	}
}

// An error of the caller's lookup (an unknown credential, a store that is down) comes
// back as it is, not as a verification failure.
func TestPasskeyLoginLookupError(t *testing.T) {
	f := newFixture(t)
	down := errors.New("store unreachable")
	for _, discoverable := range []bool{true, false} {
		var u *User
		if !discoverable {
			u = &f.alice
		}
		c := beginLogin(t, f.p, u)
		_, err := f.p.FinishLogin(c.State, f.aliceKey.Get(t, c.Options).Response(t), func(_, _ []byte) (User, error) {
			return User{}, down
		})
		if !errors.Is(err, down) || errors.Is(err, ErrRefused) || errors.Is(err, ErrMalformed) {
			t.Errorf("discoverable=%v: got %v, want the lookup's error and neither ErrRefused nor ErrMalformed", discoverable, err)
		}
	}
}

func TestPasskeyRegistrationRefused(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(t *testing.T, f *fixture, at *softauthn.Attestation)
		state    func(t *testing.T, f *fixture, c Ceremony) []byte
		response func(t *testing.T, f *fixture, c Ceremony) []byte
		now      time.Duration // added to time.Now() for FinishRegistration
		want     error
		reason   string
	}{
		{
			name: "wrong origin",
			edit: func(t *testing.T, f *fixture, at *softauthn.Attestation) {
				at.ClientData.Origin = "http://auth.example.com"
			},
			want:   ErrRefused,
			reason: "origin",
		},
		{
			name:   "wrong RP ID hash",
			edit:   func(t *testing.T, f *fixture, at *softauthn.Attestation) { at.RPID = "example.com" },
			want:   ErrRefused,
			reason: "RP Hash",
		},
		{
			name:   "sign-in client data",
			edit:   func(t *testing.T, f *fixture, at *softauthn.Attestation) { at.ClientData.Type = "webauthn.get" },
			want:   ErrRefused,
			reason: "ceremony type",
		},
		{
			name: "challenge of another ceremony",
			state: func(t *testing.T, f *fixture, c Ceremony) []byte {
				other, err := f.p.BeginRegistration(f.alice)
				if err != nil {
					t.Fatal(err)
				}
				return other.State
			},
			want:   ErrRefused,
			reason: "challenge",
		},
		{
			name: "ceremony of another user",
			state: func(t *testing.T, f *fixture, c Ceremony) []byte {
				other, err := f.p.BeginRegistration(f.bob)
				if err != nil {
					t.Fatal(err)
				}
				return other.State
			},
			want:   ErrRefused,
			reason: "ID mismatch",
		},
		{
			name:   "UP flag missing",
			edit:   func(t *testing.T, f *fixture, at *softauthn.Attestation) { at.Flags &^= softauthn.FlagUP },
			want:   ErrRefused,
			reason: "User presence",
		},
		{
			name: "BS without BE",
			edit: func(t *testing.T, f *fixture, at *softauthn.Attestation) {
				at.Flags = at.Flags&^softauthn.FlagBE | softauthn.FlagBS
			},
			want:   ErrRefused,
			reason: "Backup State",
		},
		{
			name: "credential already registered",
			edit: func(t *testing.T, f *fixture, at *softauthn.Attestation) {
				at.CredentialID = f.alice.Passkeys[0].ID
			},
			want:   ErrRefused,
			reason: "already registered",
		},
		{
			name:   "expired state",
			state:  func(t *testing.T, f *fixture, c Ceremony) []byte { return expired(t, c.State) },
			want:   ErrRefused,
			reason: "expired",
		},
		{
			name:   "finished after the timeout",
			now:    defaultPasskeyTimeout + time.Minute,
			want:   ErrRefused,
			reason: "expired",
		},
		{
			name:   "state of a sign-in",
			state:  func(t *testing.T, f *fixture, c Ceremony) []byte { return beginLogin(t, f.p, &f.alice).State },
			want:   ErrMalformed,
			reason: "registration",
		},
		{
			name:   "state not JSON",
			state:  func(t *testing.T, f *fixture, c Ceremony) []byte { return []byte("eyJjaGFsbGVuZ2UiOiJ4In0") },
			want:   ErrMalformed,
			reason: "ceremony state",
		},
		{
			name:   "attested credential data missing",
			edit:   func(t *testing.T, f *fixture, at *softauthn.Attestation) { at.Flags &^= softauthn.FlagAT },
			want:   ErrMalformed,
			reason: "attested credential data flag",
		},
		{
			name: "malformed CBOR",
			edit: func(t *testing.T, f *fixture, at *softauthn.Attestation) {
				at.AttestationObject = []byte{0xa3, 0x63, 'f', 'm', 't', 0x64, 'n', 'o'}
			},
			want:   ErrMalformed,
			reason: "EOF",
		},
		{
			name: "malformed COSE key",
			edit: func(t *testing.T, f *fixture, at *softauthn.Attestation) {
				d := at.AuthData(t)
				at.AttestationObject = softauthn.CTAP2Marshal(t, map[string]any{
					"fmt": "none", "attStmt": map[string]any{}, "authData": d[:len(d)-10],
				})
			},
			want:   ErrMalformed,
			reason: "Credential Public Key",
		},
		{
			name: "truncated authData",
			edit: func(t *testing.T, f *fixture, at *softauthn.Attestation) {
				at.AttestationObject = softauthn.CTAP2Marshal(t, map[string]any{
					"fmt": "none", "attStmt": map[string]any{}, "authData": at.AuthData(t)[:40],
				})
			},
			want:   ErrMalformed,
			reason: "data is missing",
		},
		{
			name:     "malformed JSON",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte { return []byte(`[1, 2`) },
			want:     ErrMalformed,
			reason:   "Parse error for Registration",
		},
		{
			name: "bad base64",
			response: func(t *testing.T, f *fixture, c Ceremony) []byte {
				return softauthn.WithResponseField(t, softauthn.New(t, testOrigin).Create(t, c.Options).Response(t), "attestationObject", "o2NmbXRk==bm9u")
			},
			want:   ErrMalformed,
			reason: "illegal base64",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			c, err := f.p.BeginRegistration(f.alice)
			if err != nil {
				t.Fatal(err)
			}
			state := c.State
			if tc.state != nil {
				state = tc.state(t, f, c)
			}
			var response []byte
			if tc.response != nil {
				response = tc.response(t, f, c)
			} else {
				at := softauthn.New(t, testOrigin).Create(t, c.Options)
				if tc.edit != nil {
					tc.edit(t, f, &at)
				}
				response = at.Response(t)
			}
			pk, err := f.p.FinishRegistration(f.alice, state, response, "new", time.Now().Add(tc.now))
			checkFailure(t, err, tc.want, tc.reason)
			if pk.ID != nil || !pk.CreatedAt.IsZero() {
				t.Errorf("a refused registration returned %+v, want the zero passkey", pk)
			}
		})
	}
}

func checkFailure(t *testing.T, err, want error, reason string) {
	t.Helper()
	other := ErrMalformed
	if want == ErrMalformed {
		other = ErrRefused
	}
	if !errors.Is(err, want) || errors.Is(err, other) {
		t.Fatalf("got error %v, want one wrapping %v (and not %v)", err, want, other)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not give the reason %q", err, reason)
	}
}

func TestPasskeyCeremonyOptions(t *testing.T) {
	f := newFixture(t)
	second := f.register(t, &f.alice, softauthn.New(t, testOrigin), "phone")
	ids := func(pks []store.Passkey) []string {
		var out []string
		for _, pk := range pks {
			out = append(out, softauthn.B64.EncodeToString(pk.ID))
		}
		return out
	}
	if len(f.alice.Passkeys) != 2 || !bytes.Equal(f.alice.Passkeys[1].ID, second.ID) {
		t.Fatalf("alice has %d passkeys, want 2", len(f.alice.Passkeys))
	}

	reg, err := f.p.BeginRegistration(f.alice)
	if err != nil {
		t.Fatal(err)
	}
	var co softauthn.CreationOptions
	softauthn.DecodeOptions(t, reg.Options, &co)
	var exclude []string
	for _, e := range co.PublicKey.Exclude {
		exclude = append(exclude, e.ID)
	}
	got := []struct {
		what      string
		got, want any
	}{
		{"excludeCredentials", exclude, ids(f.alice.Passkeys)},
		{"rp.id", co.PublicKey.RP.ID, testRPID},
		{"user.id", co.PublicKey.User.ID, softauthn.B64.EncodeToString([]byte(f.alice.ID))},
		{"challenge", co.PublicKey.Challenge, reg.Challenge},
		{"residentKey", co.PublicKey.Selection.ResidentKey, "required"},
		{"userVerification", co.PublicKey.Selection.UserVerification, "preferred"},
		{"attestation", co.PublicKey.Attestation, "none"},
		{"timeout", co.PublicKey.Timeout, 300000},
	}
	for _, g := range got {
		if fmt.Sprint(g.got) != fmt.Sprint(g.want) {
			t.Errorf("registration options %s: got %v, want %v", g.what, g.got, g.want)
		}
	}

	var ro softauthn.RequestOptions
	open := beginLogin(t, f.p, nil)
	softauthn.DecodeOptions(t, open.Options, &ro)
	if len(ro.PublicKey.Allow) != 0 || ro.PublicKey.Challenge != open.Challenge || ro.PublicKey.RPID != testRPID || ro.PublicKey.UserVerification != "required" {
		t.Errorf("passwordless options %s: want no allowCredentials, the challenge %q, rpId %q, userVerification required", open.Options, open.Challenge, testRPID)
	}

	ro = softauthn.RequestOptions{}
	mine := beginLogin(t, f.p, &f.alice)
	softauthn.DecodeOptions(t, mine.Options, &ro)
	var allow []string
	for _, a := range ro.PublicKey.Allow {
		allow = append(allow, a.ID)
	}
	if !slices.Equal(allow, ids(f.alice.Passkeys)) {
		t.Errorf("second-factor allowCredentials: got %v, want %v", allow, ids(f.alice.Passkeys))
	}
	if mine.Challenge == open.Challenge || mine.Challenge == reg.Challenge {
		t.Errorf("two ceremonies share a challenge: %q", mine.Challenge)
	}

	if _, err := f.p.BeginLogin(&User{ID: "user-carol"}); err == nil {
		t.Errorf("BeginLogin for a user without passkeys: got no error")
	}
}

func TestNewPasskeys(t *testing.T) {
	valid := PasskeyConfig{RPID: testRPID, RPName: "callgate", Origins: []string{testOrigin}}
	bad := map[string]func(c *PasskeyConfig){
		"no RP ID":         func(c *PasskeyConfig) { c.RPID = "" },
		"RP ID not a host": func(c *PasskeyConfig) { c.RPID = "https://auth.example.com/" },
		"no RP name":       func(c *PasskeyConfig) { c.RPName = "" },
		"no origin":        func(c *PasskeyConfig) { c.Origins = nil },
		"negative timeout": func(c *PasskeyConfig) { c.Timeout = -time.Second },
	}
	for name, edit := range bad {
		c := valid
		edit(&c)
		if _, err := NewPasskeys(c); err == nil {
			t.Errorf("%s: NewPasskeys(%+v) succeeded, want an error", name, c)
		}
	}

	c := valid
	c.Timeout = 2 * time.Minute
	p, err := NewPasskeys(c)
	if err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	login := beginLogin(t, p, nil)
	var s struct{ Expires time.Time }
	if err := json.Unmarshal(login.State, &s); err != nil {
		t.Fatal(err)
	}
	if d := s.Expires.Sub(begun); d < 2*time.Minute-10*time.Second || d > 2*time.Minute+10*time.Second {
		t.Errorf("state expires %v after Begin, want about 2m", d)
	}
	var ro struct{ PublicKey struct{ Timeout int } }
	softauthn.DecodeOptions(t, login.Options, &ro)
	if ro.PublicKey.Timeout != 120000 {
		t.Errorf("options timeout %d ms, want 120000", ro.PublicKey.Timeout)
	}
}

// lasting makes a ceremony state outlive a long fuzzing run.
func lasting(t testing.TB, state []byte) []byte {
	return editState(t, state, "expires", time.Now().Add(24*time.Hour).Format(time.RFC3339Nano))
}

// mangled returns variants of a valid answer that are broken in the ways a client can
// break them: cut short, a member missing or replaced.
func mangled(t testing.TB, response []byte) [][]byte {
	out := [][]byte{response, nil, []byte("null"), []byte("{}"), []byte(`{"id":1}`)}
	for _, n := range []int{1, len(response) / 3, len(response) / 2, len(response) - 1} {
		out = append(out, response[:n])
	}
	for _, field := range []string{"clientDataJSON", "authenticatorData", "signature", "userHandle", "attestationObject"} {
		out = append(out,
			softauthn.WithResponseField(t, response, field, ""),
			softauthn.WithResponseField(t, response, field, "AA"),
			softauthn.WithResponseField(t, response, field, 7),
		)
	}
	return out
}

// FuzzPasskeyFinishLogin shows that no input makes FinishLogin panic and that every
// failure is ErrMalformed or ErrRefused. Its seed corpus runs with the tests.
func FuzzPasskeyFinishLogin(f *testing.F) {
	fx := newFixture(f)
	lookup := func(credentialID, userHandle []byte) (User, error) {
		if u, err := fx.owner(credentialID, userHandle); err == nil {
			return u, nil
		}
		return fx.alice, nil
	}
	for _, u := range []*User{&fx.alice, nil} {
		c := beginLogin(f, fx.p, u)
		state := lasting(f, c.State)
		as := fx.aliceKey.Get(f, c.Options)
		for _, response := range mangled(f, as.Response(f)) {
			f.Add(state, response)
		}
		as.AuthData = append(softauthn.AuthData(as.RPID, as.Flags|0x80, as.Counter), 0xa1, 0x63, 'f', 'o', 'o', 0xf6)
		f.Add(state, as.Response(f))
		f.Add(state[:len(state)-2], as.Response(f))
		f.Add([]byte(`{"challenge":"x","expires":"2999-01-01T00:00:00Z","allowed_credentials":["AA"]}`), as.Response(f))
	}
	f.Fuzz(func(t *testing.T, state, response []byte) {
		res, err := fx.p.FinishLogin(state, response, lookup)
		if err == nil {
			if res.CredentialID == nil || res.UserID == "" {
				t.Errorf("accepted with an empty result: %+v", res)
			}
			return
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrRefused) {
			t.Errorf("error %v is neither ErrMalformed nor ErrRefused", err)
		}
	})
}

// FuzzPasskeyFinishRegistration is FuzzPasskeyFinishLogin for registration.
func FuzzPasskeyFinishRegistration(f *testing.F) {
	p := newTestPasskeys(f)
	carol := User{ID: "user-carol", Name: "carol@example.com", DisplayName: "Carol"}
	c, err := p.BeginRegistration(carol)
	if err != nil {
		f.Fatal(err)
	}
	state := lasting(f, c.State)
	at := softauthn.New(f, testOrigin).Create(f, c.Options)
	for _, response := range mangled(f, at.Response(f)) {
		f.Add(state, response)
	}
	d := at.AuthData(f)
	for _, n := range []int{0, 37, 54, 60, len(d) - 1} {
		at.AttestationObject = softauthn.CTAP2Marshal(f, map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": d[:n]})
		f.Add(state, at.Response(f))
	}
	at.AttestationObject = softauthn.CTAP2Marshal(f, map[string]any{"fmt": "packed", "attStmt": map[string]any{"alg": -7, "sig": []byte{1}}, "authData": d})
	f.Add(state, at.Response(f))
	at.AttestationObject = softauthn.CTAP2Marshal(f, map[string]any{"fmt": "compound", "attStmt": []any{map[string]any{}}, "authData": d})
	f.Add(state, at.Response(f))
	f.Fuzz(func(t *testing.T, state, response []byte) {
		pk, err := p.FinishRegistration(carol, state, response, "fuzzed", time.Now())
		if err == nil {
			if pk.ID == nil || pk.PublicKey == nil {
				t.Errorf("accepted with an empty passkey: %+v", pk)
			}
			return
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrRefused) {
			t.Errorf("error %v is neither ErrMalformed nor ErrRefused", err)
		}
	})
}
