package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callgate/callgate/store"
)

// Users are stored as
//
//	{p}:user:<id>               the JSON document (store.EncodeUser)
//	{p}:user_by_username:<name> the id
//	{p}:user_by_email:<email>   the id (e-mail lower-cased)
//	{p}:users                   sorted set of "username NUL id", all scores 0, so that
//	                            ZRANGE lists users in byte-wise username order

// decodeUser reads a user document.
func decodeUser(raw string) (store.User, error) {
	u, err := store.DecodeUser([]byte(raw))
	if err != nil {
		return store.User{}, fmt.Errorf("decode user: %w", err)
	}
	return u, nil
}

// putUsersScript writes N users all or nothing. KEYS come in fours per user (document,
// username index, e-mail index or the document key again when there is no e-mail, the
// user list); ARGV in threes (document, id, list member). It returns 0 on success, or the
// 1-based record number and the taken field.
var putUsersScript = goredis.NewScript(`
for i = 1, #KEYS, 4 do
  local n = (i - 1) / 4 + 1
  if redis.call('EXISTS', KEYS[i]) == 1 then return {n, 'id'} end
  if redis.call('EXISTS', KEYS[i+1]) == 1 then return {n, 'username'} end
  if KEYS[i+2] ~= KEYS[i] and redis.call('EXISTS', KEYS[i+2]) == 1 then return {n, 'email'} end
end
for i = 1, #KEYS, 4 do
  local a = (i - 1) / 4 * 3
  redis.call('SET', KEYS[i], ARGV[a+1])
  redis.call('SET', KEYS[i+1], ARGV[a+2])
  if KEYS[i+2] ~= KEYS[i] then redis.call('SET', KEYS[i+2], ARGV[a+2]) end
  redis.call('ZADD', KEYS[i+3], 0, ARGV[a+3])
end
return 0
`)

// deleteUserScript removes a user, its indexes, its list entry and its factors if the
// document is still there. KEYS: document, username index, e-mail index (or the document),
// list, then the user's factor keys (factorKeys). ARGV: member, credential key prefix, id.
var deleteUserScript = goredis.NewScript(deleteFactorsLua + `
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
if KEYS[3] ~= KEYS[1] then redis.call('DEL', KEYS[3]) end
redis.call('ZREM', KEYS[4], ARGV[1])
deleteFactors(KEYS[5], KEYS[6], KEYS[7], ARGV[2], ARGV[3])
return 1
`)

func member(u store.User) string { return u.Username + "\x00" + u.ID }

func (s *Store) userKeys(u store.User) []string {
	doc := s.key("user", u.ID)
	email := doc
	if u.Email != "" {
		email = s.key("user_by_email", store.EmailKey(u.Email))
	}
	return []string{doc, s.key("user_by_username", u.Username), email, s.key("users")}
}

func (s *Store) putUsers(ctx context.Context, users []store.User) error {
	keys := make([]string, 0, 4*len(users))
	args := make([]any, 0, 3*len(users))
	for _, u := range users {
		doc, err := store.EncodeUser(u)
		if err != nil {
			return fmt.Errorf("encode user %q: %w", u.Username, err)
		}
		keys = append(keys, s.userKeys(u)...)
		args = append(args, string(doc), u.ID, member(u))
	}
	res, err := putUsersScript.Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return wrap("write users", err)
	}
	if taken, ok := res.([]any); ok && len(taken) == 2 {
		n, _ := taken[0].(int64)
		field, _ := taken[1].(string)
		u := users[n-1]
		value := map[string]string{"id": u.ID, "username": u.Username, "email": u.Email}[field]
		return &dupError{index: int(n - 1), err: fmt.Errorf("%s %q: %w", field, value, store.ErrDuplicate)}
	}
	return nil
}

// dupError carries the batch index of a duplicate so ImportUsers can name the record.
type dupError struct {
	index int
	err   error
}

func (e *dupError) Error() string { return e.err.Error() }
func (e *dupError) Unwrap() error { return e.err }

// CreateUser stores u, generating its ID when empty and its CreatedAt when zero.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	u, err := store.PrepareNewUser(u)
	if err != nil {
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	if err := s.putUsers(ctx, []store.User{u}); err != nil {
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// ImportUsers stores all users in one script run, or none of them.
func (s *Store) ImportUsers(ctx context.Context, users []store.User) error {
	if len(users) == 0 {
		return nil
	}
	prepared := make([]store.User, len(users))
	seen := map[string]int{}
	for i, u := range users {
		p, err := store.PrepareNewUser(u)
		if err != nil {
			return fmt.Errorf("import users: record %d (username %q): %w", i, u.Username, err)
		}
		// A duplicate within the batch is caught here; the script checks against the store.
		for _, k := range []string{"id\x00" + p.ID, "username\x00" + p.Username, "email\x00" + store.EmailKey(p.Email)} {
			if k == "email\x00" {
				continue
			}
			if _, dup := seen[k]; dup {
				field, value, _ := strings.Cut(k, "\x00")
				return fmt.Errorf("import users: record %d (username %q): %s %q: %w", i, p.Username, field, value, store.ErrDuplicate)
			}
			seen[k] = i
		}
		prepared[i] = p
	}
	err := s.putUsers(ctx, prepared)
	var dup *dupError
	if errors.As(err, &dup) {
		return fmt.Errorf("import users: record %d (username %q): %w", dup.index, prepared[dup.index].Username, dup.err)
	}
	if err != nil {
		return fmt.Errorf("import users: %w", err)
	}
	return nil
}

// FindUser returns the user matching every non-empty field of q.
func (s *Store) FindUser(ctx context.Context, q store.UserQuery) (store.User, error) {
	u, err := s.findUser(ctx, q)
	if err != nil {
		return store.User{}, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

func (s *Store) findUser(ctx context.Context, q store.UserQuery) (store.User, error) {
	id := q.ID
	if id == "" {
		var idx string
		switch {
		case q.Username != "":
			idx = s.key("user_by_username", q.Username)
		case q.Email != "":
			idx = s.key("user_by_email", store.EmailKey(q.Email))
		default:
			return store.User{}, errors.New("empty query: set an id, username or email")
		}
		var err error
		if id, err = s.rdb.Get(ctx, idx).Result(); err != nil {
			return store.User{}, wrap("read index", err)
		}
	}
	raw, err := s.rdb.Get(ctx, s.key("user", id)).Result()
	if errors.Is(err, goredis.Nil) && q.ID == "" {
		return store.User{}, fmt.Errorf("index points to missing user %q", id)
	}
	if err != nil {
		return store.User{}, wrap("read user", err)
	}
	u, err := decodeUser(raw)
	if err != nil {
		return store.User{}, err
	}
	if (q.Username != "" && u.Username != q.Username) || (q.Email != "" && store.EmailKey(u.Email) != store.EmailKey(q.Email)) {
		return store.User{}, store.ErrNotFound
	}
	return u, nil
}

// ListUsers returns every user in byte-wise username order.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	members, err := s.rdb.ZRange(ctx, s.key("users"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", wrap("read list", err))
	}
	if len(members) == 0 {
		return nil, nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		_, id, _ := strings.Cut(m, "\x00")
		keys[i] = s.key("user", id)
	}
	docs, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", wrap("read users", err))
	}
	list := make([]store.User, 0, len(docs))
	for i, d := range docs {
		raw, ok := d.(string)
		if !ok {
			return nil, fmt.Errorf("list users: list entry %q points to a missing user", members[i])
		}
		u, err := decodeUser(raw)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		list = append(list, u)
	}
	return list, nil
}

// DeleteUser removes the user matching q, its indexes, its list entry and its factors
// (passkeys, TOTP, recovery codes) atomically.
func (s *Store) DeleteUser(ctx context.Context, q store.UserQuery) error {
	u, err := s.findUser(ctx, q)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	keys := append(s.userKeys(u), s.factorKeys(u.ID)...)
	n, err := deleteUserScript.Run(ctx, s.rdb, keys, member(u), s.key("passkey", ""), u.ID).Int()
	if err != nil {
		return fmt.Errorf("delete user: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("delete user: %w", store.ErrNotFound)
	}
	return nil
}

// CountUsers returns the number of stored users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	n, err := s.rdb.ZCard(ctx, s.key("users")).Result()
	if err != nil {
		return 0, fmt.Errorf("count users: %w", wrap("read list", err))
	}
	return int(n), nil
}
