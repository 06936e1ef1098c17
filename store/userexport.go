package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// documentFields are the keys of the MongoDB-style user document that map to User's own
// fields. Extra must not reuse them, or a script reading the document could not tell an
// imported field from the real one.
var documentFields = map[string]bool{
	"_id": true, "username": true, "name": true, "email": true, "role": true, "password": true,
}

// maxUsernameBytes bounds a username so an index key stays small; no real login name is
// anywhere near it.
const maxUsernameBytes = 256

// NewUserID returns a fresh user ID: 12 random bytes as 24 lowercase hex characters, the
// shape of a MongoDB ObjectId, so IDs of imported and created users look alike.
func NewUserID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate user id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// IsUserID reports whether id has the shape of a user ID: 24 lowercase hex characters.
func IsUserID(id string) bool {
	if len(id) != 24 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckBcryptHash returns an error unless hash is a bcrypt hash with a $2a$, $2b$ or $2y$
// prefix and a valid cost. It exists so that a plaintext password can never be stored by
// mistake: every path that stores a password hash calls it.
func CheckBcryptHash(hash string) error {
	if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
		return errors.New("not a bcrypt hash")
	}
	// A bcrypt hash is always 60 characters: prefix, 2-digit cost, "$", 22 salt, 31 hash.
	if len(hash) != 60 {
		return errors.New("not a bcrypt hash: wrong length")
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("not a bcrypt hash: %w", err)
	}
	return nil
}

// ValidateUser checks what every backend requires before storing u: a non-empty UTF-8
// username, an ID that is empty (to be generated) or 24 lowercase hex characters, a
// password hash that is empty or bcrypt, and Extra keys that do not shadow the document's
// own fields. Backends call it so they all refuse the same records.
func ValidateUser(u User) error {
	switch {
	case u.Username == "":
		return errors.New("username: required")
	case len(u.Username) > maxUsernameBytes:
		return fmt.Errorf("username: longer than %d bytes", maxUsernameBytes)
	case !utf8.ValidString(u.Username):
		return errors.New("username: not valid UTF-8")
	case u.ID != "" && !IsUserID(u.ID):
		return fmt.Errorf("id %q: want 24 lowercase hex characters", u.ID)
	case !utf8.ValidString(u.Email):
		return errors.New("email: not valid UTF-8")
	}
	if u.PasswordHash != "" {
		if err := CheckBcryptHash(u.PasswordHash); err != nil {
			return fmt.Errorf("password: %w", err)
		}
	}
	for k := range u.Extra {
		if documentFields[k] {
			return fmt.Errorf("extra field %q: reserved for the user's own field", k)
		}
	}
	return nil
}

// PrepareNewUser validates u and fills what a backend generates for a new user: a fresh ID
// when it has none and the creation time. Every backend calls it before writing, so all of
// them refuse and fill users alike.
func PrepareNewUser(u User) (User, error) {
	if err := ValidateUser(u); err != nil {
		return User{}, err
	}
	if u.ID == "" {
		id, err := NewUserID()
		if err != nil {
			return User{}, err
		}
		u.ID = id
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now().UTC()
	}
	// Drop the monotonic clock reading so the returned user equals the stored one.
	u.CreatedAt = u.CreatedAt.Round(0)
	return u, nil
}
