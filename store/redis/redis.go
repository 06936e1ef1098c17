// Package redis is callgate's shared store for many gateway replicas: users, sessions,
// revocations, rate-limit counters, locks and second factors in Redis, through go-redis's
// UniversalClient (one node, Sentinel or Cluster).
//
// Every key starts with "{prefix}:", so several gateways can share one Redis under
// different prefixes. The braces are a Cluster hash tag: all of one gateway's keys live in
// one hash slot, which is what lets every write that spans several keys (a user and its
// indexes, a session and its per-user index) run as one Lua script, atomically, on Cluster
// too. Auth data is small; one shard holds it easily.
//
// This package must never report a backend failure as store.ErrNotFound: an error reaching
// Redis wraps store.ErrUnavailable, so a caller can fail closed instead of treating a
// session as missing. It never stores a session token, only its hash (store.SessionID).
package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callgate/callgate/store"
)

// DefaultKeyPrefix is the key prefix when Options.KeyPrefix is empty.
const DefaultKeyPrefix = "callgate"

// Options configure Open. Zero durations and sizes keep go-redis's defaults, or the value
// given in the URL's query.
type Options struct {
	// URL selects the deployment:
	//   redis://[user:password@]host:port[/db]            one node
	//   rediss://…                                         one node over TLS
	//   redis+sentinel://host:port[,host:port…]/?master_name=NAME   Sentinel (rediss+sentinel for TLS)
	//   redis+cluster://host:port[,host:port…]             Cluster (rediss+cluster for TLS)
	// Query parameters are go-redis's (dial_timeout=2s, pool_size=20, …).
	URL string
	// KeyPrefix namespaces every key; gateways that must not share data use different ones.
	KeyPrefix string
	// PoolSize is the number of connections per node; MinIdleConns are kept open.
	PoolSize, MinIdleConns int
	// DialTimeout bounds connecting; ReadTimeout and WriteTimeout bound one command;
	// PoolTimeout bounds waiting for a free connection when the pool is busy.
	DialTimeout, ReadTimeout, WriteTimeout, PoolTimeout time.Duration
	// TLSCAFile is a PEM file of the certificate authorities that sign the Redis servers'
	// certificates (and, with Sentinel, the sentinels'), for a private CA; the system roots
	// are no longer trusted then. Empty trusts the system roots. It needs a rediss:// URL.
	TLSCAFile string
}

// Store is a store.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb    goredis.UniversalClient
	prefix string // "{callgate}:"
}

var _ store.Store = (*Store)(nil)

// Open parses o.URL and returns a Store. It does not wait for Redis: a server that is down
// now makes the first command fail with store.ErrUnavailable, and later commands succeed
// once it is back.
func Open(o Options) (*Store, error) {
	rdb, err := newClient(o)
	if err != nil {
		return nil, fmt.Errorf("open redis store: %w", err)
	}
	return New(rdb, o.KeyPrefix), nil
}

// New wraps an existing client. keyPrefix "" means DefaultKeyPrefix. Close closes rdb.
func New(rdb goredis.UniversalClient, keyPrefix string) *Store {
	if keyPrefix == "" {
		keyPrefix = DefaultKeyPrefix
	}
	return &Store{rdb: rdb, prefix: "{" + keyPrefix + "}:"}
}

// newClient builds a single-node, Sentinel or Cluster client from the URL's scheme.
func newClient(o Options) (goredis.UniversalClient, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("store URL: %w", errors.New("not a URL"))
	}
	base, mode, _ := strings.Cut(u.Scheme, "+")
	if base != "redis" && base != "rediss" {
		return nil, fmt.Errorf("store URL: want redis://, rediss://, redis+sentinel:// or redis+cluster://, got %s://", u.Scheme)
	}
	// go-redis parses one host and takes the others as addr= parameters.
	hosts := strings.Split(u.Host, ",")
	u.Scheme, u.Host = base, hosts[0]
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	u.RawQuery = q.Encode()
	raw := u.String()
	switch mode {
	case "":
		if len(hosts) > 1 {
			return nil, errors.New("store URL: several hosts need redis+sentinel:// or redis+cluster://")
		}
		opt, err := goredis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("store URL: %w", err)
		}
		if err := trustCA(opt.TLSConfig, o.TLSCAFile); err != nil {
			return nil, err
		}
		applyPool(&opt.PoolSize, &opt.MinIdleConns, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout, o)
		return goredis.NewClient(opt), nil
	case "sentinel":
		opt, err := goredis.ParseFailoverURL(raw)
		if err != nil {
			return nil, fmt.Errorf("store URL: %w", err)
		}
		if opt.MasterName == "" {
			return nil, errors.New("store URL: Sentinel needs ?master_name=NAME")
		}
		if base == "rediss" && opt.TLSConfig == nil {
			opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err := trustCA(opt.TLSConfig, o.TLSCAFile); err != nil {
			return nil, err
		}
		applyPool(&opt.PoolSize, &opt.MinIdleConns, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout, o)
		return goredis.NewFailoverClient(opt), nil
	case "cluster":
		opt, err := goredis.ParseClusterURL(raw)
		if err != nil {
			return nil, fmt.Errorf("store URL: %w", err)
		}
		if err := trustCA(opt.TLSConfig, o.TLSCAFile); err != nil {
			return nil, err
		}
		applyPool(&opt.PoolSize, &opt.MinIdleConns, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout, o)
		return goredis.NewClusterClient(opt), nil
	}
	return nil, fmt.Errorf("store URL: unknown mode %q in %s://", mode, base+"+"+mode)
}

// trustCA makes cfg trust only the certificate authorities in the PEM file caFile, so a
// Redis behind a private CA can be verified instead of having verification turned off.
// cfg is nil when the URL does not ask for TLS; a CA file then is a mistake worth refusing
// rather than ignoring, since the operator meant the connection to be encrypted.
func trustCA(cfg *tls.Config, caFile string) error {
	if caFile == "" {
		return nil
	}
	if cfg == nil {
		return errors.New("store URL: a TLS CA file needs rediss://, rediss+sentinel:// or rediss+cluster://")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("read Redis TLS CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("read Redis TLS CA file %s: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	return nil
}

func applyPool(pool, minIdle *int, dial, read, write, poolWait *time.Duration, o Options) {
	for _, v := range []struct {
		dst *int
		v   int
	}{{pool, o.PoolSize}, {minIdle, o.MinIdleConns}} {
		if v.v > 0 {
			*v.dst = v.v
		}
	}
	for _, v := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{dial, o.DialTimeout}, {read, o.ReadTimeout}, {write, o.WriteTimeout}, {poolWait, o.PoolTimeout}} {
		if v.v > 0 {
			*v.dst = v.v
		}
	}
}

// Client returns the underlying client (tests use it to inspect keys).
func (s *Store) Client() goredis.UniversalClient { return s.rdb }

// Prefix returns the literal prefix of every key, e.g. "{callgate}:".
func (s *Store) Prefix() string { return s.prefix }

// Close closes the client and its connections.
func (s *Store) Close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("close redis store: %w", err)
	}
	return nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return wrap("ping", err)
	}
	return nil
}

func (s *Store) key(parts ...string) string { return s.prefix + strings.Join(parts, ":") }

// wrap names the operation and classifies err: redis.Nil is store.ErrNotFound, an error
// reply from the server is a plain error, and anything else (connection refused, timeout,
// pool exhausted, context done) is store.ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, goredis.Nil) {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	var reply goredis.Error
	if errors.As(err, &reply) && !isConnectionReply(err) {
		return fmt.Errorf("%s: redis: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
}

// isConnectionReply spots the server replies that mean "not available right now" rather
// than "bad command": a loading replica, a failover in progress, a read-only replica.
func isConnectionReply(err error) bool {
	msg := err.Error()
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
