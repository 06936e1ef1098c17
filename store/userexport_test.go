package store_test

import (
	"os"
	"path/filepath"
	"reflect"
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
