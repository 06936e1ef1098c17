// Package bolt is callgate's embedded store: one bbolt file, no server, for a gateway that
// runs as a single replica.
//
// Users are JSON documents keyed by ID, with unique index buckets for the username (exact)
// and the lower-cased e-mail; a user's passkeys are indexed by credential ID and by user.
// Every write that touches more than one key, and every check-and-write of a factor (a
// signature counter, a TOTP step, a recovery code), happens in one bbolt transaction, so a
// crash or a refused duplicate never leaves a user half-written or an index pointing
// nowhere, and a code or counter is accepted once. The file is locked by the process that
// opens it; a second process gets ErrLocked after a bounded wait instead of hanging.
//
// This package must never report a backend failure as store.ErrNotFound: a caller has to
// be able to tell "no such user" from "the store is broken".
package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/callgate/callgate/store"
)

// ErrLocked reports that another process holds the database file open.
var ErrLocked = errors.New("database is locked by another process")

// defaultOpenTimeout is how long Open waits for another process to release the file lock.
// Long enough to ride out a restart where the old process is still closing, short enough
// that a mistaken second instance fails visibly.
const defaultOpenTimeout = 2 * time.Second

var (
	bucketUsers           = []byte("users")
	bucketUsersByUsername = []byte("users_by_username")
	bucketUsersByEmail    = []byte("users_by_email")
)

// Store is a store.Store backed by one bbolt file. It is safe for concurrent use.
type Store struct {
	db   *bbolt.DB
	path string
	// revocationSubs fans revocations out within this process: the file is locked by one
	// process, so there is nobody else to tell.
	revocationSubs *subscribers
}

var _ store.Store = (*Store)(nil)

// Option changes how Open opens the file.
type Option func(*options)

type options struct {
	openTimeout time.Duration
}

// WithOpenTimeout sets how long Open waits for the file lock held by another process
// before giving up with ErrLocked. Values <= 0 keep the default (2s): waiting forever is
// never what an operator wants.
func WithOpenTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.openTimeout = d
		}
	}
}

// Open opens (creating if needed) the store at path. A new file gets mode 0600 and a new
// parent directory 0700, since the file holds password hashes.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{openTimeout: defaultOpenTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: create directory: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: o.openTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w (waited %s)", path, ErrLocked, o.openTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range slices.Concat([][]byte{bucketUsers, bucketUsersByUsername, bucketUsersByEmail}, sessionBuckets, factorBuckets) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{db: db, path: path, revocationSubs: newSubscribers()}, nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Ping reports whether the database is open and readable.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketUsers) == nil {
			return errors.New("users bucket missing")
		}
		return nil
	})
}

// emailKey is the index key for an e-mail: lower-cased so that Jatin@Example.com and
// jatin@example.com are the same account, as they are for every mail server in practice.
func emailKey(email string) []byte { return []byte(store.EmailKey(email)) }

// CreateUser stores u, generating its ID when empty and its CreatedAt when zero.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	u, err := store.PrepareNewUser(u)
	if err != nil {
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error { return putNewUser(tx, u) })
	if err != nil {
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// ImportUsers stores all of users in one transaction, or none of them.
func (s *Store) ImportUsers(ctx context.Context, users []store.User) error {
	prepared := make([]store.User, len(users))
	for i, u := range users {
		p, err := store.PrepareNewUser(u)
		if err != nil {
			return fmt.Errorf("import users: record %d (username %q): %w", i, u.Username, err)
		}
		prepared[i] = p
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		for i, u := range prepared {
			// The indexes written for earlier records are visible here, so a duplicate
			// within the batch is caught just like one against the store.
			if err := putNewUser(tx, u); err != nil {
				return fmt.Errorf("record %d (username %q): %w", i, u.Username, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import users: %w", err)
	}
	return nil
}

// putNewUser writes u and its index entries, refusing any key already taken.
func putNewUser(tx *bbolt.Tx, u store.User) error {
	users := tx.Bucket(bucketUsers)
	byUsername := tx.Bucket(bucketUsersByUsername)
	byEmail := tx.Bucket(bucketUsersByEmail)

	if users.Get([]byte(u.ID)) != nil {
		return fmt.Errorf("id %q: %w", u.ID, store.ErrDuplicate)
	}
	if byUsername.Get([]byte(u.Username)) != nil {
		return fmt.Errorf("username %q: %w", u.Username, store.ErrDuplicate)
	}
	if u.Email != "" && byEmail.Get(emailKey(u.Email)) != nil {
		return fmt.Errorf("email %q: %w", u.Email, store.ErrDuplicate)
	}

	doc, err := store.EncodeUser(u)
	if err != nil {
		return fmt.Errorf("encode user %q: %w", u.Username, err)
	}
	if err := users.Put([]byte(u.ID), doc); err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	if err := byUsername.Put([]byte(u.Username), []byte(u.ID)); err != nil {
		return fmt.Errorf("put username index: %w", err)
	}
	if u.Email != "" {
		if err := byEmail.Put(emailKey(u.Email), []byte(u.ID)); err != nil {
			return fmt.Errorf("put email index: %w", err)
		}
	}
	return nil
}

// FindUser returns the user matching every non-empty field of q.
func (s *Store) FindUser(ctx context.Context, q store.UserQuery) (store.User, error) {
	var u store.User
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		u, err = findUser(tx, q)
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

// findUser looks q up by its most specific field, then checks the others against the
// document, so a query whose fields name two different users matches nobody.
func findUser(tx *bbolt.Tx, q store.UserQuery) (store.User, error) {
	var id []byte
	switch {
	case q.ID != "":
		id = []byte(q.ID)
	case q.Username != "":
		id = tx.Bucket(bucketUsersByUsername).Get([]byte(q.Username))
	case q.Email != "":
		id = tx.Bucket(bucketUsersByEmail).Get(emailKey(q.Email))
	default:
		return store.User{}, errors.New("empty query: set an id, username or email")
	}
	if id == nil {
		return store.User{}, store.ErrNotFound
	}
	raw := tx.Bucket(bucketUsers).Get(id)
	if raw == nil {
		if q.ID != "" {
			return store.User{}, store.ErrNotFound
		}
		// An index entry without its document is corruption, not a missing user.
		return store.User{}, fmt.Errorf("index points to missing user %q", id)
	}
	u, err := store.DecodeUser(raw)
	if err != nil {
		return store.User{}, fmt.Errorf("decode user %q: %w", id, err)
	}
	if q.Username != "" && u.Username != q.Username {
		return store.User{}, store.ErrNotFound
	}
	if q.Email != "" && store.EmailKey(u.Email) != store.EmailKey(q.Email) {
		return store.User{}, store.ErrNotFound
	}
	return u, nil
}

// ListUsers returns every user in byte-wise username order (the order of the username
// index, so no sort is needed).
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	var list []store.User
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		return tx.Bucket(bucketUsersByUsername).ForEach(func(username, id []byte) error {
			raw := users.Get(id)
			if raw == nil {
				return fmt.Errorf("index entry %q points to missing user %q", username, id)
			}
			u, err := store.DecodeUser(raw)
			if err != nil {
				return fmt.Errorf("decode user %q: %w", id, err)
			}
			list = append(list, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return list, nil
}

// DeleteUser removes the user matching q, its index entries and its factors (passkeys,
// TOTP, recovery codes) in one transaction.
func (s *Store) DeleteUser(ctx context.Context, q store.UserQuery) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		u, err := findUser(tx, q)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsers).Delete([]byte(u.ID)); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		if err := tx.Bucket(bucketUsersByUsername).Delete([]byte(u.Username)); err != nil {
			return fmt.Errorf("delete username index: %w", err)
		}
		if u.Email != "" {
			if err := tx.Bucket(bucketUsersByEmail).Delete(emailKey(u.Email)); err != nil {
				return fmt.Errorf("delete email index: %w", err)
			}
		}
		return deleteFactors(tx, u.ID)
	})
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// CountUsers returns the number of stored users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketUsers).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// view and update refuse to start a transaction for a context that is already done; a
// bbolt transaction itself cannot be interrupted, and they are short.
func (s *Store) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func (s *Store) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}
