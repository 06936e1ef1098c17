package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

// DecodeUserExport parses a JSON array shaped like a MongoDB export of a NextAuth app's
// users collection (mongoexport --jsonArray, or JSON.stringify of find().toArray()).
//
// Each record needs username and password (a bcrypt hash; plaintext is refused). _id may
// be a string or {"$oid": "…"} and is lower-cased; a missing _id leaves ID empty so the
// store generates one. name, email and role are optional strings. Every other field is
// kept in Extra as decoded JSON; Extended JSON such as {"$date": …} is kept as it is.
//
// Errors name the record by its zero-based index in the array (as jq '.[3]' does), with
// its _id and username when known, and the field at fault:
//
//	record 3 (username "bob"): password: not a bcrypt hash
//
// Two records with the same _id, username or e-mail (compared case-insensitively) are
// refused with both indexes, so an import never fails half-way on the file's own content.
func DecodeUserExport(data []byte) ([]User, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, fmt.Errorf("users export: want a JSON array of user records: %w", err)
	}
	users := make([]User, 0, len(raws))
	seen := map[string]int{} // "field\x00value" -> record index
	for i, raw := range raws {
		u, err := decodeUserRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("record %d%s: %w", i, describeRecord(u), err)
		}
		for _, key := range []struct{ field, value string }{
			{"_id", u.ID},
			{"username", u.Username},
			{"email", EmailKey(u.Email)},
		} {
			if key.value == "" {
				continue
			}
			k := key.field + "\x00" + key.value
			if first, dup := seen[k]; dup {
				return nil, fmt.Errorf("records %d and %d: same %s %q", first, i, key.field, key.value)
			}
			seen[k] = i
		}
		users = append(users, u)
	}
	return users, nil
}

// describeRecord names a record in an error by what is known of it so far.
func describeRecord(u User) string {
	var parts []string
	if u.ID != "" {
		parts = append(parts, fmt.Sprintf("_id %q", u.ID))
	}
	if u.Username != "" {
		parts = append(parts, fmt.Sprintf("username %q", u.Username))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// decodeUserRecord decodes one element of the export. On error it still returns what it
// read of the identifying fields, so the caller can name the record.
func decodeUserRecord(raw json.RawMessage) (User, error) {
	var u User
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return u, errors.New("want a JSON object")
	}

	// Identify the record first so that any later error can name it.
	username, usernameErr := optionalString(fields, "username")
	u.Username = username
	if v, ok := fields["_id"]; ok {
		id, err := decodeObjectID(v)
		if err != nil {
			return u, fmt.Errorf("_id: %w", err)
		}
		u.ID = id
	}
	if usernameErr != nil {
		return u, usernameErr
	}
	if u.Username == "" {
		return u, errors.New("username: required")
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"name", &u.Name}, {"email", &u.Email}, {"role", &u.Role}, {"password", &u.PasswordHash}} {
		s, err := optionalString(fields, f.name)
		if err != nil {
			return u, err
		}
		*f.dst = s
	}
	if u.PasswordHash == "" {
		return u, errors.New("password: required")
	}
	if err := CheckBcryptHash(u.PasswordHash); err != nil {
		return u, fmt.Errorf("password: %w", err)
	}

	for k, v := range fields {
		if documentFields[k] {
			continue
		}
		var value any
		if err := json.Unmarshal(v, &value); err != nil {
			return u, fmt.Errorf("%s: %w", k, err)
		}
		if u.Extra == nil {
			u.Extra = map[string]any{}
		}
		u.Extra[k] = value
	}
	if err := ValidateUser(u); err != nil {
		return u, err
	}
	return u, nil
}

// optionalString reads a string field; missing and null both give "".
func optionalString(fields map[string]json.RawMessage, name string) (string, error) {
	v, ok := fields[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%s: want a string", name)
	}
	return s, nil
}

// decodeObjectID accepts "65a1…" and {"$oid": "65a1…"} and returns the lower-cased hex.
func decodeObjectID(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		var oid struct {
			OID *string `json:"$oid"`
		}
		if err := json.Unmarshal(v, &oid); err != nil || oid.OID == nil {
			return "", errors.New(`want a string or {"$oid": "…"}`)
		}
		s = *oid.OID
	}
	s = strings.ToLower(s)
	if !IsUserID(s) {
		return "", fmt.Errorf("%q: want 24 hex characters", s)
	}
	return s, nil
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
