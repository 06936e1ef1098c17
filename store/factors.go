package store

import (
	"context"
	"errors"
	"time"
)

// ErrConflict reports that a conditional write found the record in a state it must not
// overwrite: a passkey's signature counter that did not increase, a TOTP time step at or
// before the last one accepted. Nothing was written.
var ErrConflict = errors.New("conflicting update")

// Passkey is one WebAuthn credential registered to a user.
type Passkey struct {
	// ID is the credential ID the authenticator chose (raw bytes, at most 1023). It is unique
	// across all users.
	ID     []byte
	UserID string
	// Name is what the user calls it ("YubiKey", "Laptop"); it may be empty.
	Name string
	// PublicKey is the credential's public key in COSE form, as the attestation gave it.
	PublicKey       []byte
	AttestationType string
	AAGUID          []byte
	// SignCount is the authenticator's signature counter at the last use (0 for
	// authenticators that keep none).
	SignCount  uint32
	Transports []string
	// BackupEligible and BackupState are the authenticator data's BE and BS flags.
	BackupEligible bool
	BackupState    bool
	CreatedAt      time.Time
	// LastUsedAt is zero until the first authentication with it.
	LastUsedAt time.Time
}

// TOTPSecret is a user's time-based one-time password enrolment. The secret itself never
// reaches the store in the clear: Sealed is what engine/factor encrypted with a key
// derived from the gateway's secret.
type TOTPSecret struct {
	UserID string
	Sealed []byte
	// LastStep is the last RFC 6238 time step accepted; a code of this step or an earlier
	// one is a replay (UseTOTPStep).
	LastStep  int64
	CreatedAt time.Time
}

// Factors keeps the second factors and passkeys of users: WebAuthn credentials, TOTP
// secrets and one-time recovery codes. Every conditional method is atomic against
// concurrent callers on every replica: two requests presenting the same code or the same
// counter cannot both succeed.
type Factors interface {
	// CreatePasskey stores a new credential. A credential ID already stored (for any user)
	// is an error wrapping ErrDuplicate; a zero CreatedAt is filled with the current time.
	CreatePasskey(ctx context.Context, p Passkey) error
	// Passkey returns the credential with this ID, or ErrNotFound.
	Passkey(ctx context.Context, credentialID []byte) (Passkey, error)
	// ListPasskeys returns a user's credentials, oldest first (none: an empty slice).
	ListPasskeys(ctx context.Context, userID string) ([]Passkey, error)
	// UsePasskey records an authentication with the credential: its new signature counter
	// and the time. When either the stored or the new counter is non-zero, the new one must
	// be greater than the stored one, or nothing is written and the error wraps ErrConflict
	// (a cloned authenticator, or a replayed assertion). A missing credential is ErrNotFound.
	UsePasskey(ctx context.Context, credentialID []byte, signCount uint32, at time.Time) error
	// RenamePasskey sets the name of one of userID's credentials; another user's
	// credential, or none, is ErrNotFound.
	RenamePasskey(ctx context.Context, userID string, credentialID []byte, name string) error
	// DeletePasskey removes one of userID's credentials; another user's, or none, is
	// ErrNotFound.
	DeletePasskey(ctx context.Context, userID string, credentialID []byte) error

	// SetTOTP stores the user's TOTP enrolment, replacing an earlier one (and its LastStep).
	SetTOTP(ctx context.Context, t TOTPSecret) error
	// TOTP returns the user's enrolment, or ErrNotFound.
	TOTP(ctx context.Context, userID string) (TOTPSecret, error)
	// UseTOTPStep accepts the time step of a verified code: it must be greater than the
	// stored LastStep, which it becomes. A step at or before it is ErrConflict (a replayed
	// code); no enrolment is ErrNotFound.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// DeleteTOTP removes the user's enrolment, or returns ErrNotFound.
	DeleteTOTP(ctx context.Context, userID string) error

	// SetRecoveryCodes replaces all of the user's recovery codes with these hashes (the
	// codes themselves are never stored). An empty list removes them.
	SetRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error
	// UseRecoveryCode removes one code by its hash: it can be used once. A hash the user
	// does not have (or no longer has) is ErrNotFound.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte) error
	// CountRecoveryCodes returns how many unused recovery codes the user has.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)

	// DeleteFactors removes every passkey, the TOTP enrolment and the recovery codes of a
	// user (the user was deleted). A user with none is not an error.
	DeleteFactors(ctx context.Context, userID string) error
}
