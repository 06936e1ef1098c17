package store

import (
	"encoding/json"
	"time"
)

// userDocument is how both backends store a user: the MongoDB-style fields scripts see,
// plus the creation time and the imported extra fields kept apart so they can never shadow
// them. One shape for both, so a user exported from one store reads back in the other.
type userDocument struct {
	ID           string         `json:"_id"`
	Username     string         `json:"username"`
	Name         string         `json:"name,omitempty"`
	Email        string         `json:"email,omitempty"`
	Role         string         `json:"role,omitempty"`
	PasswordHash string         `json:"password,omitempty"`
	CreatedAt    time.Time      `json:"createdAt"`
	Extra        map[string]any `json:"extra,omitempty"`
}

// EncodeUser is the stored form of u.
func EncodeUser(u User) ([]byte, error) {
	return json.Marshal(userDocument{ID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email,
		Role: u.Role, PasswordHash: u.PasswordHash, CreatedAt: u.CreatedAt, Extra: u.Extra})
}

// DecodeUser reads a user stored by EncodeUser.
func DecodeUser(raw []byte) (User, error) {
	var d userDocument
	if err := json.Unmarshal(raw, &d); err != nil {
		return User{}, err
	}
	return User{ID: d.ID, Username: d.Username, Name: d.Name, Email: d.Email, Role: d.Role,
		PasswordHash: d.PasswordHash, Extra: d.Extra, CreatedAt: d.CreatedAt}, nil
}

// AdapterUser is the user as callbacks and events see it: NextAuth's AdapterUser ({id,
// name, email}) plus callgate's username, role and extra fields, never the password hash.
// A fresh map for every call.
func (u User) AdapterUser() map[string]any {
	m := make(map[string]any, len(u.Extra)+5)
	for k, v := range u.Extra {
		m[k] = v
	}
	m["id"] = u.ID
	m["username"] = u.Username
	m["name"] = u.Name
	m["email"] = u.Email
	if u.Email == "" {
		m["email"] = nil
	}
	if u.Role != "" {
		m["role"] = u.Role
	}
	return m
}
