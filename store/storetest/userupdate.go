package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

// otherHash is a second real bcrypt hash (cost 10, of "other"), to tell a changed password
// from the one user() sets.
const otherHash = "$2a$10$XYO8A9antLVEIpd8QzfgS.NVWsrZwtEMwNp6LNEmY.M9WjeKXei5O"

// testUserUpdates is the UpdateUser part of TestUsers.
func testUserUpdates(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("FieldByField", func(t *testing.T) { testUpdateFields(t, open) })
	t.Run("IndexesFollow", func(t *testing.T) { testUpdateIndexes(t, open(t)) })
	t.Run("NotFound", func(t *testing.T) { testUpdateNotFound(t, open(t)) })
	t.Run("RefusedChangesNothing", func(t *testing.T) { testUpdateRefused(t, open) })
	t.Run("EmptyPatch", func(t *testing.T) { testUpdateEmpty(t, open(t)) })
	t.Run("ConcurrentUpdatesSameUsername", func(t *testing.T) { testConcurrentRename(t, open(t)) })
	t.Run("ConcurrentUpdatesOneUser", func(t *testing.T) { testConcurrentPatches(t, open(t)) })
	t.Run("CancelledContext", func(t *testing.T) {
		s := open(t)
		u := mustCreate(t, s, user("jatin", ""))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.UpdateUser(ctx, u.ID, store.UserPatch{Name: ptr("J")}); !errors.Is(err, context.Canceled) {
			t.Errorf("UpdateUser with cancelled context: got %v, want context.Canceled", err)
		}
		wantStored(t, s, u)
	})
}

func ptr(s string) *string { return &s }

// wantStored checks that the user with want's ID is stored exactly as want.
func wantStored(t *testing.T, s store.Store, want store.User) {
	t.Helper()
	got, err := s.FindUser(context.Background(), store.UserQuery{ID: want.ID})
	if err != nil {
		t.Fatalf("FindUser(%s): %v", want.ID, err)
	}
	sameUser(t, "stored user", got, want)
}

func testUpdateFields(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name  string
		patch store.UserPatch
		want  func(u *store.User) // what the patch does to jatin
	}{
		{"username", store.UserPatch{Username: ptr("jatin2")}, func(u *store.User) { u.Username = "jatin2" }},
		{"name", store.UserPatch{Name: ptr("Jatin K")}, func(u *store.User) { u.Name = "Jatin K" }},
		{"clear name", store.UserPatch{Name: ptr("")}, func(u *store.User) { u.Name = "" }},
		{"email", store.UserPatch{Email: ptr("jk@example.org")}, func(u *store.User) { u.Email = "jk@example.org" }},
		{"email case only", store.UserPatch{Email: ptr("JATIN@Example.com")}, func(u *store.User) { u.Email = "JATIN@Example.com" }},
		{"clear email", store.UserPatch{Email: ptr("")}, func(u *store.User) { u.Email = "" }},
		{"role", store.UserPatch{Role: ptr("admin")}, func(u *store.User) { u.Role = "admin" }},
		{"password", store.UserPatch{PasswordHash: ptr(otherHash)}, func(u *store.User) { u.PasswordHash = otherHash }},
		{"clear password", store.UserPatch{PasswordHash: ptr("")}, func(u *store.User) { u.PasswordHash = "" }},
		{"set extra", store.UserPatch{SetExtra: map[string]any{"team": "blue", "tags": []any{"a", float64(1)}}},
			func(u *store.User) {
				u.Extra = map[string]any{"city": "Pune", "team": "blue", "tags": []any{"a", float64(1)}}
			}},
		{"replace extra", store.UserPatch{SetExtra: map[string]any{"city": "Delhi"}},
			func(u *store.User) { u.Extra = map[string]any{"city": "Delhi"} }},
		{"unset extra", store.UserPatch{UnsetExtra: []string{"city", "never-set"}}, func(u *store.User) { u.Extra = nil }},
		{"several at once", store.UserPatch{Username: ptr("jk"), Email: ptr("jk@example.org"), Role: ptr("admin"), SetExtra: map[string]any{"v": true}},
			func(u *store.User) {
				u.Username, u.Email, u.Role = "jk", "jk@example.org", "admin"
				u.Extra = map[string]any{"city": "Pune", "v": true}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			in := user("jatin", "jatin@example.com")
			in.ID = "65a1f0c2e4b0a1b2c3d4e5f6"
			in.CreatedAt = time.Date(2024, 1, 13, 8, 30, 15, 0, time.UTC)
			in.Extra = map[string]any{"city": "Pune"}
			jatin := mustCreate(t, s, in)
			alice := mustCreate(t, s, user("alice", "alice@example.com"))

			got, err := s.UpdateUser(context.Background(), jatin.ID, tt.patch)
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			want := jatin
			tt.want(&want)
			// ID and CreatedAt are compared too: an update keeps both.
			sameUser(t, "returned user", got, want)
			wantStored(t, s, want)
			wantStored(t, s, alice)
			wantCount(t, s, 2)
		})
	}
}

func testUpdateIndexes(t *testing.T, s store.Store) {
	ctx := context.Background()
	jatin := mustCreate(t, s, user("jatin", "Jatin@Example.com"))
	if _, err := s.UpdateUser(ctx, jatin.ID, store.UserPatch{Username: ptr("jk"), Email: ptr("JK@Example.org")}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	wantNotFound(t, s, store.UserQuery{Username: "jatin"})
	wantNotFound(t, s, store.UserQuery{Email: "jatin@example.com"})
	for _, q := range []store.UserQuery{{Username: "jk"}, {Email: "jk@example.org"}, {Email: "JK@EXAMPLE.ORG"}, {ID: jatin.ID, Username: "jk", Email: "jk@example.org"}} {
		got, err := s.FindUser(ctx, q)
		if err != nil || got.ID != jatin.ID {
			t.Errorf("FindUser(%+v) after the update: got %q, %v; want %s", q, got.ID, err, jatin.ID)
		}
	}
	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 1 || list[0].Username != "jk" {
		t.Errorf("ListUsers after the update: got %+v, %v; want jk only", list, err)
	}

	// The old username and e-mail are free for others, in any case of the e-mail.
	mustCreate(t, s, user("jatin", "JATIN@example.com"))
	// An e-mail given up by clearing it is free too, and a cleared e-mail is not unique.
	bob := mustCreate(t, s, user("bob", "bob@example.com"))
	if _, err := s.UpdateUser(ctx, bob.ID, store.UserPatch{Email: ptr("")}); err != nil {
		t.Fatalf("UpdateUser(clear e-mail): %v", err)
	}
	wantNotFound(t, s, store.UserQuery{Email: "bob@example.com"})
	mustCreate(t, s, user("bobby", "Bob@example.com"))
	mustCreate(t, s, user("noemail", ""))
	// A user may take back its own username and e-mail (in another case) in one update.
	if _, err := s.UpdateUser(ctx, jatin.ID, store.UserPatch{Username: ptr("jk"), Email: ptr("jk@EXAMPLE.org")}); err != nil {
		t.Errorf("UpdateUser to its own username and e-mail: got %v, want nil", err)
	}
	wantCount(t, s, 5)
}

func testUpdateNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	gone := mustCreate(t, s, user("gone", "gone@example.com"))
	if err := s.DeleteUser(ctx, store.UserQuery{ID: gone.ID}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"000000000000000000000000", "not-an-id", gone.ID} {
		_, err := s.UpdateUser(ctx, id, store.UserPatch{Name: ptr("X")})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateUser(%q): got %v, want ErrNotFound", id, err)
		}
	}
	if _, err := s.UpdateUser(ctx, "", store.UserPatch{Name: ptr("X")}); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateUser(empty id): got %v, want an error that is not ErrNotFound", err)
	}
	// Nothing was created on the way: the deleted user's keys stay free.
	wantCount(t, s, 0)
	wantNotFound(t, s, store.UserQuery{ID: gone.ID})
	mustCreate(t, s, user("gone", "gone@example.com"))
}

func testUpdateRefused(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name    string
		patch   store.UserPatch
		dup     bool   // want ErrDuplicate
		wantMsg string // in the error
	}{
		{"username taken", store.UserPatch{Username: ptr("alice"), Name: ptr("Changed")}, true, `username "alice"`},
		{"email taken", store.UserPatch{Email: ptr("alice@example.com"), Role: ptr("admin")}, true, `email "alice@example.com"`},
		{"email taken other case", store.UserPatch{Email: ptr("ALICE@Example.COM")}, true, `email "ALICE@Example.COM"`},
		{"email free, username taken", store.UserPatch{Username: ptr("alice"), Email: ptr("fresh@example.com")}, true, `username "alice"`},
		{"username free, email taken", store.UserPatch{Username: ptr("fresh"), Email: ptr("alice@example.com")}, true, `email`},
		{"empty username", store.UserPatch{Username: ptr(""), Name: ptr("Changed")}, false, "username"},
		{"plaintext password", store.UserPatch{PasswordHash: ptr("hunter22")}, false, "bcrypt"},
		{"extra shadows a field", store.UserPatch{SetExtra: map[string]any{"email": "x@example.com"}}, false, `"email"`},
		{"unset a field as extra", store.UserPatch{UnsetExtra: []string{"password"}}, false, `"password"`},
		{"set and unset one extra", store.UserPatch{SetExtra: map[string]any{"city": "Delhi"}, UnsetExtra: []string{"city"}}, false, `"city"`},
		{"username not UTF-8", store.UserPatch{Username: ptr("j\xffk")}, false, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			in := user("jatin", "jatin@example.com")
			in.Extra = map[string]any{"city": "Pune"}
			jatin := mustCreate(t, s, in)
			alice := mustCreate(t, s, user("alice", "alice@example.com"))

			got, err := s.UpdateUser(context.Background(), jatin.ID, tt.patch)
			if err == nil {
				t.Fatalf("UpdateUser: got user %+v, want an error", got)
			}
			if errors.Is(err, store.ErrDuplicate) != tt.dup {
				t.Errorf("UpdateUser: got %v; want ErrDuplicate: %v", err, tt.dup)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("UpdateUser error: got %q, want it to name %s", err, tt.wantMsg)
			}
			// Nothing half-written: both users as they were, their indexes in place, and no
			// index entry for a value of the refused patch.
			wantStored(t, s, jatin)
			wantStored(t, s, alice)
			wantCount(t, s, 2)
			for _, q := range []store.UserQuery{{Username: "jatin"}, {Email: "jatin@example.com"}} {
				if u, err := s.FindUser(context.Background(), q); err != nil || u.ID != jatin.ID {
					t.Errorf("FindUser(%+v): got %q, %v; want jatin", q, u.ID, err)
				}
			}
			wantNotFound(t, s, store.UserQuery{Username: "fresh"})
			wantNotFound(t, s, store.UserQuery{Email: "fresh@example.com"})
		})
	}
}

func testUpdateEmpty(t *testing.T, s store.Store) {
	jatin := mustCreate(t, s, user("jatin", "jatin@example.com"))
	got, err := s.UpdateUser(context.Background(), jatin.ID, store.UserPatch{})
	if err != nil {
		t.Fatalf("UpdateUser(empty patch): %v", err)
	}
	sameUser(t, "returned user", got, jatin)
	wantStored(t, s, jatin)
}

// testConcurrentRename races updates of many users to one username: the check of the
// username and the write must be one step, or two users end up sharing it.
func testConcurrentRename(t *testing.T, s store.Store) {
	const racers = 100
	ids := make([]string, racers)
	for i := range racers {
		ids[i] = mustCreate(t, s, user(fmt.Sprintf("user%03d", i), fmt.Sprintf("user%03d@example.com", i))).ID
	}
	for _, field := range []string{"username", "email"} {
		t.Run(field, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make([]error, racers)
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := store.UserPatch{Username: ptr("winner")}
					if field == "email" {
						// One address in a different case per racer: all one e-mail.
						p = store.UserPatch{Email: ptr("Winner@Example.com")}
						if i%2 == 1 {
							p.Email = ptr("WINNER@example.COM")
						}
					}
					_, errs[i] = s.UpdateUser(context.Background(), ids[i], p)
				}()
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil:
					if winner >= 0 {
						t.Errorf("racers %d and %d both took the %s", winner, i, field)
					}
					winner = i
				case !errors.Is(err, store.ErrDuplicate):
					t.Errorf("racer %d: got %v, want nil or ErrDuplicate", i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("concurrent updates to one %s: no winner", field)
			}
			q := store.UserQuery{Username: "winner"}
			if field == "email" {
				q = store.UserQuery{Email: "winner@example.com"}
			}
			got, err := s.FindUser(context.Background(), q)
			if err != nil || got.ID != ids[winner] {
				t.Errorf("FindUser(%+v): got %q, %v; want the winner %s", q, got.ID, err, ids[winner])
			}
			// Every loser keeps what it had; the list has every user once.
			list, err := s.ListUsers(context.Background())
			if err != nil || len(list) != racers {
				t.Fatalf("ListUsers: got %d users, %v; want %d", len(list), err, racers)
			}
			for _, u := range list {
				if u.ID == ids[winner] {
					continue
				}
				if (field == "username" && u.Username == "winner") || (field == "email" && strings.EqualFold(u.Email, "winner@example.com")) {
					t.Errorf("loser %s holds the %s: %+v", u.ID, field, u)
				}
			}
		})
	}
}

// testConcurrentPatches races patches of one user that touch different fields: each must
// apply to the document as the others left it, none lost.
func testConcurrentPatches(t *testing.T, s store.Store) {
	// At most 16 racers: a racer can lose the compare-and-set only to another's write.
	const racers = 10
	u := mustCreate(t, s, user("jatin", "jatin@example.com"))
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.UpdateUser(context.Background(), u.ID, store.UserPatch{SetExtra: map[string]any{fmt.Sprintf("k%d", i): float64(i)}})
		}()
	}
	wg.Wait()
	want := map[string]any{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %v", i, err)
		}
		want[fmt.Sprintf("k%d", i)] = float64(i)
	}
	u.Extra = want
	wantStored(t, s, u)
}
