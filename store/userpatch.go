package store

import (
	"errors"
	"fmt"
	"maps"
)

// UserPatch is a change to a stored user, for Users.UpdateUser. A nil field is left as it
// is; a field pointing to "" clears it (Email, Name, Role, PasswordHash; a username cannot
// be cleared). SetExtra adds or replaces extra fields, UnsetExtra removes them; a key may
// not be in both. The user's ID and CreatedAt never change.
type UserPatch struct {
	Username     *string
	Name         *string
	Email        *string
	Role         *string
	PasswordHash *string // bcrypt, like User.PasswordHash
	SetExtra     map[string]any
	UnsetExtra   []string
}

// IsZero reports whether p changes nothing.
func (p UserPatch) IsZero() bool {
	return p.Username == nil && p.Name == nil && p.Email == nil && p.Role == nil &&
		p.PasswordHash == nil && len(p.SetExtra) == 0 && len(p.UnsetExtra) == 0
}

// Apply returns u with p applied, refused by the same rules as a new user (ValidateUser),
// so that no update can store what CreateUser would refuse. u itself is not modified.
// Backends call it inside their write, on the user as it is stored then.
func (p UserPatch) Apply(u User) (User, error) {
	for _, k := range p.UnsetExtra {
		if documentFields[k] {
			return User{}, fmt.Errorf("extra field %q: reserved for the user's own field", k)
		}
		if _, set := p.SetExtra[k]; set {
			return User{}, fmt.Errorf("extra field %q: both set and unset", k)
		}
	}
	for _, f := range []struct {
		src *string
		dst *string
	}{{p.Username, &u.Username}, {p.Name, &u.Name}, {p.Email, &u.Email}, {p.Role, &u.Role}, {p.PasswordHash, &u.PasswordHash}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if len(p.SetExtra) > 0 || len(p.UnsetExtra) > 0 {
		// A fresh map: the caller's user (and the store's cached document) keep theirs.
		extra := maps.Clone(u.Extra)
		if extra == nil {
			extra = map[string]any{}
		}
		maps.Copy(extra, p.SetExtra)
		for _, k := range p.UnsetExtra {
			delete(extra, k)
		}
		u.Extra = extra
		if len(extra) == 0 {
			u.Extra = nil
		}
	}
	if err := ValidateUser(u); err != nil {
		return User{}, err
	}
	return u, nil
}

// UniqueChanges lists the unique fields an update moves from old to updated: the username
// when it differs, the e-mail when its index key (EmailKey) differs. Backends free the old
// index entries and claim the new ones for exactly these.
func UniqueChanges(old, updated User) (username, email bool) {
	return old.Username != updated.Username, EmailKey(old.Email) != EmailKey(updated.Email)
}

// errEmptyID is UpdateUser's answer to an empty ID: a caller bug, not a missing user.
var errEmptyID = errors.New("empty user id")

// CheckUpdateID returns an error for an ID no update can name: empty is a caller's mistake;
// any other string that is not a user ID names no user (ErrNotFound), as for FindUser.
func CheckUpdateID(id string) error {
	switch {
	case id == "":
		return errEmptyID
	case !IsUserID(id):
		return fmt.Errorf("id %q: %w", id, ErrNotFound)
	}
	return nil
}
