// Package storetest is the conformance suite every store backend must pass, so that the
// embedded and the Redis stores behave the same to the gateway and its scripts.
//
// It is imported only from tests. It must never depend on one backend's internals: it
// drives a backend solely through the store interfaces.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

// testHash is a real bcrypt hash (cost 10), so backends that validate the format accept it.
const testHash = "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe."

// TestUsers runs the user-directory conformance suite. open must return a new, empty
// store for each call and arrange for it to be closed with t.Cleanup.
func TestUsers(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateGeneratesIDAndCreatedAt", func(t *testing.T) { testCreateGenerates(t, open(t)) })
	t.Run("CreateKeepsGivenIDAndCreatedAt", func(t *testing.T) { testCreateKeeps(t, open(t)) })
	t.Run("FindByFields", func(t *testing.T) { testFindByFields(t, open(t)) })
	t.Run("EmptyQueryRefused", func(t *testing.T) { testEmptyQuery(t, open(t)) })
	t.Run("DuplicatesRefused", func(t *testing.T) { testDuplicates(t, open(t)) })
	t.Run("EmptyEmailNotUnique", func(t *testing.T) { testEmptyEmail(t, open(t)) })
	t.Run("InvalidUsersRefused", func(t *testing.T) { testInvalid(t, open(t)) })
	t.Run("Import", func(t *testing.T) { testImport(t, open(t)) })
	t.Run("ImportAllOrNothing", func(t *testing.T) { testImportAllOrNothing(t, open) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open) })
	t.Run("ListOrderedByUsername", func(t *testing.T) { testList(t, open(t)) })
	t.Run("ExtraRoundTrips", func(t *testing.T) { testExtra(t, open(t)) })
	t.Run("ConcurrentCreateSameUsername", func(t *testing.T) { testConcurrentCreate(t, open(t)) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, open(t)) })
	t.Run("Update", func(t *testing.T) { testUserUpdates(t, open) })
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(context.Background()); err != nil {
			t.Fatalf("Ping: got %v, want nil", err)
		}
	})
}

func user(username, email string) store.User {
	return store.User{Username: username, Name: strings.ToUpper(username[:1]) + username[1:], Email: email, Role: "user", PasswordHash: testHash}
}

func mustCreate(t *testing.T, s store.Store, u store.User) store.User {
	t.Helper()
	got, err := s.CreateUser(context.Background(), u)
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", u.Username, err)
	}
	return got
}

func wantCount(t *testing.T, s store.Store, want int) {
	t.Helper()
	n, err := s.CountUsers(context.Background())
	if err != nil {
		t.Fatalf("CountUsers: %v", err)
	}
	if n != want {
		t.Fatalf("CountUsers: got %d, want %d", n, want)
	}
}

func wantNotFound(t *testing.T, s store.Store, q store.UserQuery) {
	t.Helper()
	u, err := s.FindUser(context.Background(), q)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindUser(%+v): got user %q, err %v; want ErrNotFound", q, u.Username, err)
	}
}

// sameUser compares every field; CreatedAt by instant, since backends may change its location.
func sameUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt: got %v, want %v", what, got.CreatedAt, want.CreatedAt)
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if len(got.Extra) == 0 && len(want.Extra) == 0 {
		got.Extra, want.Extra = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func testCreateGenerates(t *testing.T, s store.Store) {
	before := time.Now()
	in := user("jatin", "jatin@example.com")
	got := mustCreate(t, s, in)
	if !store.IsUserID(got.ID) {
		t.Errorf("generated ID: got %q, want 24 lowercase hex", got.ID)
	}
	if got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("generated CreatedAt: got %v, want about %v", got.CreatedAt, before)
	}
	in.ID, in.CreatedAt = got.ID, got.CreatedAt
	sameUser(t, "returned user", got, in)

	found, err := s.FindUser(context.Background(), store.UserQuery{ID: got.ID})
	if err != nil {
		t.Fatalf("FindUser by generated ID: %v", err)
	}
	sameUser(t, "stored user", found, got)

	other := mustCreate(t, s, user("alice", "alice@example.com"))
	if other.ID == got.ID {
		t.Errorf("two generated IDs: both %q, want distinct", got.ID)
	}
}

func testCreateKeeps(t *testing.T, s store.Store) {
	in := user("jatin", "jatin@example.com")
	in.ID = "65a1f0c2e4b0a1b2c3d4e5f6"
	in.CreatedAt = time.Date(2024, 1, 13, 8, 30, 15, 123456789, time.UTC)
	got := mustCreate(t, s, in)
	sameUser(t, "returned user", got, in)
	found, err := s.FindUser(context.Background(), store.UserQuery{ID: in.ID})
	if err != nil {
		t.Fatalf("FindUser by given ID: %v", err)
	}
	sameUser(t, "stored user", found, in)
}

func testFindByFields(t *testing.T, s store.Store) {
	jatin := mustCreate(t, s, user("jatin", "Jatin@Example.com"))
	alice := mustCreate(t, s, user("alice", "alice@example.com"))
	ctx := context.Background()

	tests := []struct {
		name string
		q    store.UserQuery
		want string // username, "" for ErrNotFound
	}{
		{"id", store.UserQuery{ID: jatin.ID}, "jatin"},
		{"username", store.UserQuery{Username: "alice"}, "alice"},
		{"email as stored", store.UserQuery{Email: "Jatin@Example.com"}, "jatin"},
		{"email lower case", store.UserQuery{Email: "jatin@example.com"}, "jatin"},
		{"email upper case", store.UserQuery{Email: "ALICE@EXAMPLE.COM"}, "alice"},
		{"id and username", store.UserQuery{ID: alice.ID, Username: "alice"}, "alice"},
		{"username and email", store.UserQuery{Username: "jatin", Email: "JATIN@example.com"}, "jatin"},
		{"all three", store.UserQuery{ID: jatin.ID, Username: "jatin", Email: "jatin@example.com"}, "jatin"},
		{"username is exact", store.UserQuery{Username: "Jatin"}, ""},
		{"unknown id", store.UserQuery{ID: "000000000000000000000000"}, ""},
		{"malformed id", store.UserQuery{ID: "not-an-id"}, ""},
		{"unknown username", store.UserQuery{Username: "bob"}, ""},
		{"unknown email", store.UserQuery{Email: "bob@example.com"}, ""},
		{"id of one, username of other", store.UserQuery{ID: jatin.ID, Username: "alice"}, ""},
		{"username of one, email of other", store.UserQuery{Username: "alice", Email: "jatin@example.com"}, ""},
		{"id of one, email of other", store.UserQuery{ID: alice.ID, Email: "jatin@example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindUser(ctx, tt.q)
			if tt.want == "" {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("FindUser(%+v): got user %q, err %v; want ErrNotFound", tt.q, got.Username, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindUser(%+v): got err %v, want user %q", tt.q, err, tt.want)
			}
			if got.Username != tt.want {
				t.Errorf("FindUser(%+v): got user %q, want %q", tt.q, got.Username, tt.want)
			}
		})
	}
}

func testEmptyQuery(t *testing.T, s store.Store) {
	mustCreate(t, s, user("jatin", ""))
	ctx := context.Background()
	if u, err := s.FindUser(ctx, store.UserQuery{}); err == nil {
		t.Errorf("FindUser(empty query): got user %q, want an error", u.Username)
	}
	if err := s.DeleteUser(ctx, store.UserQuery{}); err == nil {
		t.Errorf("DeleteUser(empty query): got nil, want an error")
	}
	wantCount(t, s, 1)
}

func testDuplicates(t *testing.T, s store.Store) {
	existing := user("jatin", "jatin@example.com")
	existing.ID = "65a1f0c2e4b0a1b2c3d4e5f6"
	mustCreate(t, s, existing)

	tests := []struct {
		name    string
		u       store.User
		wantMsg string
	}{
		{"same username", user("jatin", "other@example.com"), `username "jatin"`},
		{"same email", user("other", "jatin@example.com"), `email "jatin@example.com"`},
		{"same email other case", user("other", "JATIN@example.COM"), `email "JATIN@example.COM"`},
		{"same id", store.User{ID: existing.ID, Username: "other", PasswordHash: testHash}, `"65a1f0c2e4b0a1b2c3d4e5f6"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateUser(context.Background(), tt.u)
			if !errors.Is(err, store.ErrDuplicate) {
				t.Fatalf("CreateUser: got %v, want ErrDuplicate", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("CreateUser error: got %q, want it to name %s", err, tt.wantMsg)
			}
			// A refused user must leave nothing behind, not even an index entry.
			wantCount(t, s, 1)
			if tt.u.Username != "jatin" {
				wantNotFound(t, s, store.UserQuery{Username: tt.u.Username})
			}
			if tt.u.Email != "" && !strings.EqualFold(tt.u.Email, "jatin@example.com") {
				wantNotFound(t, s, store.UserQuery{Email: tt.u.Email})
			}
		})
	}
	got, err := s.FindUser(context.Background(), store.UserQuery{Email: "jatin@example.com"})
	if err != nil || got.Username != "jatin" {
		t.Errorf("after refused duplicates, FindUser(email): got %q, %v; want jatin", got.Username, err)
	}
}

func testEmptyEmail(t *testing.T, s store.Store) {
	mustCreate(t, s, user("jatin", ""))
	mustCreate(t, s, user("alice", ""))
	wantCount(t, s, 2)
}

func testInvalid(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		u    store.User
	}{
		{"empty username", store.User{PasswordHash: testHash}},
		{"plaintext password", store.User{Username: "jatin", PasswordHash: "hunter22"}},
		{"short id", store.User{ID: "65a1f0", Username: "jatin", PasswordHash: testHash}},
		{"upper-case id", store.User{ID: "65A1F0C2E4B0A1B2C3D4E5F6", Username: "jatin", PasswordHash: testHash}},
		{"extra shadows password", store.User{Username: "jatin", PasswordHash: testHash, Extra: map[string]any{"password": "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := s.CreateUser(context.Background(), tt.u); err == nil {
				t.Fatalf("CreateUser(%+v): got user %q, want an error", tt.u, got.ID)
			}
			if err := s.ImportUsers(context.Background(), []store.User{tt.u}); err == nil {
				t.Fatalf("ImportUsers(%+v): got nil, want an error", tt.u)
			}
			wantCount(t, s, 0)
		})
	}
}

func testImport(t *testing.T, s store.Store) {
	batch := []store.User{user("jatin", "jatin@example.com"), user("alice", "Alice@example.com"), user("bob", "")}
	batch[0].ID = "65a1f0c2e4b0a1b2c3d4e5f6"
	if err := s.ImportUsers(context.Background(), batch); err != nil {
		t.Fatalf("ImportUsers: %v", err)
	}
	wantCount(t, s, 3)
	for _, q := range []store.UserQuery{
		{ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin"},
		{Email: "alice@example.com"},
		{Username: "bob"},
	} {
		if _, err := s.FindUser(context.Background(), q); err != nil {
			t.Errorf("after import, FindUser(%+v): %v", q, err)
		}
	}
	if err := s.ImportUsers(context.Background(), nil); err != nil {
		t.Errorf("ImportUsers(nil): got %v, want nil", err)
	}
	wantCount(t, s, 3)
}

func testImportAllOrNothing(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name    string
		batch   []store.User
		wantMsg string
	}{
		{
			"duplicate username within batch",
			[]store.User{user("alice", "alice@example.com"), user("bob", ""), user("alice", "alice2@example.com")},
			"record 2",
		},
		{
			"duplicate email within batch, other case",
			[]store.User{user("alice", "alice@example.com"), user("bob", "ALICE@example.com")},
			"record 1",
		},
		{
			"duplicate id within batch",
			[]store.User{
				{ID: "65a1f0c2e4b0a1b2c3d4e5f7", Username: "alice", PasswordHash: testHash},
				{ID: "65a1f0c2e4b0a1b2c3d4e5f7", Username: "bob", PasswordHash: testHash},
			},
			"record 1",
		},
		{
			"username taken in store",
			[]store.User{user("alice", "alice@example.com"), user("bob", ""), user("jatin", "")},
			"record 2",
		},
		{
			"email taken in store",
			[]store.User{user("alice", "alice@example.com"), user("bob", "Jatin@Example.com")},
			"record 1",
		},
		{
			"id taken in store",
			[]store.User{user("alice", "alice@example.com"), {ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "bob", PasswordHash: testHash}},
			"record 1",
		},
		{
			"invalid record",
			[]store.User{user("alice", "alice@example.com"), {Username: "bob", PasswordHash: "plaintext"}},
			"record 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			existing := user("jatin", "jatin@example.com")
			existing.ID = "65a1f0c2e4b0a1b2c3d4e5f6"
			mustCreate(t, s, existing)

			err := s.ImportUsers(context.Background(), tt.batch)
			if err == nil {
				t.Fatal("ImportUsers: got nil, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ImportUsers error: got %q, want it to name %s", err, tt.wantMsg)
			}
			wantCount(t, s, 1)
			for _, u := range tt.batch {
				if u.Username != "jatin" {
					wantNotFound(t, s, store.UserQuery{Username: u.Username})
				}
				if u.Email != "" && !strings.EqualFold(u.Email, "jatin@example.com") {
					wantNotFound(t, s, store.UserQuery{Email: u.Email})
				}
			}
			got, err := s.FindUser(context.Background(), store.UserQuery{ID: existing.ID})
			if err != nil || got.Username != "jatin" || !strings.EqualFold(got.Email, "jatin@example.com") {
				t.Errorf("existing user after failed import: got %q <%s>, %v; want jatin unchanged", got.Username, got.Email, err)
			}
		})
	}
}

func testDelete(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		q    func(u store.User) store.UserQuery
	}{
		{"by id", func(u store.User) store.UserQuery { return store.UserQuery{ID: u.ID} }},
		{"by username", func(u store.User) store.UserQuery { return store.UserQuery{Username: u.Username} }},
		{"by email other case", func(u store.User) store.UserQuery { return store.UserQuery{Email: strings.ToUpper(u.Email)} }},
		{"by all fields", func(u store.User) store.UserQuery {
			return store.UserQuery{ID: u.ID, Username: u.Username, Email: u.Email}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			jatin := mustCreate(t, s, user("jatin", "jatin@example.com"))
			alice := mustCreate(t, s, user("alice", "alice@example.com"))

			if err := s.DeleteUser(ctx, tt.q(jatin)); err != nil {
				t.Fatalf("DeleteUser: %v", err)
			}
			wantCount(t, s, 1)
			wantNotFound(t, s, store.UserQuery{ID: jatin.ID})
			wantNotFound(t, s, store.UserQuery{Username: "jatin"})
			wantNotFound(t, s, store.UserQuery{Email: "jatin@example.com"})
			if _, err := s.FindUser(ctx, store.UserQuery{ID: alice.ID}); err != nil {
				t.Errorf("other user after delete: %v", err)
			}
			if err := s.DeleteUser(ctx, tt.q(jatin)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("DeleteUser again: got %v, want ErrNotFound", err)
			}
			// The freed username and e-mail can be taken again.
			mustCreate(t, s, user("jatin", "jatin@example.com"))
			wantCount(t, s, 2)
		})
	}

	t.Run("mismatched fields delete nothing", func(t *testing.T) {
		s := open(t)
		jatin := mustCreate(t, s, user("jatin", "jatin@example.com"))
		mustCreate(t, s, user("alice", "alice@example.com"))
		err := s.DeleteUser(context.Background(), store.UserQuery{ID: jatin.ID, Username: "alice"})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteUser(id of jatin, username alice): got %v, want ErrNotFound", err)
		}
		wantCount(t, s, 2)
	})
}

func testList(t *testing.T, s store.Store) {
	ctx := context.Background()
	list, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers on empty store: %v", err)
	}
	if len(list) != 0 {
		t.Fatalf("ListUsers on empty store: got %d users, want 0", len(list))
	}
	created := map[string]store.User{}
	for _, name := range []string{"mallory", "alice", "zed", "bob", "jatin"} {
		created[name] = mustCreate(t, s, user(name, name+"@example.com"))
	}
	list, err = s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	var got []string
	for _, u := range list {
		got = append(got, u.Username)
		sameUser(t, "listed "+u.Username, u, created[u.Username])
	}
	want := []string{"alice", "bob", "jatin", "mallory", "zed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListUsers order: got %v, want %v", got, want)
	}
}

func testExtra(t *testing.T, s store.Store) {
	// Values as encoding/json decodes them, which is how imported fields arrive.
	extra := map[string]any{
		"createdAt": map[string]any{"$date": "2024-01-13T08:30:15.123Z"},
		"__v":       float64(0),
		"verified":  true,
		"nothing":   nil,
		"tags":      []any{"admin", float64(3), map[string]any{"nested": []any{false}}},
		"profile":   map[string]any{"city": "Pune", "langs": []any{"en", "hi"}},
	}
	in := user("jatin", "jatin@example.com")
	in.Extra = extra
	mustCreate(t, s, in)

	got, err := s.FindUser(context.Background(), store.UserQuery{Username: "jatin"})
	if err != nil {
		t.Fatalf("FindUser: %v", err)
	}
	if !reflect.DeepEqual(got.Extra, extra) {
		t.Errorf("Extra after FindUser:\n got  %#v\n want %#v", got.Extra, extra)
	}
	list, err := s.ListUsers(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUsers: got %d users, %v; want 1", len(list), err)
	}
	if !reflect.DeepEqual(list[0].Extra, extra) {
		t.Errorf("Extra after ListUsers:\n got  %#v\n want %#v", list[0].Extra, extra)
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	const racers = 100
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateUser(context.Background(), user("jatin", fmt.Sprintf("jatin%d@example.com", i)))
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrDuplicate):
			t.Errorf("racer %d: got %v, want nil or ErrDuplicate", i, err)
		}
	}
	if won != 1 {
		t.Errorf("concurrent creates of one username: got %d winners, want 1", won)
	}
	wantCount(t, s, 1)
}

func testCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.CreateUser(ctx, user("jatin", "")); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateUser with cancelled context: got %v, want context.Canceled", err)
	}
	if err := s.ImportUsers(ctx, []store.User{user("alice", "")}); !errors.Is(err, context.Canceled) {
		t.Errorf("ImportUsers with cancelled context: got %v, want context.Canceled", err)
	}
	if _, err := s.FindUser(ctx, store.UserQuery{Username: "jatin"}); !errors.Is(err, context.Canceled) {
		t.Errorf("FindUser with cancelled context: got %v, want context.Canceled", err)
	}
	wantCount(t, s, 0)
}
