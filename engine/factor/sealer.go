package factor

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"golang.org/x/crypto/hkdf"
)

// The HKDF info strings keep the two keys derived from one secret independent of each other
// and of every other key the gateway derives from it (the session token's among them).
const (
	sealInfo     = "callgate factor seal v1"
	recoveryInfo = "callgate recovery code v1"
	keyLength    = 32 // AES-256, and HMAC-SHA256's block-sized key
)

var (
	// ErrNoSecret reports a Sealer built without a secret, or with an empty one.
	ErrNoSecret = errors.New("factor sealer: a non-empty secret is required")
	// ErrUnseal reports a sealed value that no key of the ring opens: it is truncated or
	// tampered with, was sealed for another user, or under a secret no longer listed.
	ErrUnseal = errors.New("sealed value does not open")
)

// Sealer encrypts factor secrets at rest and hashes recovery codes, with keys derived from
// the gateway's ordered secrets: the first seals and hashes the current way, every one
// opens and hashes, so a secret can be rotated without losing anyone's enrolment. Keys are
// derived once, in NewSealer. A Sealer is immutable and safe for concurrent use.
type Sealer struct {
	// aeads[i] and recoveryKeys[i] derive from secret i; index 0 is the current secret.
	aeads        []cipher.AEAD
	recoveryKeys [][]byte
}

// NewSealer derives the sealing and recovery-code keys of each secret, current first.
func NewSealer(secrets [][]byte) (*Sealer, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	s := &Sealer{
		aeads:        make([]cipher.AEAD, 0, len(secrets)),
		recoveryKeys: make([][]byte, 0, len(secrets)),
	}
	for i, secret := range secrets {
		if len(secret) == 0 {
			return nil, fmt.Errorf("new sealer: secret %d: %w", i, ErrNoSecret)
		}
		sealKey, err := deriveKey(secret, sealInfo)
		if err != nil {
			return nil, fmt.Errorf("new sealer: secret %d: %w", i, err)
		}
		block, err := aes.NewCipher(sealKey)
		if err != nil {
			return nil, fmt.Errorf("new sealer: secret %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("new sealer: secret %d: %w", i, err)
		}
		recoveryKey, err := deriveKey(secret, recoveryInfo)
		if err != nil {
			return nil, fmt.Errorf("new sealer: secret %d: %w", i, err)
		}
		s.aeads = append(s.aeads, aead)
		s.recoveryKeys = append(s.recoveryKeys, recoveryKey)
	}
	return s, nil
}

// deriveKey is HKDF-SHA256 with no salt (RFC 5869 §2.2: HashLen zero bytes), as the
// session token's key is: the secret is already uniformly chosen by the operator.
func deriveKey(secret []byte, info string) ([]byte, error) {
	key := make([]byte, keyLength)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, []byte(info)), key); err != nil {
		return nil, fmt.Errorf("derive %q key: %w", info, err)
	}
	return key, nil
}

// Seal encrypts plain for userID with the current key: AES-256-GCM with a random nonce,
// and userID as additional data, so a sealed value copied onto another user's record does
// not open there. The result is the nonce followed by the ciphertext and tag.
func (s *Sealer) Seal(plain []byte, userID string) ([]byte, error) {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, []byte(userID)), nil
}

// Open decrypts what Seal returned for the same userID under any secret of the ring. Every
// failure is ErrUnseal: GCM cannot tell a tampered value from another user's or another
// key's, and the caller has nothing different to do about them.
func (s *Sealer) Open(sealed []byte, userID string) ([]byte, error) {
	// Every key is AES-GCM with the standard nonce and tag, so one length check serves all.
	n := s.aeads[0].NonceSize()
	if len(sealed) < n+s.aeads[0].Overhead() {
		return nil, fmt.Errorf("open: %d bytes, shorter than nonce and tag: %w", len(sealed), ErrUnseal)
	}
	for _, aead := range s.aeads {
		plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(userID))
		if err == nil {
			return plain, nil
		}
	}
	return nil, fmt.Errorf("open: no key of %d authenticates it: %w", len(s.aeads), ErrUnseal)
}

// RecoveryHashes returns the hashes of a recovery code for userID, one per secret, current
// first: the store keeps the current one (SetRecoveryCodes) and a code is looked up under
// each in turn (UseRecoveryCode), so codes issued before a rotation keep working. The hash
// is HMAC-SHA256 under a key of its own, over the user ID and the normalised code, so equal
// codes of two users hash apart. The code is normalised as people retype it: case,
// spaces and dashes do not matter ("ABCDE-FGHIJ" is "abcde fghij").
func (s *Sealer) RecoveryHashes(userID, code string) [][]byte {
	msg := recoveryMessage(userID, normaliseRecoveryCode(code))
	hashes := make([][]byte, len(s.recoveryKeys))
	for i, key := range s.recoveryKeys {
		mac := hmac.New(sha256.New, key)
		mac.Write(msg)
		hashes[i] = mac.Sum(nil)
	}
	return hashes
}

// recoveryMessage prefixes the user ID with its length, so no choice of user ID and code
// can produce the message of another pair.
func recoveryMessage(userID, code string) []byte {
	msg := make([]byte, 0, 8+len(userID)+len(code))
	msg = binary.BigEndian.AppendUint64(msg, uint64(len(userID)))
	msg = append(msg, userID...)
	return append(msg, code...)
}

func normaliseRecoveryCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, code)
}
