package main

import (
	"path/filepath"

	"github.com/callgate/callgate/store/bolt"
)

// defaultDataDir is where the embedded store lives unless --data says otherwise, relative to
// the working directory.
const defaultDataDir = "data"

// storeFileName is the embedded store's file inside the data directory.
const storeFileName = "callgate.db"

// openStore opens the embedded store in dataDir, creating the directory (0700) and the file
// (0600) on first use. Only one process may hold it open; another gets an error saying the
// database is locked.
func openStore(dataDir string) (*bolt.Store, error) {
	return bolt.Open(filepath.Join(dataDir, storeFileName))
}
