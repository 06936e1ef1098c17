package factor

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
)

var (
	sealOldSecret = []byte("the secret before the rotation")
	sealNewSecret = []byte("the secret after the rotation")
)

func mustSealer(t testing.TB, secrets ...[]byte) *Sealer {
	t.Helper()
	s, err := NewSealer(secrets)
	if err != nil {
		t.Fatalf("new sealer: %v", err)
	}
	return s
}

func TestNewSealerRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets [][]byte
	}{
		{"no secrets", nil},
		{"empty list", [][]byte{}},
		{"empty secret", [][]byte{{}}},
		{"empty secret after a good one", [][]byte{sealNewSecret, nil}},
	} {
		if s, err := NewSealer(tc.secrets); !errors.Is(err, ErrNoSecret) || s != nil {
			t.Errorf("%s: got %v, %v; want nil, ErrNoSecret", tc.name, s, err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	s := mustSealer(t, sealNewSecret)
	for _, plain := range [][]byte{
		[]byte("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
		{},
		bytes.Repeat([]byte{0}, 4096),
	} {
		sealed, err := s.Seal(plain, "user-1")
		if err != nil {
			t.Fatalf("seal: %v", err)
		}
		if len(plain) > 0 && bytes.Contains(sealed, plain) {
			t.Errorf("sealed value holds the plain text")
		}
		got, err := s.Open(sealed, "user-1")
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("open(seal(%d bytes)): got %d bytes, %v; want the plain text", len(plain), len(got), err)
		}
		again, err := s.Seal(plain, "user-1")
		if err != nil {
			t.Fatalf("seal again: %v", err)
		}
		if bytes.Equal(again, sealed) {
			t.Errorf("two seals of the same value are equal: the nonce is not fresh")
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	s := mustSealer(t, sealNewSecret)
	sealed, err := s.Seal([]byte("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "user-1")
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	type attempt struct {
		name   string
		sealed []byte
		userID string
	}
	attempts := []attempt{
		{"another user", sealed, "user-2"},
		{"user ID with a suffix", sealed, "user-10"},
		{"empty user ID", sealed, ""},
		{"other secret", nil, "user-1"}, // filled below
		{"nil", nil, "user-1"},
	}
	other, err := mustSealer(t, sealOldSecret).Seal([]byte("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "user-1")
	if err != nil {
		t.Fatalf("seal under the other secret: %v", err)
	}
	attempts[3].sealed = other
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		attempts = append(attempts, attempt{"bit flipped in byte " + strconv.Itoa(i), tampered, "user-1"})
	}
	for n := 0; n < len(sealed); n++ {
		attempts = append(attempts, attempt{"truncated to " + strconv.Itoa(n), sealed[:n], "user-1"})
	}
	attempts = append(attempts, attempt{"byte appended", append(bytes.Clone(sealed), 0), "user-1"})
	for _, a := range attempts {
		got, err := s.Open(a.sealed, a.userID)
		if !errors.Is(err, ErrUnseal) || got != nil {
			t.Errorf("%s: got %q, %v; want nil, ErrUnseal", a.name, got, err)
		}
	}
}

// TestSealRotation: a value sealed before a rotation opens with the ring that lists the old
// secret second; one sealed after it does not open with a ring that knows only the old.
func TestSealRotation(t *testing.T) {
	before := mustSealer(t, sealOldSecret)
	after := mustSealer(t, sealNewSecret, sealOldSecret)
	plain := []byte("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")

	sealedBefore, err := before.Seal(plain, "user-1")
	if err != nil {
		t.Fatalf("seal before: %v", err)
	}
	if got, err := after.Open(sealedBefore, "user-1"); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("rotated ring opens a value sealed before: got %q, %v; want the plain text", got, err)
	}

	sealedAfter, err := after.Seal(plain, "user-1")
	if err != nil {
		t.Fatalf("seal after: %v", err)
	}
	if got, err := before.Open(sealedAfter, "user-1"); !errors.Is(err, ErrUnseal) {
		t.Errorf("old-only ring opens a value sealed with the new secret: got %q, %v; want ErrUnseal", got, err)
	}
	if got, err := mustSealer(t, sealNewSecret).Open(sealedAfter, "user-1"); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("the rotated ring seals with its first secret: the new secret alone does not open it (%q, %v)", got, err)
	}
}

func TestRecoveryHashes(t *testing.T) {
	s := mustSealer(t, sealNewSecret, sealOldSecret)
	base := s.RecoveryHashes("user-1", "abcde-fghij")
	if len(base) != 2 {
		t.Fatalf("got %d hashes, want one per secret (2)", len(base))
	}
	for i, h := range base {
		if len(h) != 32 {
			t.Errorf("hash %d: %d bytes, want 32 (HMAC-SHA256)", i, len(h))
		}
	}
	if bytes.Equal(base[0], base[1]) {
		t.Errorf("the two secrets hash the code alike")
	}
	if got := mustSealer(t, sealNewSecret).RecoveryHashes("user-1", "abcde-fghij"); !bytes.Equal(got[0], base[0]) {
		t.Errorf("first hash is not the current secret's")
	}
	if got := mustSealer(t, sealOldSecret).RecoveryHashes("user-1", "abcde-fghij"); !bytes.Equal(got[0], base[1]) {
		t.Errorf("second hash is not the old secret's: a code issued before the rotation would be lost")
	}

	for _, tc := range []struct {
		name, userID, code string
		wantEqual          bool
	}{
		{"upper case with dash", "user-1", "ABCDE-FGHIJ", true},
		{"lower case with space", "user-1", "abcde fghij", true},
		{"no separator", "user-1", "abcdefghij", true},
		{"spaces, dashes and tabs everywhere", "user-1", " ab-cDe\tFGH - ij ", true},
		{"another code", "user-1", "abcde-fghik", false},
		{"another user", "user-2", "abcde-fghij", false},
		{"user ID and code shifted", "user-1a", "bcde-fghij", false},
		{"empty user ID", "", "abcde-fghij", false},
	} {
		got := s.RecoveryHashes(tc.userID, tc.code)
		for i := range got {
			if equal := bytes.Equal(got[i], base[i]); equal != tc.wantEqual {
				t.Errorf("%s (%q, %q), secret %d: hash equal to user-1's abcde-fghij: got %v, want %v", tc.name, tc.userID, tc.code, i, equal, tc.wantEqual)
			}
		}
	}
}

// TestRecoveryCodesHashAsTyped: a generated code hashes the same as the user retypes it
// (upper-case, without the dash), so it is found in the store.
func TestRecoveryCodesHashAsTyped(t *testing.T) {
	s := mustSealer(t, sealNewSecret)
	codes, err := NewRecoveryCodes(10)
	if err != nil {
		t.Fatalf("new recovery codes: %v", err)
	}
	for _, c := range codes {
		typed := bytes.ToUpper([]byte(c[:5] + c[6:]))
		if !bytes.Equal(s.RecoveryHashes("user-1", c)[0], s.RecoveryHashes("user-1", string(typed))[0]) {
			t.Errorf("code %s and its retyped form %s hash apart", c, typed)
		}
	}
}

// FuzzOpen: any bytes and user ID are refused with ErrUnseal, never a panic, unless they
// are a seal of the one value ever sealed under these secrets, for its user. (Each fuzz
// worker seals its own copy with a fresh nonce, so the property cannot name the bytes.)
// The seeds run with every plain `go test`.
func FuzzOpen(f *testing.F) {
	s := mustSealer(f, sealNewSecret, sealOldSecret)
	sealed, err := s.Seal([]byte("secret"), "user-1")
	if err != nil {
		f.Fatalf("seal: %v", err)
	}
	f.Add(sealed, "user-1")
	f.Add(sealed, "user-2")
	f.Add(sealed[:12], "user-1")
	f.Add([]byte{}, "")
	f.Add(bytes.Repeat([]byte{0xff}, 64), "user-1")
	f.Fuzz(func(t *testing.T, b []byte, userID string) {
		got, err := s.Open(b, userID)
		if err == nil {
			if userID != "user-1" || string(got) != "secret" {
				t.Fatalf("opened %x for %q to %q: only user-1's seal of \"secret\" should open", b, userID, got)
			}
			return
		}
		if !errors.Is(err, ErrUnseal) || got != nil {
			t.Fatalf("got %q, %v; want nil, ErrUnseal", got, err)
		}
	})
}
