package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
	"github.com/callgate/callgate/store/redis"
)

// defaultDataDir is where the embedded store lives unless --data says otherwise, relative to
// the working directory.
const defaultDataDir = "data"

// storeFileName is the embedded store's file inside the data directory.
const storeFileName = "callgate.db"

// openStore opens the store the setting names: "bolt" (or "") is the embedded store in
// dataDir, creating the directory (0700) and the file (0600) on first use; only one process
// may hold it open, another gets an error saying the database is locked. A redis:// URL
// (rediss://, redis+sentinel://, redis+cluster://) opens the shared Redis store with rc's
// prefix, pool and timeouts; it does not wait for Redis to answer. What go-redis logs of
// its own goes to logger.
func openStore(setting, dataDir string, rc config.RedisConfig, logger *slog.Logger) (store.Store, error) {
	if setting == "" || setting == config.StoreBolt {
		return bolt.Open(filepath.Join(dataDir, storeFileName))
	}
	if err := config.ValidateStoreURL(setting); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	redis.RouteLibraryLogs(logger)
	return redis.Open(redis.Options{
		URL: setting, KeyPrefix: rc.KeyPrefix, PoolSize: rc.PoolSize, MinIdleConns: rc.MinIdleConns,
		DialTimeout: time.Duration(rc.DialTimeout), ReadTimeout: time.Duration(rc.ReadTimeout),
		WriteTimeout: time.Duration(rc.WriteTimeout), PoolTimeout: time.Duration(rc.PoolTimeout),
		TLSCAFile: rc.TLSCAFile,
	})
}

// openStore opens the configured store, wrapped when a test asks (cli.wrapStore).
func (c *cli) openStore(cfg config.Config, logger *slog.Logger) (store.Store, error) {
	st, err := openStore(cfg.Store, cfg.DataDir, cfg.Redis, logger)
	if err != nil || c.wrapStore == nil {
		return st, err
	}
	return c.wrapStore(st), nil
}

// storeName says where a store keeps its data, for messages: the embedded file's path, or
// the Redis key prefix.
func storeName(s cliStore) string {
	switch s := s.(type) {
	case *socketStore:
		return "the running gateway's store (through " + s.path + ")"
	case *bolt.Store:
		return s.Path()
	case *redis.Store:
		return "Redis (keys " + s.Prefix() + "*)"
	}
	return "the store"
}

// securityOptions turns the security: section into the guard's options.
func securityOptions(cfg config.Config) guard.Options {
	o := guard.Options{
		RevocationFailOpen: cfg.Security.RevocationOnStoreError != "closed",
		FailureWindow:      time.Duration(cfg.Security.SigninFailureWindow),
	}
	if p := cfg.Security.SigninMaxFailuresPerUsername; p != nil {
		o.MaxFailuresPerUsername = *p
	}
	if p := cfg.Security.SigninMaxFailuresPerAddress; p != nil {
		o.MaxFailuresPerAddress = *p
	}
	if p := cfg.Security.EmailSendsPerAddress; p != nil {
		o.EmailSendsPerAddress = *p
	}
	if p := cfg.Security.EmailSendsPerClient; p != nil {
		o.EmailSendsPerClient = *p
	}
	o.EmailSendWindow = time.Duration(cfg.Security.EmailSendWindow)
	// Failed sign-ins are counted per real client behind the same trusted proxies the
	// reverse proxy believes. config.Validate has refused a malformed CIDR already, so an
	// error here cannot happen; counting the TCP peer would be the safe fallback anyway.
	if addrs, err := clientaddr.New(cfg.Proxy.TrustedProxies); err == nil {
		o.Addresses = addrs
	}
	return o
}
