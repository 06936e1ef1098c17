package store

import (
	"errors"
	"fmt"
	"strings"
)

// MaxCredentialIDBytes is the longest credential ID WebAuthn allows an authenticator to
// choose.
const MaxCredentialIDBytes = 1023

// maxTOTPStep bounds a TOTP time step to what a Lua number (a double) holds exactly, so a
// backend comparing steps in a script compares them as the caller meant. A real step (Unix
// time / 30 s) is some eight digits long.
const maxTOTPStep = 1<<53 - 1

// CheckFactorUserID returns an error unless userID can own factors: backends index
// factors by "user id NUL …", so it must be non-empty and free of NUL bytes.
func CheckFactorUserID(userID string) error {
	if userID == "" {
		return errors.New("a user id is required")
	}
	if strings.IndexByte(userID, 0) >= 0 {
		return errors.New("the user id contains a NUL byte")
	}
	return nil
}

// CheckCredentialID returns an error unless id has the length WebAuthn allows.
func CheckCredentialID(id []byte) error {
	if len(id) == 0 {
		return errors.New("a credential id is required")
	}
	if len(id) > MaxCredentialIDBytes {
		return fmt.Errorf("credential id of %d bytes: at most %d are allowed", len(id), MaxCredentialIDBytes)
	}
	return nil
}

// CheckPasskey returns an error unless p can be stored: a valid credential ID and owner,
// and a public key, without which the credential could never verify anything.
func CheckPasskey(p Passkey) error {
	if err := CheckCredentialID(p.ID); err != nil {
		return err
	}
	if err := CheckFactorUserID(p.UserID); err != nil {
		return err
	}
	if len(p.PublicKey) == 0 {
		return errors.New("a public key is required")
	}
	return nil
}

// CheckTOTPStep returns an error for a step no clock can produce: negative, or too large
// to compare exactly.
func CheckTOTPStep(step int64) error {
	if step < 0 || step > maxTOTPStep {
		return fmt.Errorf("TOTP step %d out of range [0, %d]", step, int64(maxTOTPStep))
	}
	return nil
}

// CheckTOTPSecret returns an error unless t can be stored.
func CheckTOTPSecret(t TOTPSecret) error {
	if err := CheckFactorUserID(t.UserID); err != nil {
		return err
	}
	if len(t.Sealed) == 0 {
		return errors.New("a sealed TOTP secret is required")
	}
	return CheckTOTPStep(t.LastStep)
}

// CheckRecoveryHashes returns an error if one of the hashes is empty: an empty hash would
// match a code nobody was given.
func CheckRecoveryHashes(hashes [][]byte) error {
	for i, h := range hashes {
		if len(h) == 0 {
			return fmt.Errorf("recovery code hash %d is empty", i)
		}
	}
	return nil
}
