package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callgate/callgate/store"
)

// updateUserScript replaces a user document if it is still the one the update was computed
// from (a compare-and-set: the patch is applied in Go, where the validation lives), moving
// the index entries and the list member of a changed username or e-mail after checking
// the new ones are free. All in one script, so no other writer sees a half-moved user.
//
// KEYS: document, old username index, new username index, old e-mail index, new e-mail
// index (each e-mail index is the document key again when there is no e-mail), user list.
// ARGV: the document as read, the new document, id, old list member, new list member,
// "1" when the username moves, "1" when the e-mail moves.
// It returns "ok", "missing", "changed" (retry), or the taken field.
var updateUserScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 'missing' end
if cur ~= ARGV[1] then return 'changed' end
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return 'username' end
if ARGV[7] == '1' and KEYS[5] ~= KEYS[1] and redis.call('EXISTS', KEYS[5]) == 1 then return 'email' end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[6] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('ZREM', KEYS[6], ARGV[4])
  redis.call('ZADD', KEYS[6], 0, ARGV[5])
end
if ARGV[7] == '1' then
  if KEYS[4] ~= KEYS[1] then redis.call('DEL', KEYS[4]) end
  if KEYS[5] ~= KEYS[1] then redis.call('SET', KEYS[5], ARGV[3]) end
end
return 'ok'
`)

// updateAttempts bounds the compare-and-set retries of one update. A retry happens only
// when another update of the same user landed between the read and the write; losing this
// many times in a row means the user is being rewritten continuously.
const updateAttempts = 16

// UpdateUser applies patch to the user with this ID, atomically with the checks of the
// username and e-mail it takes.
func (s *Store) UpdateUser(ctx context.Context, id string, patch store.UserPatch) (store.User, error) {
	if err := store.CheckUpdateID(id); err != nil {
		return store.User{}, fmt.Errorf("update user: %w", err)
	}
	for range updateAttempts {
		u, retry, err := s.tryUpdateUser(ctx, id, patch)
		if err != nil {
			return store.User{}, fmt.Errorf("update user %s: %w", id, err)
		}
		if !retry {
			return u, nil
		}
	}
	return store.User{}, fmt.Errorf("update user %s: changed by other writers %d times in a row", id, updateAttempts)
}

// tryUpdateUser is one read, apply and compare-and-set; retry reports that the document
// changed in between.
func (s *Store) tryUpdateUser(ctx context.Context, id string, patch store.UserPatch) (u store.User, retry bool, err error) {
	docKey := s.key("user", id)
	raw, err := s.rdb.Get(ctx, docKey).Result()
	if errors.Is(err, goredis.Nil) {
		return store.User{}, false, store.ErrNotFound
	}
	if err != nil {
		return store.User{}, false, wrap("read user", err)
	}
	old, err := decodeUser(raw)
	if err != nil {
		return store.User{}, false, err
	}
	updated, err := patch.Apply(old)
	if err != nil {
		return store.User{}, false, err
	}
	if patch.IsZero() {
		return updated, false, nil
	}
	doc, err := store.EncodeUser(updated)
	if err != nil {
		return store.User{}, false, fmt.Errorf("encode user %q: %w", updated.Username, err)
	}
	usernameMoved, emailMoved := store.UniqueChanges(old, updated)
	oldKeys, newKeys := s.userKeys(old), s.userKeys(updated)
	keys := []string{docKey, oldKeys[1], newKeys[1], oldKeys[2], newKeys[2], oldKeys[3]}
	res, err := updateUserScript.Run(ctx, s.rdb, keys, raw, string(doc), id, member(old), member(updated), flag(usernameMoved), flag(emailMoved)).Text()
	if err != nil {
		return store.User{}, false, wrap("write user", err)
	}
	switch res {
	case "ok":
		return updated, false, nil
	case "changed":
		return store.User{}, true, nil
	case "missing":
		return store.User{}, false, store.ErrNotFound
	case "username":
		return store.User{}, false, fmt.Errorf("username %q: %w", updated.Username, store.ErrDuplicate)
	case "email":
		return store.User{}, false, fmt.Errorf("email %q: %w", updated.Email, store.ErrDuplicate)
	}
	return store.User{}, false, fmt.Errorf("write user: unexpected script reply %q", res)
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
