package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

// Users that own factors in these tests. Factors need no user record, so most tests use
// plain IDs; the cascade test creates real users.
const (
	ownerA = "0123456789abcdef01234567"
	ownerB = "fedcba9876543210fedcba98"
)

// TestFactors is the passkey, TOTP and recovery-code conformance suite. The races run on
// one store here; TestFactorReplicas runs them across several.
func TestFactors(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PasskeyRoundTrip", func(t *testing.T) { testPasskeyRoundTrip(t, open(t)) })
	t.Run("PasskeyInvalidRefused", func(t *testing.T) { testPasskeyInvalid(t, open(t)) })
	t.Run("PasskeyDuplicateRefused", func(t *testing.T) { testPasskeyDuplicate(t, open(t)) })
	t.Run("PasskeysListedOldestFirst", func(t *testing.T) { testPasskeyList(t, open(t)) })
	t.Run("PasskeyRenameDelete", func(t *testing.T) { testPasskeyRenameDelete(t, open(t)) })
	t.Run("PasskeyCounter", func(t *testing.T) { testPasskeyCounter(t, open) })
	t.Run("TOTP", func(t *testing.T) { testTOTP(t, open(t)) })
	t.Run("TOTPInvalidRefused", func(t *testing.T) { testTOTPInvalid(t, open(t)) })
	t.Run("RecoveryCodes", func(t *testing.T) { testRecoveryCodes(t, open(t)) })
	t.Run("NULUserIDReachesNoOne", func(t *testing.T) { testNULUserID(t, open(t)) })
	t.Run("DeleteFactors", func(t *testing.T) { testDeleteFactors(t, open(t)) })
	t.Run("DeleteUserCascades", func(t *testing.T) { testDeleteUserCascades(t, open(t)) })
	t.Run("Races", func(t *testing.T) {
		testFactorRaces(t, func(t *testing.T) []store.Store { return []store.Store{open(t)} })
	})
}

// TestFactorReplicas runs the factor races across the stores replicas returns: separate
// clients of one shared backend, as separate gateway replicas hold. Exactly one of the
// callers presenting the same code or counter may win, whichever replica it reached.
func TestFactorReplicas(t *testing.T, replicas func(t *testing.T) []store.Store) {
	testFactorRaces(t, replicas)
}

// passkey returns a credential with every field set; the times are whole milliseconds,
// the precision every backend keeps.
func passkey(userID string, id []byte, created time.Time) store.Passkey {
	return store.Passkey{
		ID: id, UserID: userID, Name: "YubiKey " + string(rune('A'+id[0]%26)),
		PublicKey:       []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x00, 0xff},
		AttestationType: "none", AAGUID: bytes.Repeat([]byte{0xad}, 16),
		SignCount: 7, Transports: []string{"usb", "nfc"}, BackupEligible: true, BackupState: false,
		CreatedAt: created.Round(time.Millisecond),
	}
}

// credID returns a credential ID of n bytes derived from seed, with a NUL and a 0xff in
// it: IDs are raw bytes, and a backend must not treat them as text.
func credID(seed byte, n int) []byte {
	id := make([]byte, n)
	for i := range id {
		id[i] = seed + byte(i)
	}
	id[0] = seed
	if n > 2 {
		id[1], id[2] = 0x00, 0xff
	}
	return id
}

func mustCreatePasskey(t *testing.T, s store.Store, p store.Passkey) {
	t.Helper()
	if err := s.CreatePasskey(context.Background(), p); err != nil {
		t.Fatalf("CreatePasskey(%x): %v", p.ID, err)
	}
}

func mustPasskey(t *testing.T, s store.Store, id []byte) store.Passkey {
	t.Helper()
	p, err := s.Passkey(context.Background(), id)
	if err != nil {
		t.Fatalf("Passkey(%x): %v", id, err)
	}
	return p
}

// samePasskey compares every field; times by instant, and an empty list or byte string
// the same as none.
func samePasskey(t *testing.T, what string, got, want store.Passkey) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt: got %v, want %v", what, got.CreatedAt, want.CreatedAt)
	}
	if !got.LastUsedAt.Equal(want.LastUsedAt) {
		t.Errorf("%s: LastUsedAt: got %v, want %v", what, got.LastUsedAt, want.LastUsedAt)
	}
	norm := func(p store.Passkey) store.Passkey {
		p.CreatedAt, p.LastUsedAt = time.Time{}, time.Time{}
		if len(p.Transports) == 0 {
			p.Transports = nil
		}
		if len(p.AAGUID) == 0 {
			p.AAGUID = nil
		}
		return p
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

func passkeyIDs(list []store.Passkey) [][]byte {
	ids := make([][]byte, len(list))
	for i, p := range list {
		ids[i] = p.ID
	}
	return ids
}

func testPasskeyRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Passkey(ctx, credID(1, 32)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Passkey of an unknown id: got %v, want ErrNotFound", err)
	}
	full := passkey(ownerA, credID(1, 32), time.Now().Add(-time.Hour))
	mustCreatePasskey(t, s, full)
	samePasskey(t, "stored passkey", mustPasskey(t, s, full.ID), full)

	// The longest ID WebAuthn allows, and a credential with only the required fields.
	minimal := store.Passkey{ID: credID(2, store.MaxCredentialIDBytes), UserID: ownerA, PublicKey: []byte{1}}
	before := time.Now()
	mustCreatePasskey(t, s, minimal)
	got := mustPasskey(t, s, minimal.ID)
	if got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("generated CreatedAt: got %v, want about %v", got.CreatedAt, before)
	}
	minimal.CreatedAt = got.CreatedAt
	samePasskey(t, "minimal passkey", got, minimal)
	if !got.LastUsedAt.IsZero() {
		t.Errorf("LastUsedAt of an unused passkey: got %v, want zero", got.LastUsedAt)
	}
}

func testPasskeyInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	valid := passkey(ownerA, credID(3, 16), time.Now())
	tests := []struct {
		name string
		edit func(p *store.Passkey)
	}{
		{"no id", func(p *store.Passkey) { p.ID = nil }},
		{"id too long", func(p *store.Passkey) { p.ID = credID(3, store.MaxCredentialIDBytes+1) }},
		{"no user", func(p *store.Passkey) { p.UserID = "" }},
		{"NUL in user id", func(p *store.Passkey) { p.UserID = "a\x00b" }},
		{"no public key", func(p *store.Passkey) { p.PublicKey = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid
			tt.edit(&p)
			err := s.CreatePasskey(ctx, p)
			if err == nil || errors.Is(err, store.ErrDuplicate) {
				t.Fatalf("CreatePasskey: got %v, want a validation error", err)
			}
			if len(p.ID) > 0 {
				if _, err := s.Passkey(ctx, p.ID); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Passkey after a refused create: got %v, want ErrNotFound", err)
				}
			}
		})
	}
	if list, err := s.ListPasskeys(ctx, ownerA); err != nil || len(list) != 0 {
		t.Errorf("ListPasskeys after refused creates: got %d passkeys (%v), want none", len(list), err)
	}
}

func testPasskeyDuplicate(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := passkey(ownerA, credID(4, 64), time.Now())
	mustCreatePasskey(t, s, first)
	for _, owner := range []string{ownerA, ownerB} {
		again := passkey(owner, first.ID, time.Now().Add(time.Minute))
		again.Name, again.SignCount = "impostor", 99
		if err := s.CreatePasskey(ctx, again); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("CreatePasskey of a taken id for %s: got %v, want ErrDuplicate", owner, err)
		}
	}
	samePasskey(t, "passkey after refused duplicates", mustPasskey(t, s, first.ID), first)
	if list, err := s.ListPasskeys(ctx, ownerB); err != nil || len(list) != 0 {
		t.Errorf("ListPasskeys of the refused owner: got %d (%v), want none", len(list), err)
	}
	if list, err := s.ListPasskeys(ctx, ownerA); err != nil || len(list) != 1 {
		t.Errorf("ListPasskeys of the owner: got %d (%v), want 1", len(list), err)
	}
}

func testPasskeyList(t *testing.T, s store.Store) {
	ctx := context.Background()
	list, err := s.ListPasskeys(ctx, ownerA)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListPasskeys of a user with none: got %#v (%v), want an empty slice", list, err)
	}
	base := time.Now().Add(-time.Hour)
	// Created out of order; two share a creation time, which the ID then orders.
	oldest := passkey(ownerA, credID(0x50, 20), base)
	middle := passkey(ownerA, credID(0x10, 20), base.Add(time.Minute))
	tied := passkey(ownerA, credID(0x20, 20), base.Add(time.Minute))
	newest := passkey(ownerA, credID(0x05, 20), base.Add(2*time.Minute))
	others := passkey(ownerB, credID(0x30, 20), base.Add(-time.Minute))
	for _, p := range []store.Passkey{newest, tied, others, oldest, middle} {
		mustCreatePasskey(t, s, p)
	}
	list, err = s.ListPasskeys(ctx, ownerA)
	if err != nil {
		t.Fatalf("ListPasskeys: %v", err)
	}
	want := []store.Passkey{oldest, middle, tied, newest}
	if !reflect.DeepEqual(passkeyIDs(list), passkeyIDs(want)) {
		t.Fatalf("ListPasskeys order: got %x, want %x", passkeyIDs(list), passkeyIDs(want))
	}
	for i := range want {
		samePasskey(t, fmt.Sprintf("listed passkey %d", i), list[i], want[i])
	}
	if list, err := s.ListPasskeys(ctx, ownerB); err != nil || len(list) != 1 || !bytes.Equal(list[0].ID, others.ID) {
		t.Errorf("ListPasskeys of the other user: got %x (%v), want only %x", passkeyIDs(list), err, others.ID)
	}
}

func testPasskeyRenameDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	mine := passkey(ownerA, credID(6, 32), time.Now())
	theirs := passkey(ownerB, credID(7, 32), time.Now())
	mustCreatePasskey(t, s, mine)
	mustCreatePasskey(t, s, theirs)

	if err := s.RenamePasskey(ctx, ownerA, mine.ID, "Laptop"); err != nil {
		t.Fatalf("RenamePasskey: %v", err)
	}
	mine.Name = "Laptop"
	samePasskey(t, "renamed passkey", mustPasskey(t, s, mine.ID), mine)
	if err := s.RenamePasskey(ctx, ownerA, mine.ID, ""); err != nil {
		t.Fatalf("RenamePasskey to no name: %v", err)
	}
	mine.Name = ""
	samePasskey(t, "passkey renamed to no name", mustPasskey(t, s, mine.ID), mine)

	for _, tt := range []struct {
		name  string
		owner string
		id    []byte
	}{
		{"another user's", ownerA, theirs.ID},
		{"unknown", ownerA, credID(8, 32)},
		{"no id", ownerA, nil},
		{"no user", "", mine.ID},
	} {
		if err := s.RenamePasskey(ctx, tt.owner, tt.id, "stolen"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RenamePasskey of %s credential: got %v, want ErrNotFound", tt.name, err)
		}
		if err := s.DeletePasskey(ctx, tt.owner, tt.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeletePasskey of %s credential: got %v, want ErrNotFound", tt.name, err)
		}
	}
	samePasskey(t, "other user's passkey after refused rename and delete", mustPasskey(t, s, theirs.ID), theirs)
	samePasskey(t, "own passkey after refused calls", mustPasskey(t, s, mine.ID), mine)

	if err := s.DeletePasskey(ctx, ownerA, mine.ID); err != nil {
		t.Fatalf("DeletePasskey: %v", err)
	}
	if _, err := s.Passkey(ctx, mine.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Passkey after delete: got %v, want ErrNotFound", err)
	}
	if list, err := s.ListPasskeys(ctx, ownerA); err != nil || len(list) != 0 {
		t.Errorf("ListPasskeys after delete: got %x (%v), want none", passkeyIDs(list), err)
	}
	if err := s.DeletePasskey(ctx, ownerA, mine.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeletePasskey twice: got %v, want ErrNotFound", err)
	}
	if err := s.UsePasskey(ctx, mine.ID, 100, time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UsePasskey after delete: got %v, want ErrNotFound", err)
	}
	// The ID is free again, for anyone.
	again := passkey(ownerB, mine.ID, time.Now())
	mustCreatePasskey(t, s, again)
	samePasskey(t, "passkey registered again under a deleted id", mustPasskey(t, s, mine.ID), again)
}

func testPasskeyCounter(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	tests := []struct {
		name          string
		stored, given uint32
		wantConflict  bool
	}{
		{"both zero: an authenticator without a counter", 0, 0, false},
		{"first counted use", 0, 1, false},
		{"increased", 5, 6, false},
		{"jumped", 5, 5000, false},
		{"to the largest counter", math.MaxUint32 - 1, math.MaxUint32, false},
		{"equal", 5, 5, true},
		{"regressed", 5, 4, true},
		{"dropped to zero", 5, 0, true},
		{"at the largest counter", math.MaxUint32, math.MaxUint32, true},
	}
	s := open(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := passkey(ownerA, credID(byte(0x40+i), 24), time.Now().Add(-time.Hour))
			p.SignCount = tt.stored
			mustCreatePasskey(t, s, p)
			at := time.Now().Round(time.Millisecond)
			err := s.UsePasskey(ctx, p.ID, tt.given, at)
			got := mustPasskey(t, s, p.ID)
			if tt.wantConflict {
				if !errors.Is(err, store.ErrConflict) {
					t.Fatalf("UsePasskey(%d) after %d: got %v, want ErrConflict", tt.given, tt.stored, err)
				}
				samePasskey(t, "passkey after a refused use", got, p)
				return
			}
			if err != nil {
				t.Fatalf("UsePasskey(%d) after %d: got %v, want nil", tt.given, tt.stored, err)
			}
			want := p
			want.SignCount, want.LastUsedAt = tt.given, at
			samePasskey(t, "passkey after a use", got, want)
		})
	}
	t.Run("zero counter stays usable", func(t *testing.T) {
		p := passkey(ownerA, credID(0x60, 24), time.Now())
		p.SignCount = 0
		mustCreatePasskey(t, s, p)
		at := time.Now().Round(time.Millisecond)
		for i := range 3 {
			if err := s.UsePasskey(ctx, p.ID, 0, at.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatalf("use %d with a zero counter: %v", i, err)
			}
		}
		if got := mustPasskey(t, s, p.ID); !got.LastUsedAt.Equal(at.Add(2 * time.Second)) {
			t.Errorf("LastUsedAt: got %v, want the last use %v", got.LastUsedAt, at.Add(2*time.Second))
		}
	})
	t.Run("unknown credential", func(t *testing.T) {
		if err := s.UsePasskey(ctx, credID(0x61, 24), 1, time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UsePasskey of an unknown credential: got %v, want ErrNotFound", err)
		}
	})
}

func sameTOTP(t *testing.T, what string, got, want store.TOTPSecret) {
	t.Helper()
	if got.UserID != want.UserID || !bytes.Equal(got.Sealed, want.Sealed) || got.LastStep != want.LastStep || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func testTOTP(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.TOTP(ctx, ownerA); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TOTP before enrolment: got %v, want ErrNotFound", err)
	}
	if err := s.UseTOTPStep(ctx, ownerA, 100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UseTOTPStep before enrolment: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteTOTP(ctx, ownerA); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteTOTP before enrolment: got %v, want ErrNotFound", err)
	}
	// Sealed bytes are ciphertext: any byte, NUL included.
	first := store.TOTPSecret{UserID: ownerA, Sealed: []byte{0x00, 0x01, 0xfe, 0xff, 'x'}, CreatedAt: time.Now().Add(-time.Hour).Round(time.Millisecond)}
	if err := s.SetTOTP(ctx, first); err != nil {
		t.Fatalf("SetTOTP: %v", err)
	}
	got, err := s.TOTP(ctx, ownerA)
	if err != nil {
		t.Fatalf("TOTP: %v", err)
	}
	sameTOTP(t, "stored enrolment", got, first)

	steps := []struct {
		step         int64
		wantConflict bool
	}{
		{59_000_000, false},
		{59_000_000, true}, // the same code again
		{58_999_999, true}, // an earlier code
		{59_000_001, false},
		{59_000_000, true},
		{59_000_003, false}, // a skipped step is fine
		{0, true},
	}
	for _, st := range steps {
		err := s.UseTOTPStep(ctx, ownerA, st.step)
		switch {
		case st.wantConflict && !errors.Is(err, store.ErrConflict):
			t.Errorf("UseTOTPStep(%d): got %v, want ErrConflict", st.step, err)
		case !st.wantConflict && err != nil:
			t.Errorf("UseTOTPStep(%d): got %v, want nil", st.step, err)
		}
	}
	got, err = s.TOTP(ctx, ownerA)
	if err != nil || got.LastStep != 59_000_003 {
		t.Errorf("LastStep after the uses: got %d (%v), want 59000003", got.LastStep, err)
	}
	if err := s.UseTOTPStep(ctx, ownerA, -1); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("UseTOTPStep(-1): got %v, want a validation error", err)
	}

	// A new enrolment replaces the secret and starts its steps afresh.
	second := store.TOTPSecret{UserID: ownerA, Sealed: []byte("second secret"), CreatedAt: time.Now().Round(time.Millisecond)}
	if err := s.SetTOTP(ctx, second); err != nil {
		t.Fatalf("SetTOTP again: %v", err)
	}
	got, err = s.TOTP(ctx, ownerA)
	if err != nil {
		t.Fatalf("TOTP after re-enrolment: %v", err)
	}
	sameTOTP(t, "replaced enrolment", got, second)
	if err := s.UseTOTPStep(ctx, ownerA, 59_000_002); err != nil {
		t.Errorf("UseTOTPStep of a step before the old enrolment's last: got %v, want nil", err)
	}

	// Another user's enrolment is separate; a zero CreatedAt is filled.
	before := time.Now()
	if err := s.SetTOTP(ctx, store.TOTPSecret{UserID: ownerB, Sealed: []byte("b")}); err != nil {
		t.Fatalf("SetTOTP for another user: %v", err)
	}
	if got, err := s.TOTP(ctx, ownerB); err != nil || got.LastStep != 0 || got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("other user's enrolment: got %+v (%v), want step 0 created about %v", got, err, before)
	}

	if err := s.DeleteTOTP(ctx, ownerA); err != nil {
		t.Fatalf("DeleteTOTP: %v", err)
	}
	if _, err := s.TOTP(ctx, ownerA); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TOTP after delete: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteTOTP(ctx, ownerA); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteTOTP twice: got %v, want ErrNotFound", err)
	}
	if err := s.UseTOTPStep(ctx, ownerA, 59_000_010); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UseTOTPStep after delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.TOTP(ctx, ownerB); err != nil {
		t.Errorf("other user's enrolment after delete: %v", err)
	}
}

func testTOTPInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		in   store.TOTPSecret
	}{
		{"no user", store.TOTPSecret{Sealed: []byte("x")}},
		{"NUL in user id", store.TOTPSecret{UserID: "a\x00b", Sealed: []byte("x")}},
		{"no secret", store.TOTPSecret{UserID: ownerA}},
		{"negative step", store.TOTPSecret{UserID: ownerA, Sealed: []byte("x"), LastStep: -1}},
	} {
		if err := s.SetTOTP(ctx, tt.in); err == nil {
			t.Errorf("SetTOTP with %s: got nil, want an error", tt.name)
		}
	}
	if _, err := s.TOTP(ctx, ownerA); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TOTP after refused enrolments: got %v, want ErrNotFound", err)
	}
}

func wantRecoveryCount(t *testing.T, s store.Store, userID string, want int) {
	t.Helper()
	n, err := s.CountRecoveryCodes(context.Background(), userID)
	if err != nil || n != want {
		t.Fatalf("CountRecoveryCodes(%s): got %d (%v), want %d", userID, n, err, want)
	}
}

// hashes returns n distinct 32-byte values, like HMAC-SHA256 outputs, each with a NUL.
func hashes(seed byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := bytes.Repeat([]byte{seed, byte(i)}, 16)
		h[5] = 0
		out[i] = h
	}
	return out
}

func testRecoveryCodes(t *testing.T, s store.Store) {
	ctx := context.Background()
	wantRecoveryCount(t, s, ownerA, 0)
	if err := s.UseRecoveryCode(ctx, ownerA, hashes(1, 1)[0]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UseRecoveryCode with none stored: got %v, want ErrNotFound", err)
	}
	first := hashes(1, 3)
	if err := s.SetRecoveryCodes(ctx, ownerA, first); err != nil {
		t.Fatalf("SetRecoveryCodes: %v", err)
	}
	theirs := hashes(2, 2)
	if err := s.SetRecoveryCodes(ctx, ownerB, theirs); err != nil {
		t.Fatalf("SetRecoveryCodes for another user: %v", err)
	}
	wantRecoveryCount(t, s, ownerA, 3)

	if err := s.UseRecoveryCode(ctx, ownerA, first[1]); err != nil {
		t.Fatalf("UseRecoveryCode: %v", err)
	}
	if err := s.UseRecoveryCode(ctx, ownerA, first[1]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UseRecoveryCode twice: got %v, want ErrNotFound", err)
	}
	wantRecoveryCount(t, s, ownerA, 2)
	for _, tt := range []struct {
		name string
		hash []byte
	}{
		{"another user's", theirs[0]},
		{"a prefix of one", first[0][:16]},
		{"an empty", nil},
	} {
		if err := s.UseRecoveryCode(ctx, ownerA, tt.hash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UseRecoveryCode with %s hash: got %v, want ErrNotFound", tt.name, err)
		}
	}
	wantRecoveryCount(t, s, ownerA, 2)
	wantRecoveryCount(t, s, ownerB, 2)

	// New codes replace the old ones entirely.
	second := hashes(3, 2)
	if err := s.SetRecoveryCodes(ctx, ownerA, second); err != nil {
		t.Fatalf("SetRecoveryCodes again: %v", err)
	}
	wantRecoveryCount(t, s, ownerA, 2)
	if err := s.UseRecoveryCode(ctx, ownerA, first[0]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UseRecoveryCode of a replaced code: got %v, want ErrNotFound", err)
	}
	if err := s.UseRecoveryCode(ctx, ownerA, second[0]); err != nil {
		t.Errorf("UseRecoveryCode of a new code: %v", err)
	}

	// A list with an empty hash is refused whole, and nothing is replaced.
	if err := s.SetRecoveryCodes(ctx, ownerA, [][]byte{hashes(4, 1)[0], {}}); err == nil {
		t.Errorf("SetRecoveryCodes with an empty hash: got nil, want an error")
	}
	wantRecoveryCount(t, s, ownerA, 1)

	if err := s.SetRecoveryCodes(ctx, ownerA, nil); err != nil {
		t.Fatalf("SetRecoveryCodes(nil): %v", err)
	}
	wantRecoveryCount(t, s, ownerA, 0)
	if err := s.UseRecoveryCode(ctx, ownerA, second[1]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UseRecoveryCode after removing all: got %v, want ErrNotFound", err)
	}
	wantRecoveryCount(t, s, ownerB, 2)
}

// testNULUserID: backends index factors by "user id NUL …", so a user ID "A NUL x" must
// not reach the entries of user A whose credential ID or code hash starts with "x NUL".
func testNULUserID(t *testing.T, s store.Store) {
	ctx := context.Background()
	id := append([]byte("x\x00"), credID(0x11, 16)...)
	hash := append([]byte("x\x00"), hashes(5, 1)[0]...)
	mustCreatePasskey(t, s, passkey(ownerA, id, time.Now()))
	// And a credential whose ID is what follows "x NUL" in the first one's index entry.
	mustCreatePasskey(t, s, passkey(ownerA, id[2:], time.Now()))
	if err := s.SetRecoveryCodes(ctx, ownerA, [][]byte{hash}); err != nil {
		t.Fatalf("SetRecoveryCodes: %v", err)
	}
	forged := ownerA + "\x00x"
	if list, err := s.ListPasskeys(ctx, forged); len(list) != 0 {
		t.Errorf("ListPasskeys(A NUL x): got %x (%v), want none", passkeyIDs(list), err)
	}
	if n, err := s.CountRecoveryCodes(ctx, forged); n != 0 {
		t.Errorf("CountRecoveryCodes(A NUL x): got %d (%v), want 0 or an error", n, err)
	}
	if err := s.UseRecoveryCode(ctx, forged, hash[2:]); err == nil {
		t.Errorf("UseRecoveryCode(A NUL x): got nil, want an error")
	}
	if err := s.DeleteFactors(ctx, forged); err != nil && errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteFactors(A NUL x): got %v, want nil or a validation error", err)
	}
	wantRecoveryCount(t, s, ownerA, 1)
	if list, err := s.ListPasskeys(ctx, ownerA); err != nil || len(list) != 2 {
		t.Errorf("ListPasskeys(A): got %d (%v), want its two passkeys", len(list), err)
	}
}

// enrolAll gives userID two passkeys, a TOTP enrolment and three recovery codes, and
// returns the passkeys' IDs.
func enrolAll(t *testing.T, s store.Store, userID string, seed byte) [][]byte {
	t.Helper()
	ctx := context.Background()
	ids := [][]byte{credID(seed, 16), credID(seed+1, 16)}
	for _, id := range ids {
		mustCreatePasskey(t, s, passkey(userID, id, time.Now()))
	}
	if err := s.SetTOTP(ctx, store.TOTPSecret{UserID: userID, Sealed: []byte{seed}}); err != nil {
		t.Fatalf("SetTOTP: %v", err)
	}
	if err := s.SetRecoveryCodes(ctx, userID, hashes(seed, 3)); err != nil {
		t.Fatalf("SetRecoveryCodes: %v", err)
	}
	return ids
}

// wantNoFactors checks that nothing of userID's factors is reachable, by user or by
// credential ID.
func wantNoFactors(t *testing.T, s store.Store, userID string, ids [][]byte) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		if p, err := s.Passkey(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Passkey(%x) of %s: got user %q, err %v; want ErrNotFound", id, userID, p.UserID, err)
		}
		if err := s.UsePasskey(ctx, id, 1000, time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UsePasskey(%x) of %s: got %v, want ErrNotFound", id, userID, err)
		}
	}
	if list, err := s.ListPasskeys(ctx, userID); err != nil || len(list) != 0 {
		t.Errorf("ListPasskeys(%s): got %x (%v), want none", userID, passkeyIDs(list), err)
	}
	if _, err := s.TOTP(ctx, userID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TOTP(%s): got %v, want ErrNotFound", userID, err)
	}
	wantRecoveryCount(t, s, userID, 0)
}

// wantAllFactors checks that userID still has what enrolAll gave it.
func wantAllFactors(t *testing.T, s store.Store, userID string, ids [][]byte) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		if p, err := s.Passkey(ctx, id); err != nil || p.UserID != userID {
			t.Errorf("Passkey(%x): got user %q (%v), want %s", id, p.UserID, err, userID)
		}
	}
	if list, err := s.ListPasskeys(ctx, userID); err != nil || len(list) != len(ids) {
		t.Errorf("ListPasskeys(%s): got %d (%v), want %d", userID, len(list), err, len(ids))
	}
	if _, err := s.TOTP(ctx, userID); err != nil {
		t.Errorf("TOTP(%s): %v", userID, err)
	}
	wantRecoveryCount(t, s, userID, 3)
}

func testDeleteFactors(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.DeleteFactors(ctx, ownerA); err != nil {
		t.Fatalf("DeleteFactors of a user with none: %v", err)
	}
	mine := enrolAll(t, s, ownerA, 0x10)
	theirs := enrolAll(t, s, ownerB, 0x20)
	if err := s.DeleteFactors(ctx, ownerA); err != nil {
		t.Fatalf("DeleteFactors: %v", err)
	}
	wantNoFactors(t, s, ownerA, mine)
	wantAllFactors(t, s, ownerB, theirs)
	// Nothing is left behind under the deleted IDs: they can be registered again.
	mustCreatePasskey(t, s, passkey(ownerB, mine[0], time.Now()))
	if err := s.DeleteFactors(ctx, ownerA); err != nil {
		t.Fatalf("DeleteFactors twice: %v", err)
	}
	if p, err := s.Passkey(ctx, mine[0]); err != nil || p.UserID != ownerB {
		t.Errorf("passkey re-registered by another user after a second DeleteFactors: got %q (%v), want %s", p.UserID, err, ownerB)
	}
}

func testDeleteUserCascades(t *testing.T, s store.Store) {
	ctx := context.Background()
	gone := mustCreate(t, s, user("jatin", "jatin@example.com"))
	kept := mustCreate(t, s, user("alice", "alice@example.com"))
	goneIDs := enrolAll(t, s, gone.ID, 0x30)
	keptIDs := enrolAll(t, s, kept.ID, 0x40)
	if err := s.DeleteUser(ctx, store.UserQuery{Username: "jatin"}); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantNotFound(t, s, store.UserQuery{ID: gone.ID})
	wantNoFactors(t, s, gone.ID, goneIDs)
	wantAllFactors(t, s, kept.ID, keptIDs)
}
