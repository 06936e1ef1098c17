package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/callgate/callgate/store"
)

var (
	bucketPasskeys       = []byte("passkeys")         // credential ID → passkeyDocument
	bucketPasskeysByUser = []byte("passkeys_by_user") // userID NUL credential ID → ""
	bucketTOTP           = []byte("totp")             // userID → totpDocument
	bucketRecoveryCodes  = []byte("recovery_codes")   // userID NUL hash → ""

	// factorBuckets are created by Open next to the user buckets.
	factorBuckets = [][]byte{bucketPasskeys, bucketPasskeysByUser, bucketTOTP, bucketRecoveryCodes}
)

type passkeyDocument struct {
	UserID          string    `json:"userId"`
	Name            string    `json:"name,omitempty"`
	PublicKey       []byte    `json:"publicKey"`
	AttestationType string    `json:"attestationType,omitempty"`
	AAGUID          []byte    `json:"aaguid,omitempty"`
	SignCount       uint32    `json:"signCount"`
	Transports      []string  `json:"transports,omitempty"`
	BackupEligible  bool      `json:"backupEligible,omitempty"`
	BackupState     bool      `json:"backupState,omitempty"`
	CreatedAt       time.Time `json:"createdAt"`
	LastUsedAt      time.Time `json:"lastUsedAt,omitzero"`
}

func (d passkeyDocument) passkey(id []byte) store.Passkey {
	return store.Passkey{ID: bytes.Clone(id), UserID: d.UserID, Name: d.Name, PublicKey: d.PublicKey,
		AttestationType: d.AttestationType, AAGUID: d.AAGUID, SignCount: d.SignCount, Transports: d.Transports,
		BackupEligible: d.BackupEligible, BackupState: d.BackupState, CreatedAt: d.CreatedAt, LastUsedAt: d.LastUsedAt}
}

type totpDocument struct {
	Sealed    []byte    `json:"sealed"`
	LastStep  int64     `json:"lastStep"`
	CreatedAt time.Time `json:"createdAt"`
}

// userPasskeyKey is the per-user index key of a credential. The user ID holds no NUL
// (store.CheckFactorUserID), so "userID NUL" prefixes exactly that user's entries even
// though a credential ID may contain any byte.
func userPasskeyKey(userID string, id []byte) []byte {
	return append(pairKey(userID, ""), id...)
}

func getPasskey(tx *bbolt.Tx, id []byte) (passkeyDocument, error) {
	if len(id) == 0 {
		return passkeyDocument{}, store.ErrNotFound
	}
	raw := tx.Bucket(bucketPasskeys).Get(id)
	if raw == nil {
		return passkeyDocument{}, store.ErrNotFound
	}
	var d passkeyDocument
	if err := json.Unmarshal(raw, &d); err != nil {
		return passkeyDocument{}, fmt.Errorf("decode passkey: %w", err)
	}
	return d, nil
}

func putPasskey(tx *bbolt.Tx, id []byte, d passkeyDocument) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode passkey: %w", err)
	}
	return tx.Bucket(bucketPasskeys).Put(id, raw)
}

// ownPasskey returns the credential if userID owns it; another user's is ErrNotFound, so
// a caller cannot learn that a credential ID exists elsewhere.
func ownPasskey(tx *bbolt.Tx, userID string, id []byte) (passkeyDocument, error) {
	d, err := getPasskey(tx, id)
	if err != nil {
		return passkeyDocument{}, err
	}
	if d.UserID != userID {
		return passkeyDocument{}, store.ErrNotFound
	}
	return d, nil
}

// CreatePasskey stores the credential and its per-user index entry in one transaction,
// refusing a credential ID any user already has.
func (s *Store) CreatePasskey(ctx context.Context, p store.Passkey) error {
	if err := store.CheckPasskey(p); err != nil {
		return fmt.Errorf("create passkey: %w", err)
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	d := passkeyDocument{UserID: p.UserID, Name: p.Name, PublicKey: p.PublicKey, AttestationType: p.AttestationType,
		AAGUID: p.AAGUID, SignCount: p.SignCount, Transports: p.Transports, BackupEligible: p.BackupEligible,
		BackupState: p.BackupState, CreatedAt: p.CreatedAt.UTC()}
	if !p.LastUsedAt.IsZero() {
		d.LastUsedAt = p.LastUsedAt.UTC()
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketPasskeys).Get(p.ID) != nil {
			return fmt.Errorf("credential id: %w", store.ErrDuplicate)
		}
		if err := putPasskey(tx, p.ID, d); err != nil {
			return err
		}
		return tx.Bucket(bucketPasskeysByUser).Put(userPasskeyKey(p.UserID, p.ID), nil)
	})
	if err != nil {
		return fmt.Errorf("create passkey: %w", err)
	}
	return nil
}

// Passkey returns the credential with this ID.
func (s *Store) Passkey(ctx context.Context, credentialID []byte) (store.Passkey, error) {
	var p store.Passkey
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		d, err := getPasskey(tx, credentialID)
		if err != nil {
			return err
		}
		p = d.passkey(credentialID)
		return nil
	})
	if err != nil {
		return store.Passkey{}, fmt.Errorf("get passkey: %w", err)
	}
	return p, nil
}

// userPasskeyIDs returns the credential IDs in the user's index.
func userPasskeyIDs(tx *bbolt.Tx, userID string) [][]byte {
	var ids [][]byte
	prefix := pairKey(userID, "")
	c := tx.Bucket(bucketPasskeysByUser).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, bytes.Clone(k[len(prefix):]))
	}
	return ids
}

// ListPasskeys returns the user's credentials, oldest first (credential ID breaks a tie).
func (s *Store) ListPasskeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	if err := store.CheckFactorUserID(userID); err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	list := []store.Passkey{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		for _, id := range userPasskeyIDs(tx, userID) {
			d, err := getPasskey(tx, id)
			if err != nil {
				// The index and the credentials are written in one transaction, so an
				// entry without its credential is corruption, not a missing passkey.
				return fmt.Errorf("index entry points to passkey %x: %w", id, err)
			}
			// Only the owner's credentials, whatever the index says.
			if d.UserID == userID {
				list = append(list, d.passkey(id))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	slices.SortFunc(list, func(a, b store.Passkey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID, b.ID)
	})
	return list, nil
}

// UsePasskey checks and moves the signature counter in one transaction, so two requests
// carrying the same counter cannot both pass.
func (s *Store) UsePasskey(ctx context.Context, credentialID []byte, signCount uint32, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		d, err := getPasskey(tx, credentialID)
		if err != nil {
			return err
		}
		if (d.SignCount != 0 || signCount != 0) && signCount <= d.SignCount {
			return fmt.Errorf("signature counter %d after %d: %w", signCount, d.SignCount, store.ErrConflict)
		}
		d.SignCount, d.LastUsedAt = signCount, at.UTC()
		return putPasskey(tx, credentialID, d)
	})
	if err != nil {
		return fmt.Errorf("use passkey: %w", err)
	}
	return nil
}

// RenamePasskey sets the name of one of the user's credentials.
func (s *Store) RenamePasskey(ctx context.Context, userID string, credentialID []byte, name string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		d, err := ownPasskey(tx, userID, credentialID)
		if err != nil {
			return err
		}
		d.Name = name
		return putPasskey(tx, credentialID, d)
	})
	if err != nil {
		return fmt.Errorf("rename passkey: %w", err)
	}
	return nil
}

// DeletePasskey removes one of the user's credentials and its index entry in one
// transaction.
func (s *Store) DeletePasskey(ctx context.Context, userID string, credentialID []byte) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if _, err := ownPasskey(tx, userID, credentialID); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPasskeys).Delete(credentialID); err != nil {
			return err
		}
		return tx.Bucket(bucketPasskeysByUser).Delete(userPasskeyKey(userID, credentialID))
	})
	if err != nil {
		return fmt.Errorf("delete passkey: %w", err)
	}
	return nil
}

func getTOTP(tx *bbolt.Tx, userID string) (totpDocument, error) {
	raw := tx.Bucket(bucketTOTP).Get([]byte(userID))
	if raw == nil {
		return totpDocument{}, store.ErrNotFound
	}
	var d totpDocument
	if err := json.Unmarshal(raw, &d); err != nil {
		return totpDocument{}, fmt.Errorf("decode TOTP enrolment: %w", err)
	}
	return d, nil
}

func putTOTP(tx *bbolt.Tx, userID string, d totpDocument) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode TOTP enrolment: %w", err)
	}
	return tx.Bucket(bucketTOTP).Put([]byte(userID), raw)
}

// SetTOTP stores the enrolment, replacing an earlier one with its last step.
func (s *Store) SetTOTP(ctx context.Context, t store.TOTPSecret) error {
	if err := store.CheckTOTPSecret(t); err != nil {
		return fmt.Errorf("set TOTP: %w", err)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	d := totpDocument{Sealed: t.Sealed, LastStep: t.LastStep, CreatedAt: t.CreatedAt.UTC()}
	err := s.update(ctx, func(tx *bbolt.Tx) error { return putTOTP(tx, t.UserID, d) })
	if err != nil {
		return fmt.Errorf("set TOTP: %w", err)
	}
	return nil
}

// TOTP returns the user's enrolment.
func (s *Store) TOTP(ctx context.Context, userID string) (store.TOTPSecret, error) {
	var t store.TOTPSecret
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		d, err := getTOTP(tx, userID)
		if err != nil {
			return err
		}
		t = store.TOTPSecret{UserID: userID, Sealed: d.Sealed, LastStep: d.LastStep, CreatedAt: d.CreatedAt}
		return nil
	})
	if err != nil {
		return store.TOTPSecret{}, fmt.Errorf("get TOTP: %w", err)
	}
	return t, nil
}

// UseTOTPStep checks and moves the last accepted step in one transaction, so a code can
// pass once however many requests present it at the same time.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	if err := store.CheckTOTPStep(step); err != nil {
		return fmt.Errorf("use TOTP step: %w", err)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		d, err := getTOTP(tx, userID)
		if err != nil {
			return err
		}
		if step <= d.LastStep {
			return fmt.Errorf("step %d at or before %d: %w", step, d.LastStep, store.ErrConflict)
		}
		d.LastStep = step
		return putTOTP(tx, userID, d)
	})
	if err != nil {
		return fmt.Errorf("use TOTP step: %w", err)
	}
	return nil
}

// DeleteTOTP removes the user's enrolment.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTOTP)
		if b.Get([]byte(userID)) == nil {
			return store.ErrNotFound
		}
		return b.Delete([]byte(userID))
	})
	if err != nil {
		return fmt.Errorf("delete TOTP: %w", err)
	}
	return nil
}

// recoveryKey is the key of one code's hash; like userPasskeyKey, the NUL after the user
// ID keeps a prefix scan to that user even though a hash may contain any byte.
func recoveryKey(userID string, hash []byte) []byte {
	return append(pairKey(userID, ""), hash...)
}

// deleteByPrefix removes every key of b starting with prefix and returns how many.
func deleteByPrefix(b *bbolt.Bucket, prefix []byte) (int, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	// Deleting while a cursor walks the bucket skips keys; collect first.
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// SetRecoveryCodes replaces the user's code hashes in one transaction: the old codes stop
// working in the same instant the new ones start.
func (s *Store) SetRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	if err := store.CheckFactorUserID(userID); err != nil {
		return fmt.Errorf("set recovery codes: %w", err)
	}
	if err := store.CheckRecoveryHashes(hashes); err != nil {
		return fmt.Errorf("set recovery codes: %w", err)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRecoveryCodes)
		if _, err := deleteByPrefix(b, pairKey(userID, "")); err != nil {
			return err
		}
		for _, h := range hashes {
			if err := b.Put(recoveryKey(userID, h), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set recovery codes: %w", err)
	}
	return nil
}

// UseRecoveryCode deletes the code's hash, in one transaction with the check that it is
// there, so it can be used once.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte) error {
	if err := store.CheckFactorUserID(userID); err != nil {
		return fmt.Errorf("use recovery code: %w", err)
	}
	if len(hash) == 0 {
		return fmt.Errorf("use recovery code: %w", store.ErrNotFound)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRecoveryCodes)
		key := recoveryKey(userID, hash)
		if b.Get(key) == nil {
			return store.ErrNotFound
		}
		return b.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("use recovery code: %w", err)
	}
	return nil
}

// CountRecoveryCodes counts the user's unused code hashes.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	if err := store.CheckFactorUserID(userID); err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	n := 0
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		prefix := pairKey(userID, "")
		c := tx.Bucket(bucketRecoveryCodes).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}

// DeleteFactors removes every factor of the user in one transaction.
func (s *Store) DeleteFactors(ctx context.Context, userID string) error {
	if err := store.CheckFactorUserID(userID); err != nil {
		return fmt.Errorf("delete factors: %w", err)
	}
	if err := s.update(ctx, func(tx *bbolt.Tx) error { return deleteFactors(tx, userID) }); err != nil {
		return fmt.Errorf("delete factors: %w", err)
	}
	return nil
}

// deleteFactors removes the user's passkeys (credentials and index), TOTP enrolment and
// recovery codes within tx; DeleteUser calls it in the transaction that removes the user.
func deleteFactors(tx *bbolt.Tx, userID string) error {
	passkeys := tx.Bucket(bucketPasskeys)
	for _, id := range userPasskeyIDs(tx, userID) {
		// Only the user's own credential: an index entry is never trusted to delete
		// another user's.
		d, err := getPasskey(tx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("passkey %x: %w", id, err)
		}
		if d.UserID == userID {
			if err := passkeys.Delete(id); err != nil {
				return fmt.Errorf("delete passkey: %w", err)
			}
		}
	}
	if _, err := deleteByPrefix(tx.Bucket(bucketPasskeysByUser), pairKey(userID, "")); err != nil {
		return fmt.Errorf("delete passkey index: %w", err)
	}
	if err := tx.Bucket(bucketTOTP).Delete([]byte(userID)); err != nil {
		return fmt.Errorf("delete TOTP enrolment: %w", err)
	}
	if _, err := deleteByPrefix(tx.Bucket(bucketRecoveryCodes), pairKey(userID, "")); err != nil {
		return fmt.Errorf("delete recovery codes: %w", err)
	}
	return nil
}
