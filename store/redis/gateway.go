package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callgate/callgate/store"
)

// --- accounts -------------------------------------------------------------------------------

type accountDocument struct {
	UserID string         `json:"userId"`
	Type   string         `json:"type"`
	Tokens map[string]any `json:"tokens,omitempty"`
}

func (s *Store) accountKey(provider, providerAccountID string) string {
	return s.key("account", provider+"\x00"+providerAccountID)
}

// LinkAccount stores a unless the provider account is already linked.
func (s *Store) LinkAccount(ctx context.Context, a store.Account) error {
	if a.UserID == "" || a.Provider == "" || a.ProviderAccountID == "" {
		return errors.New("link account: user id, provider and provider account id are required")
	}
	raw, err := json.Marshal(accountDocument{UserID: a.UserID, Type: a.Type, Tokens: a.Tokens})
	if err != nil {
		return fmt.Errorf("link account: encode: %w", err)
	}
	ok, err := s.rdb.SetNX(ctx, s.accountKey(a.Provider, a.ProviderAccountID), raw, 0).Result()
	if err != nil {
		return fmt.Errorf("link account: %w", wrap("write", err))
	}
	if !ok {
		return fmt.Errorf("link account: account %s/%s: %w", a.Provider, a.ProviderAccountID, store.ErrDuplicate)
	}
	return nil
}

// FindAccount returns the linked provider account.
func (s *Store) FindAccount(ctx context.Context, provider, providerAccountID string) (store.Account, error) {
	raw, err := s.rdb.Get(ctx, s.accountKey(provider, providerAccountID)).Bytes()
	if err != nil {
		return store.Account{}, fmt.Errorf("find account: %w", wrap("read", err))
	}
	var doc accountDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		return store.Account{}, fmt.Errorf("find account: decode: %w", err)
	}
	return store.Account{UserID: doc.UserID, Type: doc.Type, Provider: provider, ProviderAccountID: providerAccountID, Tokens: doc.Tokens}, nil
}

// UnlinkAccount removes the provider account.
func (s *Store) UnlinkAccount(ctx context.Context, provider, providerAccountID string) error {
	n, err := s.rdb.Del(ctx, s.accountKey(provider, providerAccountID)).Result()
	if err != nil {
		return fmt.Errorf("unlink account: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("unlink account: %w", store.ErrNotFound)
	}
	return nil
}

// --- verification tokens --------------------------------------------------------------------

// verificationGrace keeps an expired verification token long enough for the caller to tell
// "expired" from "unknown", then lets Redis drop it.
const verificationGrace = 24 * time.Hour

func (s *Store) verificationKey(identifier, token string) string {
	return s.key("verification", identifier+"\x00"+token)
}

// CreateVerificationToken stores t.
func (s *Store) CreateVerificationToken(ctx context.Context, t store.VerificationToken) error {
	err := s.rdb.Set(ctx, s.verificationKey(t.Identifier, t.Token), ms(t.Expires), time.Until(t.Expires.Add(verificationGrace))).Err()
	if err != nil {
		return fmt.Errorf("create verification token: %w", wrap("write", err))
	}
	return nil
}

// UseVerificationToken deletes and returns the token with GETDEL, so it is used once.
func (s *Store) UseVerificationToken(ctx context.Context, identifier, token string) (store.VerificationToken, error) {
	v, err := s.rdb.GetDel(ctx, s.verificationKey(identifier, token)).Int64()
	if err != nil {
		return store.VerificationToken{}, fmt.Errorf("use verification token: %w", wrap("write", err))
	}
	return store.VerificationToken{Identifier: identifier, Token: token, Expires: time.UnixMilli(v).UTC()}, nil
}

// --- revocations ----------------------------------------------------------------------------

// revokeUserScript keeps the latest cut-off and expiry of a user, indexes it and announces
// the revocation in the same step. KEYS user revocation, index; ARGV before ms, expires ms, channel,
// message.
var revokeUserScript = goredis.NewScript(`
local before, expires = tonumber(ARGV[1]), tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
if raw then
  local old = cjson.decode(raw)
  if old.b > before then before = old.b end
  if old.e > expires then expires = old.e end
end
redis.call('SET', KEYS[1], cjson.encode({b = before, e = expires}), 'PXAT', expires)
redis.call('ZADD', KEYS[2], expires, KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

// revokeTokenScript: KEYS token revocation, index; ARGV expires ms, channel, message.
var revokeTokenScript = goredis.NewScript(`
redis.call('SET', KEYS[1], '1', 'PXAT', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

type revocationMessage struct {
	UserID  string `json:"u,omitempty"`
	Before  int64  `json:"b,omitempty"`
	TokenID string `json:"t,omitempty"`
	Expires int64  `json:"e"`
}

func (s *Store) channel() string { return s.key("revocations") }

// Revoke stores r and publishes it on the prefix's channel.
func (s *Store) Revoke(ctx context.Context, r store.Revocation) error {
	if r.UserID == "" && r.TokenID == "" {
		return errors.New("revoke: a user id or a token id is required")
	}
	if !r.Expires.After(time.Now()) {
		return errors.New("revoke: the expiry must be in the future")
	}
	msg := revocationMessage{UserID: r.UserID, TokenID: r.TokenID, Expires: r.Expires.UnixMilli()}
	if r.UserID != "" {
		msg.Before = r.Before.UnixMilli()
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	if r.UserID != "" {
		err := revokeUserScript.Run(ctx, s.rdb, []string{s.key("revoked_user", r.UserID), s.key("revocations_index")},
			ms(r.Before), ms(r.Expires), s.channel(), string(raw)).Err()
		if err != nil {
			return fmt.Errorf("revoke user: %w", wrap("write", err))
		}
	}
	if r.TokenID != "" {
		err := revokeTokenScript.Run(ctx, s.rdb, []string{s.key("revoked_token", r.TokenID), s.key("revocations_index")},
			ms(r.Expires), s.channel(), string(raw)).Err()
		if err != nil {
			return fmt.Errorf("revoke token: %w", wrap("write", err))
		}
	}
	return nil
}

// RevocationState reads the user's and the token's revocations with one MGET.
func (s *Store) RevocationState(ctx context.Context, userID, tokenID string) (store.RevocationState, error) {
	// An empty id reads a key nobody writes, which keeps this one round trip.
	vals, err := s.rdb.MGet(ctx, s.key("revoked_user", userID), s.key("revoked_token", tokenID)).Result()
	if err != nil {
		return store.RevocationState{}, fmt.Errorf("revocation state: %w", wrap("read", err))
	}
	var st store.RevocationState
	if raw, ok := vals[0].(string); ok && userID != "" {
		var doc struct {
			B int64 `json:"b"`
		}
		if err := json.Unmarshal([]byte(raw), &doc); err != nil {
			return store.RevocationState{}, fmt.Errorf("revocation state: decode: %w", err)
		}
		st.UserBefore = time.UnixMilli(doc.B).UTC()
	}
	st.TokenRevoked = vals[1] != nil && tokenID != ""
	return st, nil
}

// ListRevocations reads the revocation index (a sorted set of keys scored by expiry) and
// the revocations it names, dropping expired index entries first.
func (s *Store) ListRevocations(ctx context.Context) ([]store.Revocation, error) {
	idx := s.key("revocations_index")
	now := ms(time.Now())
	var keys *goredis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, idx, "-inf", now)
		keys = p.ZRange(ctx, idx, 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list revocations: %w", wrap("read index", err))
	}
	if len(keys.Val()) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.MGet(ctx, keys.Val()...).Result()
	if err != nil {
		return nil, fmt.Errorf("list revocations: %w", wrap("read", err))
	}
	userPrefix, tokenPrefix := s.key("revoked_user", ""), s.key("revoked_token", "")
	var list []store.Revocation
	for i, k := range keys.Val() {
		raw, ok := vals[i].(string)
		if !ok {
			continue // expired since the index was read
		}
		switch {
		case strings.HasPrefix(k, userPrefix):
			var doc struct{ B, E int64 }
			if err := json.Unmarshal([]byte(raw), &doc); err != nil {
				return nil, fmt.Errorf("list revocations: decode: %w", err)
			}
			list = append(list, store.Revocation{UserID: strings.TrimPrefix(k, userPrefix), Before: time.UnixMilli(doc.B).UTC(), Expires: time.UnixMilli(doc.E).UTC()})
		case strings.HasPrefix(k, tokenPrefix):
			ttl, err := s.rdb.PExpireTime(ctx, k).Result()
			if err != nil {
				return nil, fmt.Errorf("list revocations: %w", wrap("read expiry", err))
			}
			list = append(list, store.Revocation{TokenID: strings.TrimPrefix(k, tokenPrefix), Expires: time.UnixMilli(ttl.Milliseconds()).UTC()})
		}
	}
	return list, nil
}

// SubscribeRevocations listens on the prefix's channel until ctx ends. It returns once the
// subscription is confirmed, or after a second if Redis does not answer (the listener keeps
// retrying in the background and calls fn with the zero Revocation when it is back).
func (s *Store) SubscribeRevocations(ctx context.Context, fn func(store.Revocation)) error {
	ps := s.rdb.Subscribe(ctx, s.channel())
	ready := make(chan struct{})
	go s.listen(ctx, ps, fn, ready)
	select {
	case <-ready:
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	return nil
}

func (s *Store) listen(ctx context.Context, ps *goredis.PubSub, fn func(store.Revocation), ready chan struct{}) {
	defer ps.Close()
	confirmed := false
	backoff := 50 * time.Millisecond
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// go-redis reconnects and resubscribes on the next Receive. Anything published
			// meanwhile is lost, so subscribers drop what they cached.
			fn(store.Revocation{})
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *goredis.Subscription:
			if !confirmed {
				confirmed = true
				close(ready)
			} else {
				fn(store.Revocation{})
			}
		case *goredis.Message:
			var rm revocationMessage
			if err := json.Unmarshal([]byte(m.Payload), &rm); err != nil {
				slog.Default().WarnContext(ctx, "ignoring a malformed revocation message", "channel", m.Channel, "error", err.Error())
				continue
			}
			r := store.Revocation{UserID: rm.UserID, TokenID: rm.TokenID, Expires: time.UnixMilli(rm.Expires).UTC()}
			if rm.UserID != "" {
				r.Before = time.UnixMilli(rm.Before).UTC()
			}
			fn(r)
		}
	}
}

// --- rate-limit counters --------------------------------------------------------------------

// A counter is one hash, {p}:ratelimit:<key> = {n: count, w: end of its window}, w in Unix
// milliseconds on the Redis server's clock, which every replica shares. The key expires at
// w, set in the same script that starts the window, so a counter never outlives it. w also
// names the window, so that Release can tell a slot of this window from one of the last.
// (The older layout, a plain INCR counter under {p}:counter:<key>, could not; it is no
// longer read, and its keys expire by themselves.)

// incrementScript starts a window unless one is running, then counts. KEYS: the counter.
// ARGV: the window in ms. It returns the new count and w.
var incrementScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = tonumber(redis.call('HGET', KEYS[1], 'w'))
if not w or w <= now then
  w = now + tonumber(ARGV[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'w', string.format('%.0f', w))
  redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', w))
end
return {redis.call('HINCRBY', KEYS[1], 'n', 1), w}
`)

// releaseScript takes one back if the running window is the one named. KEYS: the counter.
// ARGV: w of the window the slot was taken in.
var releaseScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'w') ~= ARGV[1] then return 0 end
if redis.call('HINCRBY', KEYS[1], 'n', -1) <= 0 then redis.call('DEL', KEYS[1]) end
return 1
`)

func (s *Store) counterKey(key string) string { return s.key("ratelimit", key) }

// Increment adds one to the counter atomically, starting its window in the same script.
func (s *Store) Increment(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	if window <= 0 {
		return 0, time.Time{}, errors.New("increment: the window must be positive")
	}
	res, err := incrementScript.Run(ctx, s.rdb, []string{s.counterKey(key)}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("increment %q: %w", key, wrap("write", err))
	}
	if len(res) != 2 {
		return 0, time.Time{}, fmt.Errorf("increment %q: unexpected reply %v", key, res)
	}
	return res[0], time.UnixMilli(res[1]).UTC(), nil
}

// Release takes back one increment of the window ending at resetAt, atomically.
func (s *Store) Release(ctx context.Context, key string, resetAt time.Time) error {
	w := strconv.FormatInt(resetAt.UnixMilli(), 10)
	if err := releaseScript.Run(ctx, s.rdb, []string{s.counterKey(key)}, w).Err(); err != nil {
		return fmt.Errorf("release %q: %w", key, wrap("write", err))
	}
	return nil
}

// Count returns the counter and when its window ends, in one read.
func (s *Store) Count(ctx context.Context, key string) (int64, time.Time, error) {
	vals, err := s.rdb.HMGet(ctx, s.counterKey(key), "n", "w").Result()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count %q: %w", key, wrap("read", err))
	}
	ns, _ := vals[0].(string)
	ws, _ := vals[1].(string)
	if ns == "" || ws == "" {
		return 0, time.Time{}, nil // no counter, or one that expired
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count %q: count %q: %w", key, ns, err)
	}
	w, err := strconv.ParseInt(ws, 10, 64)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count %q: window %q: %w", key, ws, err)
	}
	return n, time.UnixMilli(w).UTC(), nil
}

// ResetCount deletes the counter.
func (s *Store) ResetCount(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.counterKey(key)).Err(); err != nil {
		return fmt.Errorf("reset count %q: %w", key, wrap("write", err))
	}
	return nil
}

// --- locks ----------------------------------------------------------------------------------

var releaseLockScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

var renewLockScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// RenewLock moves the lock's expiry to ttl from now, only while token holds it.
func (s *Store) RenewLock(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("renew lock: the ttl must be positive")
	}
	n, err := renewLockScript.Run(ctx, s.rdb, []string{s.key("lock", name)}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("renew lock %q: %w", name, wrap("write", err))
	}
	return n == 1, nil
}

// AcquireLock takes the lock with SET NX PX.
func (s *Store) AcquireLock(ctx context.Context, name string, ttl time.Duration) (string, bool, error) {
	if ttl <= 0 {
		return "", false, errors.New("acquire lock: the ttl must be positive")
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("acquire lock: %w", err)
	}
	token := hex.EncodeToString(b[:])
	ok, err := s.rdb.SetNX(ctx, s.key("lock", name), token, ttl).Result()
	if err != nil {
		return "", false, fmt.Errorf("acquire lock %q: %w", name, wrap("write", err))
	}
	if !ok {
		return "", false, nil
	}
	return token, true, nil
}

// ReleaseLock deletes the lock only if token still holds it.
func (s *Store) ReleaseLock(ctx context.Context, name, token string) error {
	if err := releaseLockScript.Run(ctx, s.rdb, []string{s.key("lock", name)}, token).Err(); err != nil {
		return fmt.Errorf("release lock %q: %w", name, wrap("write", err))
	}
	return nil
}
