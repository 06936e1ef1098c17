package bolt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/callgate/callgate/store"
)

// --- accounts -------------------------------------------------------------------------------

type accountDocument struct {
	UserID string         `json:"userId"`
	Type   string         `json:"type"`
	Tokens map[string]any `json:"tokens,omitempty"`
}

// LinkAccount stores a; the provider account may be linked once.
func (s *Store) LinkAccount(ctx context.Context, a store.Account) error {
	if a.UserID == "" || a.Provider == "" || a.ProviderAccountID == "" {
		return errors.New("link account: user id, provider and provider account id are required")
	}
	raw, err := json.Marshal(accountDocument{UserID: a.UserID, Type: a.Type, Tokens: a.Tokens})
	if err != nil {
		return fmt.Errorf("link account: encode: %w", err)
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		key := pairKey(a.Provider, a.ProviderAccountID)
		if b.Get(key) != nil {
			return fmt.Errorf("account %s/%s: %w", a.Provider, a.ProviderAccountID, store.ErrDuplicate)
		}
		return b.Put(key, raw)
	})
	if err != nil {
		return fmt.Errorf("link account: %w", err)
	}
	return nil
}

// FindAccount returns the linked provider account.
func (s *Store) FindAccount(ctx context.Context, provider, providerAccountID string) (store.Account, error) {
	var a store.Account
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketAccounts).Get(pairKey(provider, providerAccountID))
		if raw == nil {
			return store.ErrNotFound
		}
		var doc accountDocument
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("decode account: %w", err)
		}
		a = store.Account{UserID: doc.UserID, Type: doc.Type, Provider: provider, ProviderAccountID: providerAccountID, Tokens: doc.Tokens}
		return nil
	})
	if err != nil {
		return store.Account{}, fmt.Errorf("find account: %w", err)
	}
	return a, nil
}

// UnlinkAccount removes the provider account.
func (s *Store) UnlinkAccount(ctx context.Context, provider, providerAccountID string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		key := pairKey(provider, providerAccountID)
		if b.Get(key) == nil {
			return store.ErrNotFound
		}
		return b.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("unlink account: %w", err)
	}
	return nil
}

// --- verification tokens --------------------------------------------------------------------

// CreateVerificationToken stores t.
func (s *Store) CreateVerificationToken(ctx context.Context, t store.VerificationToken) error {
	raw, err := json.Marshal(t.Expires.UTC())
	if err != nil {
		return fmt.Errorf("create verification token: %w", err)
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketVerification).Put(pairKey(t.Identifier, t.Token), raw)
	})
	if err != nil {
		return fmt.Errorf("create verification token: %w", err)
	}
	return nil
}

// UseVerificationToken deletes and returns the token in one transaction, so two requests
// racing with the same link cannot both use it.
func (s *Store) UseVerificationToken(ctx context.Context, identifier, token string) (store.VerificationToken, error) {
	t := store.VerificationToken{Identifier: identifier, Token: token}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketVerification)
		key := pairKey(identifier, token)
		raw := b.Get(key)
		if raw == nil {
			return store.ErrNotFound
		}
		if err := json.Unmarshal(raw, &t.Expires); err != nil {
			return fmt.Errorf("decode verification token: %w", err)
		}
		return b.Delete(key)
	})
	if err != nil {
		return store.VerificationToken{}, fmt.Errorf("use verification token: %w", err)
	}
	return t, nil
}

// --- revocations ----------------------------------------------------------------------------

type revocationDocument struct {
	Before  time.Time `json:"before,omitzero"`
	Expires time.Time `json:"expires"`
}

// Revoke stores r, keeping the latest Before and Expires of a user, then tells this
// process's subscribers.
func (s *Store) Revoke(ctx context.Context, r store.Revocation) error {
	if r.UserID == "" && r.TokenID == "" {
		return errors.New("revoke: a user id or a token id is required")
	}
	if r.Expires.IsZero() {
		return errors.New("revoke: an expiry is required")
	}
	now := time.Now()
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		for _, b := range []*bbolt.Bucket{tx.Bucket(bucketRevokedUsers), tx.Bucket(bucketRevokedTokens)} {
			if err := sweepRevocations(b, now); err != nil {
				return err
			}
		}
		if r.UserID != "" {
			b := tx.Bucket(bucketRevokedUsers)
			doc := revocationDocument{Before: r.Before.UTC(), Expires: r.Expires.UTC()}
			if old, ok, err := readRevocation(b, r.UserID); err != nil {
				return err
			} else if ok {
				if old.Before.After(doc.Before) {
					doc.Before = old.Before
				}
				if old.Expires.After(doc.Expires) {
					doc.Expires = old.Expires
				}
			}
			if err := putJSON(b, r.UserID, doc); err != nil {
				return err
			}
		}
		if r.TokenID != "" {
			return putJSON(tx.Bucket(bucketRevokedTokens), r.TokenID, revocationDocument{Expires: r.Expires.UTC()})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	s.revocationSubs.publish(r)
	return nil
}

// sweepRevocations forgets revocations whose tokens have all expired. Revocations are
// rare, so sweeping on every write keeps the buckets small without a background job.
func sweepRevocations(b *bbolt.Bucket, now time.Time) error {
	var stale [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var doc revocationDocument
		if json.Unmarshal(v, &doc) != nil || !doc.Expires.After(now) {
			stale = append(stale, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func readRevocation(b *bbolt.Bucket, key string) (revocationDocument, bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return revocationDocument{}, false, nil
	}
	var doc revocationDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		return revocationDocument{}, false, fmt.Errorf("decode revocation: %w", err)
	}
	if !doc.Expires.After(time.Now()) {
		return revocationDocument{}, false, nil
	}
	return doc, true, nil
}

func putJSON(b *bbolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// RevocationState reads the user's and the token's revocations in one transaction.
func (s *Store) RevocationState(ctx context.Context, userID, tokenID string) (store.RevocationState, error) {
	var st store.RevocationState
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if userID != "" {
			doc, ok, err := readRevocation(tx.Bucket(bucketRevokedUsers), userID)
			if err != nil {
				return err
			}
			if ok {
				st.UserBefore = doc.Before
			}
		}
		if tokenID != "" {
			_, ok, err := readRevocation(tx.Bucket(bucketRevokedTokens), tokenID)
			if err != nil {
				return err
			}
			st.TokenRevoked = ok
		}
		return nil
	})
	if err != nil {
		return store.RevocationState{}, fmt.Errorf("revocation state: %w", err)
	}
	return st, nil
}

// ListRevocations returns every unexpired revocation.
func (s *Store) ListRevocations(ctx context.Context) ([]store.Revocation, error) {
	var list []store.Revocation
	now := time.Now()
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		for _, b := range []struct {
			name []byte
			user bool
		}{{bucketRevokedUsers, true}, {bucketRevokedTokens, false}} {
			err := tx.Bucket(b.name).ForEach(func(k, v []byte) error {
				var doc revocationDocument
				if err := json.Unmarshal(v, &doc); err != nil {
					return fmt.Errorf("decode revocation: %w", err)
				}
				if !doc.Expires.After(now) {
					return nil
				}
				r := store.Revocation{Expires: doc.Expires}
				if b.user {
					r.UserID, r.Before = string(k), doc.Before
				} else {
					r.TokenID = string(k)
				}
				list = append(list, r)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list revocations: %w", err)
	}
	return list, nil
}

// SubscribeRevocations calls fn for every revocation made through this Store until ctx
// ends. It never needs a resync: nothing can be missed within one process.
func (s *Store) SubscribeRevocations(ctx context.Context, fn func(store.Revocation)) error {
	s.revocationSubs.add(ctx, fn)
	return nil
}

// subscribers is an in-process fan-out of revocations.
type subscribers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(store.Revocation)
}

func newSubscribers() *subscribers { return &subscribers{fns: map[int]func(store.Revocation){}} }

func (s *subscribers) add(ctx context.Context, fn func(store.Revocation)) {
	s.mu.Lock()
	id := s.next
	s.next++
	s.fns[id] = fn
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.fns, id)
		s.mu.Unlock()
	})
}

func (s *subscribers) publish(r store.Revocation) {
	s.mu.Lock()
	fns := make([]func(store.Revocation), 0, len(s.fns))
	for _, fn := range s.fns {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(r)
	}
}

// --- rate-limit counters --------------------------------------------------------------------

type counterDocument struct {
	Count   int64     `json:"count"`
	ResetAt time.Time `json:"resetAt"`
}

// Increment adds one to the counter in one transaction, starting a new window when the
// last one has ended.
func (s *Store) Increment(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	if window <= 0 {
		return 0, time.Time{}, errors.New("increment: the window must be positive")
	}
	var doc counterDocument
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		now := time.Now()
		doc = readCounter(b, key, now)
		if doc.Count == 0 {
			doc.ResetAt = now.Add(window).UTC()
		}
		doc.Count++
		return putJSON(b, key, doc)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("increment %q: %w", key, err)
	}
	return doc.Count, doc.ResetAt, nil
}

func readCounter(b *bbolt.Bucket, key string, now time.Time) counterDocument {
	var doc counterDocument
	raw := b.Get([]byte(key))
	if raw == nil || json.Unmarshal(raw, &doc) != nil || !doc.ResetAt.After(now) {
		return counterDocument{}
	}
	return doc
}

// Release takes back one increment of the window ending at resetAt, in one transaction.
func (s *Store) Release(ctx context.Context, key string, resetAt time.Time) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		doc := readCounter(b, key, time.Now())
		// An ended window reads as the zero document, so a late release never reaches
		// the window that followed it.
		if doc.Count <= 0 || !doc.ResetAt.Equal(resetAt) {
			return nil
		}
		if doc.Count--; doc.Count == 0 {
			return b.Delete([]byte(key))
		}
		return putJSON(b, key, doc)
	})
	if err != nil {
		return fmt.Errorf("release %q: %w", key, err)
	}
	return nil
}

// Count returns the counter's value in its current window.
func (s *Store) Count(ctx context.Context, key string) (int64, time.Time, error) {
	var doc counterDocument
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		doc = readCounter(tx.Bucket(bucketCounters), key, time.Now())
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count %q: %w", key, err)
	}
	return doc.Count, doc.ResetAt, nil
}

// ResetCount deletes the counter.
func (s *Store) ResetCount(ctx context.Context, key string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error { return tx.Bucket(bucketCounters).Delete([]byte(key)) })
	if err != nil {
		return fmt.Errorf("reset count %q: %w", key, err)
	}
	return nil
}

// --- locks ----------------------------------------------------------------------------------

type lockDocument struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// AcquireLock takes the lock unless an unexpired holder has it.
func (s *Store) AcquireLock(ctx context.Context, name string, ttl time.Duration) (string, bool, error) {
	if ttl <= 0 {
		return "", false, errors.New("acquire lock: the ttl must be positive")
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("acquire lock: %w", err)
	}
	token := hex.EncodeToString(b[:])
	ok := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketLocks)
		now := time.Now()
		if raw := bk.Get([]byte(name)); raw != nil {
			var held lockDocument
			if json.Unmarshal(raw, &held) == nil && held.Expires.After(now) {
				return nil
			}
		}
		ok = true
		return putJSON(bk, name, lockDocument{Token: token, Expires: now.Add(ttl)})
	})
	if err != nil {
		return "", false, fmt.Errorf("acquire lock %q: %w", name, err)
	}
	if !ok {
		return "", false, nil
	}
	return token, true, nil
}

// RenewLock moves the lock's expiry to ttl from now, only while token holds it.
func (s *Store) RenewLock(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("renew lock: the ttl must be positive")
	}
	renewed := false
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketLocks)
		raw := bk.Get([]byte(name))
		if raw == nil {
			return nil
		}
		var held lockDocument
		now := time.Now()
		if json.Unmarshal(raw, &held) != nil || held.Token != token || !held.Expires.After(now) {
			return nil
		}
		renewed = true
		return putJSON(bk, name, lockDocument{Token: token, Expires: now.Add(ttl)})
	})
	if err != nil {
		return false, fmt.Errorf("renew lock %q: %w", name, err)
	}
	return renewed, nil
}

// ReleaseLock deletes the lock if token holds it.
func (s *Store) ReleaseLock(ctx context.Context, name, token string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketLocks)
		raw := bk.Get([]byte(name))
		if raw == nil {
			return nil
		}
		var held lockDocument
		if json.Unmarshal(raw, &held) == nil && held.Token != token {
			return nil
		}
		return bk.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("release lock %q: %w", name, err)
	}
	return nil
}
