package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callgate/callgate/store"
)

// Sessions are stored as
//
//	{p}:session:<sha256 hex>   {"u": user id, "e": expiry ms, "c": created ms, and "p", "ps",
//	                           "pi" (provider, its sub and sid) when set}, expiring at "e"
//	{p}:user_sessions:<userId> sorted set of session ids scored by expiry ms
//
// Times are Unix milliseconds so the Lua scripts can compare and rewrite them (cjson keeps
// the other fields as they are).
type sessionDocument struct {
	UserID            string   `json:"u"`
	Expires           int64    `json:"e"`
	CreatedAt         int64    `json:"c"`
	Provider          string   `json:"p,omitempty"`
	ProviderSubject   string   `json:"ps,omitempty"`
	ProviderSessionID string   `json:"pi,omitempty"`
	AMR               []string `json:"amr,omitempty"`
	AuthTime          int64    `json:"at,omitempty"` // Unix milliseconds; 0 when not recorded
}

func (d sessionDocument) session(id string) store.Session {
	return store.Session{ID: id, UserID: d.UserID, Expires: time.UnixMilli(d.Expires).UTC(), CreatedAt: time.UnixMilli(d.CreatedAt).UTC(),
		Provider: d.Provider, ProviderSubject: d.ProviderSubject, ProviderSessionID: d.ProviderSessionID,
		AMR: d.AMR, AuthTime: authTime(d.AuthTime)}
}

// authTime is a stored auth time: zero when none was recorded.
func authTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// createSessionScript: KEYS session, user index; ARGV document, expiry ms, id, now ms.
var createSessionScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1
`)

// getSessionAndUserScript reads a session and its user in one round trip. The user key is
// built here from ARGV[1], the key prefix; it hashes to the same slot as KEYS[1].
var getSessionAndUserScript = goredis.NewScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local doc = cjson.decode(raw)
local user = redis.call('GET', ARGV[1] .. 'user:' .. doc.u)
if not user then return false end
return {raw, user}
`)

// extendSessionScript: KEYS session; ARGV expiry ms, user index prefix.
var extendSessionScript = goredis.NewScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local doc = cjson.decode(raw)
doc.e = tonumber(ARGV[1])
redis.call('SET', KEYS[1], cjson.encode(doc), 'PXAT', ARGV[1])
local idx = ARGV[2] .. doc.u
redis.call('ZADD', idx, ARGV[1], ARGV[3])
local last = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', idx, last[2])
return 1
`)

// deleteSessionScript: KEYS session; ARGV user index prefix, id. Returns the document.
var deleteSessionScript = goredis.NewScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local doc = cjson.decode(raw)
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. doc.u, ARGV[2])
return raw
`)

// deleteUserSessionsScript: KEYS user index; ARGV session key prefix.
var deleteUserSessionsScript = goredis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local n = 0
for _, id in ipairs(ids) do
  n = n + redis.call('DEL', ARGV[1] .. id)
end
redis.call('DEL', KEYS[1])
return n
`)

func decodeSession(raw string) (sessionDocument, error) {
	var d sessionDocument
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return d, fmt.Errorf("decode session: %w", err)
	}
	return d, nil
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// CreateSession stores the session and its index entry atomically.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	switch {
	case len(sess.ID) != 64:
		return errors.New("create session: session id must be a SHA-256 hex digest (store.SessionID)")
	case sess.UserID == "":
		return errors.New("create session: session needs a user id")
	case sess.Expires.IsZero():
		return errors.New("create session: session needs an expiry")
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = time.Now()
	}
	d := sessionDocument{UserID: sess.UserID, Expires: sess.Expires.UnixMilli(), CreatedAt: sess.CreatedAt.UnixMilli(),
		Provider: sess.Provider, ProviderSubject: sess.ProviderSubject, ProviderSessionID: sess.ProviderSessionID,
		AMR: sess.AMR}
	if !sess.AuthTime.IsZero() {
		d.AuthTime = sess.AuthTime.UnixMilli()
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	n, err := createSessionScript.Run(ctx, s.rdb, []string{s.key("session", sess.ID), s.key("user_sessions", sess.UserID)},
		string(doc), ms(sess.Expires), sess.ID, ms(time.Now())).Int()
	if err != nil {
		return fmt.Errorf("create session: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("create session: session id: %w", store.ErrDuplicate)
	}
	return nil
}

// GetSessionAndUser reads the session and its user in one round trip.
func (s *Store) GetSessionAndUser(ctx context.Context, id string) (store.Session, store.User, error) {
	res, err := getSessionAndUserScript.Run(ctx, s.rdb, []string{s.key("session", id)}, s.prefix).Slice()
	if err != nil {
		return store.Session{}, store.User{}, fmt.Errorf("get session: %w", wrap("read", err))
	}
	if len(res) != 2 {
		return store.Session{}, store.User{}, fmt.Errorf("get session: unexpected reply of %d values", len(res))
	}
	rawSession, _ := res[0].(string)
	rawUser, _ := res[1].(string)
	doc, err := decodeSession(rawSession)
	if err != nil {
		return store.Session{}, store.User{}, fmt.Errorf("get session: %w", err)
	}
	u, err := decodeUser(rawUser)
	if err != nil {
		return store.Session{}, store.User{}, fmt.Errorf("get session: %w", err)
	}
	return doc.session(id), u, nil
}

// ExtendSession rewrites the expiry of the session and of its index entry atomically.
func (s *Store) ExtendSession(ctx context.Context, id string, expires time.Time) error {
	n, err := extendSessionScript.Run(ctx, s.rdb, []string{s.key("session", id)}, ms(expires), s.key("user_sessions", ""), id).Int()
	if err != nil {
		return fmt.Errorf("extend session: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("extend session: %w", store.ErrNotFound)
	}
	return nil
}

// DeleteSession removes the session and its index entry atomically and returns it.
func (s *Store) DeleteSession(ctx context.Context, id string) (store.Session, error) {
	raw, err := deleteSessionScript.Run(ctx, s.rdb, []string{s.key("session", id)}, s.key("user_sessions", ""), id).Text()
	if err != nil {
		return store.Session{}, fmt.Errorf("delete session: %w", wrap("write", err))
	}
	doc, err := decodeSession(raw)
	if err != nil {
		return store.Session{}, fmt.Errorf("delete session: %w", err)
	}
	return doc.session(id), nil
}

// ListSessions returns the user's unexpired sessions, soonest expiry first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]store.Session, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.key("user_sessions", userID), &goredis.ZRangeBy{Min: "(" + ms(time.Now()), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", wrap("read index", err))
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.key("session", id)
	}
	docs, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", wrap("read sessions", err))
	}
	var list []store.Session
	for i, d := range docs {
		raw, ok := d.(string)
		if !ok {
			continue // expired between the two reads
		}
		doc, err := decodeSession(raw)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		list = append(list, doc.session(ids[i]))
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Expires.Before(list[j].Expires) })
	return list, nil
}

// DeleteUserSessions removes every session of the user and the index atomically.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	n, err := deleteUserSessionsScript.Run(ctx, s.rdb, []string{s.key("user_sessions", userID)}, s.key("session", "")).Int()
	if err != nil {
		return 0, fmt.Errorf("delete user sessions: %w", wrap("write", err))
	}
	return n, nil
}
