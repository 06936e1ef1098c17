package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/callgate/callgate/store"
)

var (
	bucketSessions       = []byte("sessions")
	bucketSessionsByUser = []byte("sessions_by_user") // userID NUL sessionID → ""
	bucketAccounts       = []byte("accounts")         // provider NUL providerAccountID → account
	bucketVerification   = []byte("verification_tokens")
	bucketRevokedUsers   = []byte("revoked_users")  // userID → revocation
	bucketRevokedTokens  = []byte("revoked_tokens") // jti → revocation
	bucketCounters       = []byte("counters")
	bucketLocks          = []byte("locks")

	// sessionBuckets are created by Open next to the user buckets.
	sessionBuckets = [][]byte{bucketSessions, bucketSessionsByUser, bucketAccounts, bucketVerification,
		bucketRevokedUsers, bucketRevokedTokens, bucketCounters, bucketLocks}
)

type sessionDocument struct {
	UserID            string    `json:"userId"`
	Expires           time.Time `json:"expires"`
	CreatedAt         time.Time `json:"createdAt"`
	Provider          string    `json:"provider,omitempty"`
	ProviderSubject   string    `json:"providerSubject,omitempty"`
	ProviderSessionID string    `json:"providerSessionId,omitempty"`
	AMR               []string  `json:"amr,omitempty"`
	AuthTime          time.Time `json:"authTime,omitzero"`
}

func (d sessionDocument) session(id string) store.Session {
	return store.Session{ID: id, UserID: d.UserID, Expires: d.Expires, CreatedAt: d.CreatedAt,
		Provider: d.Provider, ProviderSubject: d.ProviderSubject, ProviderSessionID: d.ProviderSessionID,
		AMR: d.AMR, AuthTime: d.AuthTime}
}

// pairKey joins two strings with a NUL byte, which neither may contain, so that a prefix
// scan over "a NUL" finds exactly a's entries.
func pairKey(a, b string) []byte { return []byte(a + "\x00" + b) }

func checkSession(s store.Session) error {
	switch {
	case len(s.ID) != 64:
		return errors.New("session id must be a SHA-256 hex digest (store.SessionID)")
	case s.UserID == "" || bytes.IndexByte([]byte(s.UserID), 0) >= 0:
		return errors.New("session needs a user id")
	case s.Expires.IsZero():
		return errors.New("session needs an expiry")
	}
	return nil
}

// CreateSession stores s and its index entry in one transaction.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	if err := checkSession(sess); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = time.Now().UTC()
	}
	doc, err := json.Marshal(sessionDocument{UserID: sess.UserID, Expires: sess.Expires.UTC(), CreatedAt: sess.CreatedAt.UTC(),
		Provider: sess.Provider, ProviderSubject: sess.ProviderSubject, ProviderSessionID: sess.ProviderSessionID,
		AMR: sess.AMR, AuthTime: sess.AuthTime.UTC()})
	if err != nil {
		return fmt.Errorf("create session: encode: %w", err)
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b.Get([]byte(sess.ID)) != nil {
			return fmt.Errorf("session id: %w", store.ErrDuplicate)
		}
		if err := b.Put([]byte(sess.ID), doc); err != nil {
			return err
		}
		return tx.Bucket(bucketSessionsByUser).Put(pairKey(sess.UserID, sess.ID), nil)
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

func getSession(tx *bbolt.Tx, id string) (sessionDocument, error) {
	raw := tx.Bucket(bucketSessions).Get([]byte(id))
	if raw == nil {
		return sessionDocument{}, store.ErrNotFound
	}
	var doc sessionDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		return sessionDocument{}, fmt.Errorf("decode session: %w", err)
	}
	return doc, nil
}

// GetSessionAndUser reads the session and its user in one transaction.
func (s *Store) GetSessionAndUser(ctx context.Context, id string) (store.Session, store.User, error) {
	var (
		sess store.Session
		u    store.User
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		doc, err := getSession(tx, id)
		if err != nil {
			return err
		}
		sess = doc.session(id)
		u, err = findUser(tx, store.UserQuery{ID: doc.UserID})
		return err
	})
	if err != nil {
		return store.Session{}, store.User{}, fmt.Errorf("get session: %w", err)
	}
	return sess, u, nil
}

// ExtendSession rewrites the session's expiry.
func (s *Store) ExtendSession(ctx context.Context, id string, expires time.Time) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		doc, err := getSession(tx, id)
		if err != nil {
			return err
		}
		doc.Expires = expires.UTC()
		raw, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketSessions).Put([]byte(id), raw)
	})
	if err != nil {
		return fmt.Errorf("extend session: %w", err)
	}
	return nil
}

// DeleteSession removes the session and its index entry in one transaction.
func (s *Store) DeleteSession(ctx context.Context, id string) (store.Session, error) {
	var sess store.Session
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		doc, err := getSession(tx, id)
		if err != nil {
			return err
		}
		sess = doc.session(id)
		if err := tx.Bucket(bucketSessions).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bucketSessionsByUser).Delete(pairKey(doc.UserID, id))
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("delete session: %w", err)
	}
	return sess, nil
}

// userSessionIDs returns the IDs in the user's session index.
func userSessionIDs(tx *bbolt.Tx, userID string) []string {
	var ids []string
	prefix := pairKey(userID, "")
	c := tx.Bucket(bucketSessionsByUser).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// ListSessions returns the user's unexpired sessions, soonest expiry first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]store.Session, error) {
	var list []store.Session
	now := time.Now()
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		for _, id := range userSessionIDs(tx, userID) {
			doc, err := getSession(tx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if doc.Expires.After(now) {
				list = append(list, doc.session(id))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Expires.Before(list[j].Expires) })
	return list, nil
}

// DeleteUserSessions removes every session of the user in one transaction.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		n = 0
		for _, id := range userSessionIDs(tx, userID) {
			if tx.Bucket(bucketSessions).Get([]byte(id)) != nil {
				n++
				if err := tx.Bucket(bucketSessions).Delete([]byte(id)); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketSessionsByUser).Delete(pairKey(userID, id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete user sessions: %w", err)
	}
	return n, nil
}
