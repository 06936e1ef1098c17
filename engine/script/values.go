package script

import "encoding/json"

// IDString is JavaScript's String(user.id) for the id types an exported user object can
// carry: strings as they are, numbers and booleans as JSON writes them, anything else as
// JSON. ok is false for a missing id. The engine and the OAuth client both name users by it.
func IDString(v any) (id string, ok bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	}
	b, _ := json.Marshal(v)
	return string(b), true
}
