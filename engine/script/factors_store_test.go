package script

import (
	"path/filepath"
	"testing"

	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
)

// factorsStoreForTest opens a real embedded store for the factors.list tests.
func factorsStoreForTest(t *testing.T) store.Factors {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "factors.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
