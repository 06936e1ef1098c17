package redis_test

// These tests run the store against deployments other than one plain node: a Cluster, a
// Sentinel-managed master with a replica (including a failover), and a TLS-only server
// behind a private CA. Each test starts its own redis-server processes on free loopback
// ports in a temporary directory and kills them when it ends.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/redis"
	"github.com/callgate/callgate/store/storetest"
)

// waitFor polls cond until it returns nil or the timeout passes, then fails the test with
// cond's last error.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	testkit.WaitFor(t, what, timeout, cond)
}

// openTopology opens a store on url under a fresh prefix and closes it when the test ends.
// The servers are the test's own, so no keys need deleting.
func openTopology(t *testing.T, o redis.Options) *redis.Store {
	t.Helper()
	o.KeyPrefix = testkit.UniquePrefix("callgate-topology")
	s, err := redis.Open(o)
	if err != nil {
		t.Fatalf("Open(%q): %v", o.URL, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// startCluster starts three master nodes, joins them with redis-cli --cluster create and
// waits until every node reports cluster_state:ok. It returns the nodes' addresses.
func startCluster(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	var addrs []string
	for range 3 {
		port := testkit.FreePort(t, true)
		testkit.StartRedisServer(t, dir, port, "--port", strconv.Itoa(port), "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"), "--cluster-node-timeout", "2000")
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		node := goredis.NewClient(&goredis.Options{Addr: addr})
		waitFor(t, "cluster_state:ok on "+addr, 15*time.Second, func() error {
			info, err := node.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return errors.New(firstLine(info))
			}
			return nil
		})
		node.Close()
	}
	return addrs
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

func TestCluster(t *testing.T) {
	testkit.RequireRedisTools(t, "redis-server", "redis-cli")
	addrs := startCluster(t)
	url := "redis+cluster://" + strings.Join(addrs, ",")
	open := func(t *testing.T) store.Store { return openTopology(t, redis.Options{URL: url}) }

	t.Run("Conformance", func(t *testing.T) { storetest.TestAll(t, open) })
	t.Run("FactorReplicas", func(t *testing.T) {
		storetest.TestFactorReplicas(t, func(t *testing.T) []store.Store {
			prefix := testkit.UniquePrefix("callgate-topology")
			var replicas []store.Store
			for range 2 {
				s, err := redis.Open(redis.Options{URL: url, KeyPrefix: prefix})
				if err != nil {
					t.Fatalf("Open(%q): %v", url, err)
				}
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
				replicas = append(replicas, s)
			}
			return replicas
		})
	})

	t.Run("OneSlotOneNode", func(t *testing.T) {
		s := openTopology(t, redis.Options{URL: url})
		ctx := context.Background()
		u, err := s.CreateUser(ctx, store.User{Username: "ada", Email: "ada@example.com", PasswordHash: bcryptHash})
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if err := s.CreateSession(ctx, store.Session{ID: store.SessionID("tok"), UserID: u.ID, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		enrolFactors(t, s, u.ID)
		cc := s.Client().(*goredis.ClusterClient)
		var mu sync.Mutex
		perNode := map[string][]string{}
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
			keys, err := node.Keys(ctx, s.Prefix()+"*").Result()
			mu.Lock()
			defer mu.Unlock()
			if len(keys) > 0 {
				perNode[node.Options().Addr] = keys
			}
			return err
		})
		if err != nil {
			t.Fatalf("list keys on every master: %v", err)
		}
		if len(perNode) != 1 {
			t.Fatalf("masters holding the gateway's keys: got %d (%v), want 1", len(perNode), perNode)
		}
		for _, keys := range perNode {
			if len(keys) < 8 {
				t.Errorf("keys: got %v, want the user, its indexes, the session and the factors", keys)
			}
		}
	})

	// The cluster must really refuse a script over keys of different slots, or the
	// atomicity checks below would prove nothing about the hash tag.
	t.Run("CrossSlotScriptRefused", func(t *testing.T) {
		s := openTopology(t, redis.Options{URL: url})
		ctx := context.Background()
		script := "redis.call('SET', KEYS[1], '1'); redis.call('SET', KEYS[2], '1'); return 1"
		tests := []struct {
			name    string
			keys    []string
			wantErr string
		}{
			{"same hash tag", []string{s.Prefix() + "a", s.Prefix() + "b"}, ""},
			{"no hash tag", []string{"callgate-untagged:a", "callgate-untagged:b"}, "CROSSSLOT"},
		}
		for _, tt := range tests {
			err := s.Client().Eval(ctx, script, tt.keys).Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("%s: got %v, want the script to run", tt.name, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%s: got %v, want an error containing %s", tt.name, err, tt.wantErr)
			}
		}
	})

	t.Run("MultiKeyWriteAtomic", func(t *testing.T) {
		s := openTopology(t, redis.Options{URL: url})
		ctx := context.Background()
		if _, err := s.CreateUser(ctx, store.User{Username: "first", Email: "shared@example.com", PasswordHash: bcryptHash}); err != nil {
			t.Fatalf("CreateUser first: %v", err)
		}
		// A user whose email is taken must leave no trace: had the username index been
		// written before the email check failed, "second" would now be found or taken.
		_, err := s.CreateUser(ctx, store.User{Username: "second", Email: "shared@example.com", PasswordHash: bcryptHash})
		if !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("CreateUser with a taken email: got %v, want ErrDuplicate", err)
		}
		if _, err := s.FindUser(ctx, store.UserQuery{Username: "second"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FindUser second after the refused create: got %v, want ErrNotFound", err)
		}
		if _, err := s.CreateUser(ctx, store.User{Username: "second", Email: "second@example.com", PasswordHash: bcryptHash}); err != nil {
			t.Errorf("CreateUser second with its own email: got %v, want nil", err)
		}

		// Many replicas racing for one username: exactly one wins, and no loser's email
		// index survives.
		const racers = 16
		var wg sync.WaitGroup
		errs := make([]error, racers)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.CreateUser(ctx, store.User{Username: "contended", Email: fmt.Sprintf("racer%d@example.com", i), PasswordHash: bcryptHash})
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
			t.Fatalf("racers that created %q: got %d, want 1", "contended", won)
		}
		winner, err := s.FindUser(ctx, store.UserQuery{Username: "contended"})
		if err != nil {
			t.Fatalf("FindUser contended: %v", err)
		}
		for i := range racers {
			email := fmt.Sprintf("racer%d@example.com", i)
			got, err := s.FindUser(ctx, store.UserQuery{Email: email})
			switch {
			case email == winner.Email && (err != nil || got.ID != winner.ID):
				t.Errorf("FindUser by the winner's email: got %v, %v, want user %s", got.ID, err, winner.ID)
			case email != winner.Email && !errors.Is(err, store.ErrNotFound):
				t.Errorf("FindUser by loser email %s: got %v, want ErrNotFound", email, err)
			}
		}
	})
}

// enrolFactors gives userID a passkey, a TOTP enrolment and recovery codes.
func enrolFactors(t *testing.T, s store.Store, userID string) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreatePasskey(ctx, store.Passkey{ID: []byte("credential-" + userID), UserID: userID, PublicKey: []byte{1}}); err != nil {
		t.Fatalf("CreatePasskey: %v", err)
	}
	if err := s.SetTOTP(ctx, store.TOTPSecret{UserID: userID, Sealed: []byte("sealed")}); err != nil {
		t.Fatalf("SetTOTP: %v", err)
	}
	if err := s.SetRecoveryCodes(ctx, userID, [][]byte{[]byte("h1"), []byte("h2")}); err != nil {
		t.Fatalf("SetRecoveryCodes: %v", err)
	}
}

// bcryptHash is a well-formed bcrypt hash; the store checks the format, not the password.
const bcryptHash = "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe."

// sentinelMaster is the name the test's sentinel monitors.
const sentinelMaster = "callgate-test"

func TestSentinel(t *testing.T) {
	testkit.RequireRedisTools(t, "redis-server")
	dir := t.TempDir()
	masterPort, replicaPort, sentinelPort := testkit.FreePort(t, false), testkit.FreePort(t, false), testkit.FreePort(t, false)
	// Without the diskless-sync delay (5s by default) the replica syncs at once, in either
	// direction after the failover.
	noDelay := []string{"--repl-diskless-sync-delay", "0"}
	testkit.StartRedisServer(t, dir, masterPort, append([]string{"--port", strconv.Itoa(masterPort)}, noDelay...)...)
	testkit.StartRedisServer(t, dir, replicaPort, append([]string{"--port", strconv.Itoa(replicaPort), "--replicaof", "127.0.0.1", strconv.Itoa(masterPort)}, noDelay...)...)

	// A sentinel rewrites its config file, so it gets a file of its own rather than flags.
	conf := filepath.Join(dir, "sentinel.conf")
	confText := fmt.Sprintf("port %d\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %[2]s 1000\nsentinel failover-timeout %[2]s 10000\n",
		sentinelPort, sentinelMaster, masterPort)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.StartRedisServer(t, dir, sentinelPort, conf, "--sentinel")

	ctx := context.Background()
	replica := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + strconv.Itoa(replicaPort)})
	defer replica.Close()
	waitFor(t, "replica in sync with the master", 15*time.Second, func() error {
		info, err := replica.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return errors.New("master_link_status is not up")
		}
		return nil
	})
	sentinel := goredis.NewSentinelClient(&goredis.Options{Addr: "127.0.0.1:" + strconv.Itoa(sentinelPort)})
	defer sentinel.Close()
	// A failover needs a replica the sentinel has discovered (from the master's INFO).
	waitFor(t, "sentinel knows the replica", 15*time.Second, func() error {
		replicas, err := sentinel.Replicas(ctx, sentinelMaster).Result()
		if err != nil {
			return err
		}
		for _, r := range replicas {
			if r["port"] == strconv.Itoa(replicaPort) && !strings.Contains(r["flags"], "down") && !strings.Contains(r["flags"], "disconnected") {
				return nil
			}
		}
		return fmt.Errorf("replicas: %v", replicas)
	})

	url := fmt.Sprintf("redis+sentinel://127.0.0.1:%d/?master_name=%s", sentinelPort, sentinelMaster)
	open := func(t *testing.T) store.Store { return openTopology(t, redis.Options{URL: url}) }
	t.Run("Conformance", func(t *testing.T) { storetest.TestAll(t, open) })

	t.Run("Failover", func(t *testing.T) {
		s := openTopology(t, redis.Options{URL: url, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
		before, err := s.CreateUser(ctx, store.User{Username: "before", Email: "before@example.com", PasswordHash: bcryptHash})
		if err != nil {
			t.Fatalf("CreateUser before the failover: %v", err)
		}
		// The promoted replica must hold the write: wait until it has replicated.
		if err := s.Client().Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
			t.Fatalf("WAIT for the replica: %v", err)
		}
		if err := sentinel.Failover(ctx, sentinelMaster).Err(); err != nil {
			t.Fatalf("SENTINEL FAILOVER: %v", err)
		}
		wantMaster := strconv.Itoa(replicaPort)
		waitFor(t, "sentinel reports the replica as master", 15*time.Second, func() error {
			addr, err := sentinel.GetMasterAddrByName(ctx, sentinelMaster).Result()
			if err != nil {
				return err
			}
			if len(addr) != 2 || addr[1] != wantMaster {
				return fmt.Errorf("master is %v, want port %s", addr, wantMaster)
			}
			return nil
		})
		// The same store, not reopened: its writes reach the new master once go-redis has
		// followed the switch. Until then a write may meet the demoted master (READONLY),
		// which the store reports as unavailable; nothing else is acceptable.
		var after store.User
		waitFor(t, "a write after the failover", 15*time.Second, func() error {
			u, err := s.CreateUser(ctx, store.User{Username: "after", Email: "after@example.com", PasswordHash: bcryptHash})
			if err != nil && !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("CreateUser after the failover: got %v, want success or ErrUnavailable while switching", err)
			}
			after = u
			return err
		})
		for _, want := range []store.User{before, after} {
			got, err := s.FindUser(ctx, store.UserQuery{Username: want.Username})
			if err != nil || got.ID != want.ID {
				t.Errorf("FindUser %s after the failover: got %q, %v, want %q", want.Username, got.ID, err, want.ID)
			}
		}
		// The write landed on the promoted node, not on the old master.
		promoted := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + wantMaster})
		defer promoted.Close()
		role, err := promoted.Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 || role[0] != "master" {
			t.Errorf("ROLE of the promoted node: got %v, %v, want master", role, err)
		}
		n, err := promoted.Exists(ctx, keysOf(t, promoted, s.Prefix())...).Result()
		if err != nil || n == 0 {
			t.Errorf("gateway keys on the promoted node: got %d, %v, want some", n, err)
		}
	})
}

// keysOf lists a node's keys under prefix, failing the test when there are none.
func keysOf(t *testing.T, c *goredis.Client, prefix string) []string {
	t.Helper()
	keys, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %s* on %s: got %v, %v, want some", prefix, c.Options().Addr, keys, err)
	}
	return keys
}

func TestTLS(t *testing.T) {
	testkit.RequireRedisTools(t, "redis-server")
	dir := t.TempDir()
	ca := testkit.NewCA(t, dir, "trusted")
	other := testkit.NewCA(t, dir, "other")
	port := testkit.FreePort(t, false)
	testkit.StartRedisServer(t, dir, port, ca.RedisTLSArgs(port)...)
	addr := "127.0.0.1:" + strconv.Itoa(port)

	t.Run("Conformance", func(t *testing.T) {
		storetest.TestAll(t, func(t *testing.T) store.Store {
			return openTopology(t, redis.Options{URL: "rediss://" + addr, TLSCAFile: ca.CAFile})
		})
	})

	t.Run("Trust", func(t *testing.T) {
		tests := []struct {
			name    string
			url     string
			caFile  string
			wantErr string // "" = Ping succeeds
		}{
			{"private CA trusted", "rediss://" + addr, ca.CAFile, ""},
			{"system roots only", "rediss://" + addr, "", "certificate signed by unknown authority"},
			{"another CA", "rediss://" + addr, other.CAFile, "certificate signed by unknown authority"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := openTopology(t, redis.Options{URL: tt.url, TLSCAFile: tt.caFile, DialTimeout: time.Second})
				err := s.Ping(context.Background())
				if tt.wantErr == "" {
					if err != nil {
						t.Fatalf("Ping: got %v, want nil", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("Ping: got %v, want ErrUnavailable containing %q", err, tt.wantErr)
				}
			})
		}
	})
}

// TestTLSCAFileOptions checks the CA file option's refusals, which need no server.
func TestTLSCAFileOptions(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := testkit.NewCA(t, dir, "opts")
	tests := []struct {
		url, caFile, wantErr string
	}{
		{"rediss://127.0.0.1:6380", ca.CAFile, ""},
		{"rediss+sentinel://127.0.0.1:26379/?master_name=m", ca.CAFile, ""},
		{"rediss+cluster://127.0.0.1:7000,127.0.0.1:7001", ca.CAFile, ""},
		{"redis://127.0.0.1:6379", ca.CAFile, "needs rediss://"},
		{"redis+sentinel://127.0.0.1:26379/?master_name=m", ca.CAFile, "needs rediss://"},
		{"redis+cluster://127.0.0.1:7000", ca.CAFile, "needs rediss://"},
		{"rediss://127.0.0.1:6380", filepath.Join(dir, "missing.pem"), "read Redis TLS CA file"},
		{"rediss://127.0.0.1:6380", notPEM, "no PEM certificate"},
	}
	for _, tt := range tests {
		s, err := redis.Open(redis.Options{URL: tt.url, TLSCAFile: tt.caFile})
		if s != nil {
			s.Close()
		}
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Open(%q, CA %s): got %v, want nil", tt.url, filepath.Base(tt.caFile), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Open(%q, CA %s): got %v, want an error containing %q", tt.url, filepath.Base(tt.caFile), err, tt.wantErr)
		}
	}
}
