package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/callgate/callgate/store"
)

// UpdateUser applies patch to the user with this ID in one transaction: the document and
// its index entries change together or not at all.
func (s *Store) UpdateUser(ctx context.Context, id string, patch store.UserPatch) (store.User, error) {
	if err := store.CheckUpdateID(id); err != nil {
		return store.User{}, fmt.Errorf("update user: %w", err)
	}
	var updated store.User
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		old, err := findUser(tx, store.UserQuery{ID: id})
		if err != nil {
			return err
		}
		if updated, err = patch.Apply(old); err != nil {
			return err
		}
		if patch.IsZero() {
			return nil
		}
		return putUpdatedUser(tx, old, updated)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("update user %s: %w", id, err)
	}
	return updated, nil
}

// putUpdatedUser writes updated over old, moving the index entries of a changed username
// or e-mail after checking the new ones are free.
func putUpdatedUser(tx *bbolt.Tx, old, updated store.User) error {
	byUsername := tx.Bucket(bucketUsersByUsername)
	byEmail := tx.Bucket(bucketUsersByEmail)
	usernameMoved, emailMoved := store.UniqueChanges(old, updated)
	id := []byte(updated.ID)

	if usernameMoved && byUsername.Get([]byte(updated.Username)) != nil {
		return fmt.Errorf("username %q: %w", updated.Username, store.ErrDuplicate)
	}
	if emailMoved && updated.Email != "" && byEmail.Get(emailKey(updated.Email)) != nil {
		return fmt.Errorf("email %q: %w", updated.Email, store.ErrDuplicate)
	}

	doc, err := store.EncodeUser(updated)
	if err != nil {
		return fmt.Errorf("encode user %q: %w", updated.Username, err)
	}
	if err := tx.Bucket(bucketUsers).Put(id, doc); err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	if usernameMoved {
		if err := byUsername.Delete([]byte(old.Username)); err != nil {
			return fmt.Errorf("delete username index: %w", err)
		}
		if err := byUsername.Put([]byte(updated.Username), id); err != nil {
			return fmt.Errorf("put username index: %w", err)
		}
	}
	if emailMoved {
		if old.Email != "" {
			if err := byEmail.Delete(emailKey(old.Email)); err != nil {
				return fmt.Errorf("delete email index: %w", err)
			}
		}
		if updated.Email != "" {
			if err := byEmail.Put(emailKey(updated.Email), id); err != nil {
				return fmt.Errorf("put email index: %w", err)
			}
		}
	}
	return nil
}
