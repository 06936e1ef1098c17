package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// StoreBolt is the Store value of the embedded store (the default).
const StoreBolt = "bolt"

// RedisConfig tunes the Redis store (store: redis://…).
type RedisConfig struct {
	// KeyPrefix namespaces every key, so several gateways can share one Redis; replicas of
	// one gateway use the same prefix. Default "callgate".
	KeyPrefix string `yaml:"key_prefix"`
	// PoolSize is the number of connections per Redis node. 0 = go-redis's default
	// (10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// MinIdleConns are kept open for bursts. Default 0.
	MinIdleConns int `yaml:"min_idle_conns"`
	// DialTimeout bounds connecting. Default 2s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound one command; a session read waits at most this
	// long before answering 503. Default 1s each.
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	// PoolTimeout bounds waiting for a free connection. Default 2s.
	PoolTimeout Duration `yaml:"pool_timeout"`
	// TLSCAFile is a PEM file of the certificate authorities that sign the Redis servers'
	// (and sentinels') certificates, for a Redis behind a private CA; only these are
	// trusted then. Empty = the system roots. Needs a rediss:// store URL.
	TLSCAFile string `yaml:"tls_ca_file"`
}

// SecurityConfig holds sign-out-everywhere and brute-force settings.
type SecurityConfig struct {
	// RevocationOnStoreError is what a jwt session does while the gateway cannot load
	// revocations because the store is unreachable: "open" accepts the token (logged),
	// "closed" answers 503. Database sessions always fail closed. Default "open".
	RevocationOnStoreError string `yaml:"revocation_on_store_error"`
	// SigninMaxFailuresPerUsername: failed credentials sign-ins one username may have
	// within SigninFailureWindow before further attempts get 429. 0 turns it off. Default 5.
	SigninMaxFailuresPerUsername *int `yaml:"signin_max_failures_per_username"`
	// SigninMaxFailuresPerAddress: the same per client address. 0 turns it off. Default 50.
	SigninMaxFailuresPerAddress *int `yaml:"signin_max_failures_per_address"`
	// SigninFailureWindow is the counting window and the cool-down. Default 15m.
	SigninFailureWindow Duration `yaml:"signin_failure_window"`
	// EmailSendsPerAddress: sign-in e-mails one address may be sent within EmailSendWindow;
	// past it, requests are answered as if sent and nothing is sent. 0 turns it off.
	// Default 5.
	EmailSendsPerAddress *int `yaml:"email_sends_per_address"`
	// EmailSendsPerClient: the same per client address. 0 turns it off. Default 20.
	EmailSendsPerClient *int `yaml:"email_sends_per_client"`
	// EmailSendWindow is the e-mail counting window. Default 1h.
	EmailSendWindow Duration `yaml:"email_send_window"`
}

func (c *Config) applyStoreDefaults() {
	if c.Store == "" {
		c.Store = StoreBolt
	}
	if c.Redis.KeyPrefix == "" {
		c.Redis.KeyPrefix = "callgate"
	}
	if c.Redis.DialTimeout == 0 {
		c.Redis.DialTimeout = Duration(2 * time.Second)
	}
	if c.Redis.ReadTimeout == 0 {
		c.Redis.ReadTimeout = Duration(time.Second)
	}
	if c.Redis.WriteTimeout == 0 {
		c.Redis.WriteTimeout = Duration(time.Second)
	}
	if c.Redis.PoolTimeout == 0 {
		c.Redis.PoolTimeout = Duration(2 * time.Second)
	}
	if c.Security.RevocationOnStoreError == "" {
		c.Security.RevocationOnStoreError = "open"
	}
	if c.Security.SigninMaxFailuresPerUsername == nil {
		n := 5
		c.Security.SigninMaxFailuresPerUsername = &n
	}
	if c.Security.SigninMaxFailuresPerAddress == nil {
		n := 50
		c.Security.SigninMaxFailuresPerAddress = &n
	}
	if c.Security.SigninFailureWindow == 0 {
		c.Security.SigninFailureWindow = Duration(15 * time.Minute)
	}
	if c.Security.EmailSendsPerAddress == nil {
		n := 5
		c.Security.EmailSendsPerAddress = &n
	}
	if c.Security.EmailSendsPerClient == nil {
		n := 20
		c.Security.EmailSendsPerClient = &n
	}
	if c.Security.EmailSendWindow == 0 {
		c.Security.EmailSendWindow = Duration(time.Hour)
	}
}

func (c *Config) validateStore() error {
	if err := ValidateStoreURL(c.Store); err != nil {
		return &Error{"store", err.Error()}
	}
	if strings.ContainsAny(c.Redis.KeyPrefix, "{}") {
		return &Error{"redis.key_prefix", "must not contain { or } (the prefix becomes a Cluster hash tag)"}
	}
	if c.Redis.TLSCAFile != "" && !strings.HasPrefix(c.Store, "rediss") {
		return &Error{"redis.tls_ca_file", "needs a TLS store URL (rediss://, rediss+sentinel:// or rediss+cluster://)"}
	}
	for name, v := range map[string]int{"redis.pool_size": c.Redis.PoolSize, "redis.min_idle_conns": c.Redis.MinIdleConns} {
		if v < 0 {
			return &Error{name, "must not be negative"}
		}
	}
	for name, v := range map[string]Duration{"redis.dial_timeout": c.Redis.DialTimeout, "redis.read_timeout": c.Redis.ReadTimeout,
		"redis.write_timeout": c.Redis.WriteTimeout, "redis.pool_timeout": c.Redis.PoolTimeout, "security.signin_failure_window": c.Security.SigninFailureWindow,
		"security.email_send_window": c.Security.EmailSendWindow} {
		if v < 0 {
			return &Error{name, "must be positive"}
		}
	}
	switch c.Security.RevocationOnStoreError {
	case "open", "closed":
	default:
		return &Error{"security.revocation_on_store_error", fmt.Sprintf("want open or closed, got %q", c.Security.RevocationOnStoreError)}
	}
	for name, p := range map[string]*int{"security.signin_max_failures_per_username": c.Security.SigninMaxFailuresPerUsername,
		"security.signin_max_failures_per_address": c.Security.SigninMaxFailuresPerAddress,
		"security.email_sends_per_address":         c.Security.EmailSendsPerAddress,
		"security.email_sends_per_client":          c.Security.EmailSendsPerClient} {
		if p != nil && *p < 0 {
			return &Error{name, "must not be negative (0 turns the limit off)"}
		}
	}
	return nil
}

// ValidateStoreURL checks a store setting: "bolt", or a redis://, rediss://,
// redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster:// URL.
func ValidateStoreURL(s string) error {
	if s == StoreBolt {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("want %q or a redis:// URL, got %q", StoreBolt, redactURL(s))
	}
	switch u.Scheme {
	case "redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster":
		return nil
	}
	return fmt.Errorf("want %q or a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL, got scheme %q", StoreBolt, u.Scheme)
}

// redactURL hides a password in a store URL for messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// RedactedStore is the store setting with any password hidden, for logs.
func (c *Config) RedactedStore() string { return redactURL(c.Store) }
