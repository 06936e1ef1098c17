package store_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/callgate/callgate/store"
)

const (
	hashA = "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe."
	hashB = "$2b$10$SMPwaYbMyT0rScTjNduADO1GAFJKhfrEEQwUm6iPVoVcgxE9cxHSm"
)

func TestDecodeUserExportReference(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "testdata", "users.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.DecodeUserExport(data)
	if err != nil {
		t.Fatalf("DecodeUserExport(testdata/users.json): %v", err)
	}
	want := []store.User{
		{ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", Name: "Jatin", Email: "jatin@example.com", Role: "admin", PasswordHash: hashA},
		{ID: "65a1f0c2e4b0a1b2c3d4e5f7", Username: "alice", Name: "Alice", Email: "alice@example.com", Role: "user", PasswordHash: hashB},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeUserExport(testdata/users.json):\n got  %+v\n want %+v", got, want)
	}
}

func TestDecodeUserExport(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []store.User
	}{
		{"empty array", `[]`, []store.User{}},
		{
			"$oid id upper case, extended json kept in Extra",
			`[{"_id": {"$oid": "65A1F0C2E4B0A1B2C3D4E5F6"}, "username": "jatin", "password": "` + hashA + `",
			  "createdAt": {"$date": "2024-01-13T08:30:15.123Z"}, "__v": 0, "tags": ["a", {"b": null}]}]`,
			[]store.User{{
				ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", PasswordHash: hashA,
				Extra: map[string]any{
					"createdAt": map[string]any{"$date": "2024-01-13T08:30:15.123Z"},
					"__v":       float64(0),
					"tags":      []any{"a", map[string]any{"b": nil}},
				},
			}},
		},
		{
			"no _id, null optional fields, $2y$ hash",
			`[{"username": "bob", "name": null, "email": null, "role": null, "password": "$2y$` + hashA[4:] + `"}]`,
			[]store.User{{Username: "bob", PasswordHash: "$2y$" + hashA[4:]}},
		},
		{
			"same name and role in two records is fine",
			`[{"username": "a", "role": "user", "name": "X", "password": "` + hashA + `"},
			  {"username": "b", "role": "user", "name": "X", "password": "` + hashB + `"}]`,
			[]store.User{
				{Username: "a", Role: "user", Name: "X", PasswordHash: hashA},
				{Username: "b", Role: "user", Name: "X", PasswordHash: hashB},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.DecodeUserExport([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeUserExport: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeUserExport:\n got  %#v\n want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeUserExportErrors(t *testing.T) {
	ok := func(username string) string {
		return `{"username": "` + username + `", "password": "` + hashA + `"}`
	}
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"not json", `{`, "want a JSON array"},
		{"object not array", `{"username": "bob"}`, "want a JSON array"},
		{"record not an object", `[` + ok("a") + `, 42]`, "record 1: want a JSON object"},
		{"null record", `[null]`, "record 0: want a JSON object"},
		{"missing username", `[{"password": "` + hashA + `"}]`, "record 0: username: required"},
		{"username not a string", `[{"username": 7, "password": "` + hashA + `"}]`, "record 0: username: want a string"},
		{"missing password", `[` + ok("a") + `,` + ok("b") + `,` + ok("c") + `, {"username": "bob"}]`, `record 3 (username "bob"): password: required`},
		{"plaintext password", `[` + ok("a") + `,` + ok("b") + `,` + ok("c") + `, {"username": "bob", "password": "hunter22"}]`, `record 3 (username "bob"): password: not a bcrypt hash`},
		{"unknown bcrypt variant", `[{"username": "bob", "password": "$2x$` + hashA[4:] + `"}]`, `record 0 (username "bob"): password: not a bcrypt hash`},
		{"truncated bcrypt hash", `[{"username": "bob", "password": "` + hashA[:50] + `"}]`, `password: not a bcrypt hash`},
		{"bad bcrypt cost", `[{"username": "bob", "password": "$2a$99$` + hashA[7:] + `"}]`, `password: not a bcrypt hash`},
		{"email not a string", `[{"username": "bob", "email": ["x"], "password": "` + hashA + `"}]`, `record 0 (username "bob"): email: want a string`},
		{"short _id", `[{"_id": "65a1", "username": "bob", "password": "` + hashA + `"}]`, `record 0 (username "bob"): _id: "65a1": want 24 hex characters`},
		{"non-hex _id", `[{"_id": "zza1f0c2e4b0a1b2c3d4e5f6", "username": "bob", "password": "` + hashA + `"}]`, `_id:`},
		{"_id a number", `[{"_id": 5, "username": "bob", "password": "` + hashA + `"}]`, `record 0 (username "bob"): _id: want a string or {"$oid"`},
		{"_id named when known", `[{"_id": "65a1f0c2e4b0a1b2c3d4e5f6", "username": "bob", "password": "x"}]`, `record 0 (_id "65a1f0c2e4b0a1b2c3d4e5f6", username "bob"): password`},
		{"duplicate username", `[` + ok("bob") + `,` + ok("a") + `,` + ok("bob") + `]`, `records 0 and 2: same username "bob"`},
		{
			"duplicate email other case",
			`[{"username": "a", "email": "X@Example.com", "password": "` + hashA + `"}, {"username": "b", "email": "x@example.COM", "password": "` + hashA + `"}]`,
			`records 0 and 1: same email "x@example.com"`,
		},
		{
			"duplicate _id",
			`[{"_id": "65a1f0c2e4b0a1b2c3d4e5f6", "username": "a", "password": "` + hashA + `"}, {"_id": {"$oid": "65a1f0c2e4b0a1b2c3d4e5f6"}, "username": "b", "password": "` + hashA + `"}]`,
			`records 0 and 1: same _id "65a1f0c2e4b0a1b2c3d4e5f6"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.DecodeUserExport([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeUserExport: got %d users and nil error, want error containing %q", len(got), tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("DecodeUserExport error: got %q, want it to contain %q", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("DecodeUserExport on error: got %d users, want nil", len(got))
			}
		})
	}
}

func TestCheckBcryptHash(t *testing.T) {
	tests := []struct {
		hash string
		ok   bool
	}{
		{hashA, true},
		{hashB, true},
		{"$2y$" + hashA[4:], true},
		{"", false},
		{"hunter22", false},
		{"$2$" + hashA[4:], false},
		{hashA + "x", false},
		{"$2a$03$" + hashA[7:], false}, // below bcrypt's minimum cost
	}
	for _, tt := range tests {
		err := store.CheckBcryptHash(tt.hash)
		if (err == nil) != tt.ok {
			t.Errorf("CheckBcryptHash(%q): got %v, want ok=%v", tt.hash, err, tt.ok)
		}
	}
}

func TestNewUserID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := store.NewUserID()
		if err != nil {
			t.Fatal(err)
		}
		if !store.IsUserID(id) {
			t.Fatalf("NewUserID: got %q, want 24 lowercase hex", id)
		}
		if seen[id] {
			t.Fatalf("NewUserID: %q returned twice", id)
		}
		seen[id] = true
	}
}
