// Package testkit holds the helpers that the tests of several packages share: a log buffer
// safe for concurrent writers, the rule for tests that need a Redis server, private
// redis-server processes (plain or TLS, with a generated CA) and Ory Hydra. Only test code
// imports it.
package testkit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that loggers on many goroutines may write to while a test
// reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RedisURL returns REDIS_URL. When it is unset the test skips, saying which tests did not
// run (what), except in CI (CI=true), where test.sh always provides a server and a missing
// one is a failure.
func RedisURL(t testing.TB, what string) string {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("REDIS_URL is not set; in CI the Redis tests must run (test.sh provides a server)")
		}
		t.Skipf("REDIS_URL is not set: skipping %s (./test.sh starts a Redis server)", what)
	}
	return u
}

// UniquePrefix returns a fresh Redis key prefix, so tests sharing one server never see each
// other's keys.
func UniquePrefix(name string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return name + "-" + hex.EncodeToString(b[:])
}
