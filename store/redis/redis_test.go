package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/redis"
	"github.com/callgate/callgate/store/storetest"
)

// redisURL returns REDIS_URL, skipping the test when it is unset outside CI and failing
// it in CI, where test.sh always provides a server.
func redisURL(t *testing.T) string {
	t.Helper()
	return testkit.RedisURL(t, "the Redis store tests")
}

// uniquePrefix isolates one test's keys from every other test sharing the server.
func uniquePrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "callgate-test-" + hex.EncodeToString(b[:])
}

// openRedis returns a store under a fresh prefix and deletes its keys afterwards.
func openRedis(t *testing.T) *redis.Store {
	t.Helper()
	s, err := redis.Open(redis.Options{URL: redisURL(t), KeyPrefix: uniquePrefix(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := s.Client().Keys(ctx, s.Prefix()+"*").Result()
		if len(keys) > 0 {
			s.Client().Del(ctx, keys...)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.TestAll(t, func(t *testing.T) store.Store { return openRedis(t) })
}

// TestFactorReplicas races factor uses across two clients on one key prefix, as two
// gateway replicas sharing one Redis.
func TestFactorReplicas(t *testing.T) {
	storetest.TestFactorReplicas(t, func(t *testing.T) []store.Store {
		first := openRedis(t)
		second, err := redis.Open(redis.Options{URL: redisURL(t), KeyPrefix: strings.Trim(first.Prefix(), "{}:")})
		if err != nil {
			t.Fatalf("Open the second replica: %v", err)
		}
		t.Cleanup(func() {
			if err := second.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return []store.Store{first, second}
	})
}

// TestUnreachableIsUnavailable checks that a server that does not answer is an error
// distinct from "not found", for every kind of read the gateway makes.
func TestUnreachableIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s, err := redis.Open(redis.Options{URL: "redis://" + addr, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	checks := []struct {
		name string
		err  error
	}{
		{"Ping", s.Ping(ctx)},
		{"FindUser", func() error { _, err := s.FindUser(ctx, store.UserQuery{Username: "x"}); return err }()},
		{"GetSessionAndUser", func() error { _, _, err := s.GetSessionAndUser(ctx, store.SessionID("x")); return err }()},
		{"RevocationState", func() error { _, err := s.RevocationState(ctx, "u", "t"); return err }()},
		{"Increment", func() error { _, _, err := s.Increment(ctx, "k", time.Minute); return err }()},
		{"Release", s.Release(ctx, "k", time.Now())},
		{"Passkey", func() error { _, err := s.Passkey(ctx, []byte("id")); return err }()},
		{"ListPasskeys", func() error { _, err := s.ListPasskeys(ctx, "u"); return err }()},
		{"UsePasskey", s.UsePasskey(ctx, []byte("id"), 1, time.Now())},
		{"TOTP", func() error { _, err := s.TOTP(ctx, "u"); return err }()},
		{"UseTOTPStep", s.UseTOTPStep(ctx, "u", 1)},
		{"UseRecoveryCode", s.UseRecoveryCode(ctx, "u", []byte("h"))},
		{"CountRecoveryCodes", func() error { _, err := s.CountRecoveryCodes(ctx, "u"); return err }()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrUnavailable) || errors.Is(c.err, store.ErrNotFound) {
			t.Errorf("%s against a closed port: got %v, want ErrUnavailable and not ErrNotFound", c.name, c.err)
		}
	}
}

func TestOpenURLs(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string
	}{
		{"redis://127.0.0.1:6379/0", ""},
		{"rediss://user:pw@cache.example.com:6380/1", ""},
		{"redis+sentinel://s1:26379,s2:26379/?master_name=mymaster", ""},
		{"rediss+sentinel://s1:26379/?master_name=mymaster", ""},
		{"redis+cluster://n1:7000,n2:7001,n3:7002", ""},
		{"redis+sentinel://s1:26379", "master_name"},
		{"redis://a:1,b:2", "several hosts"},
		{"memcached://x", "want redis://"},
		{"redis+mesh://x", "unknown mode"},
		{"redis://x?bogus_option=1", "bogus"},
	}
	for _, tt := range tests {
		s, err := redis.Open(redis.Options{URL: tt.url})
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Open(%q): got %v, want nil", tt.url, err)
				continue
			}
			s.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Open(%q): got %v, want an error containing %q", tt.url, err, tt.wantErr)
		}
		if s != nil {
			s.Close()
		}
	}
}

// TestKeysCarryPrefixHashTag checks that every key the store writes is under its prefix,
// in one Cluster hash slot, and that a session is stored under its hash only.
func TestKeysCarryPrefixHashTag(t *testing.T) {
	s := openRedis(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, store.User{Username: "jatin", Email: "j@example.com", PasswordHash: "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe."})
	if err != nil {
		t.Fatal(err)
	}
	const token = "the-raw-session-token"
	if err := s.CreateSession(ctx, store.Session{ID: store.SessionID(token), UserID: u.ID, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	enrolFactors(t, s, u.ID)
	keys, err := s.Client().Keys(ctx, "*"+strings.Trim(s.Prefix(), "{}:")+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 9 {
		t.Fatalf("keys: got %v, want user, indexes, list, session, session index, passkey, its index, TOTP, recovery codes", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, s.Prefix()) {
			t.Errorf("key %q: want prefix %q", k, s.Prefix())
		}
		if strings.Contains(k, token) {
			t.Errorf("key %q holds the raw session token", k)
		}
		v, _ := s.Client().Get(ctx, k).Result()
		if strings.Contains(v, token) {
			t.Errorf("value of %q holds the raw session token", k)
		}
	}
}

// TestCounterWindowAlwaysSet: the window (the key's expiry) is set in the same script as
// the count, so no counter is ever left without one, even when the first increments of a
// window race each other; and it is the window end Increment and Count report.
func TestCounterWindowAlwaysSet(t *testing.T) {
	s := openRedis(t)
	ctx := context.Background()
	const n = 20
	ends := make(chan time.Time, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			_, at, err := s.Increment(ctx, "w", time.Minute)
			ends <- at
			errs <- err
		}()
	}
	var end time.Time
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("Increment: %v", err)
		}
		end = <-ends
	}
	k := s.Prefix() + "ratelimit:w"
	ttl, err := s.Client().PTTL(ctx, k).Result()
	if err != nil {
		t.Fatalf("PTTL %s: %v", k, err)
	}
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL of the counter: got %v, want within (0, 1m]", ttl)
	}
	// The server and this test share a clock here: the reported end is the key's expiry.
	if d := time.Until(end) - ttl; d < -time.Second || d > time.Second {
		t.Errorf("Increment reported the window ends in %v, the key expires in %v", time.Until(end), ttl)
	}
	if c, at, err := s.Count(ctx, "w"); err != nil || c != n || !at.Equal(end) {
		t.Errorf("Count: got %d, %v (%v); want %d, %v", c, at, err, n, end)
	}
}
