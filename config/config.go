// Package config reads the operator's YAML file and merges it with flags and environment
// variables into one validated Config for `gateway serve`.
//
// The struct fields below are the reference for docs/configuration.md: every field has a
// yaml name, a default and a doc comment. This package never reads secrets from the YAML
// file into logs, and never starts anything: it only parses and validates.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults for a gateway started with no configuration at all.
const (
	DefaultListen   = "127.0.0.1:3000"
	DefaultURL      = "http://localhost:3000"
	DefaultDataDir  = "data"
	DefaultScripts  = "scripts"
	DefaultBasePath = "/api/auth"
)

// Config is the whole operator configuration of `gateway serve`.
type Config struct {
	// Listen is the address the HTTP server binds, host:port. Default 127.0.0.1:3000.
	Listen string `yaml:"listen"`
	// URL is the public origin browsers use (NEXTAUTH_URL), e.g. https://auth.example.com.
	// Cookies get the __Secure-/__Host- prefixes when it is https. Default http://localhost:3000,
	// or http://localhost:<port> when only Listen is set.
	URL string `yaml:"url"`
	// DataDir holds the embedded store (callgate.db) and, when no secret is configured, the
	// generated development secret. Default ./data.
	DataDir string `yaml:"data"`
	// Scripts is the directory holding auth.config.js (or .ts). Default ./scripts.
	Scripts string `yaml:"scripts"`
	// SecretFile names a file whose content is the secret list (same format as AUTH_SECRET:
	// comma-separated, the first encrypts). AUTH_SECRET / NEXTAUTH_SECRET take precedence.
	SecretFile string `yaml:"secret_file"`
	// Env lists the environment variables scripts may read through process.env. Nothing
	// else of the environment is visible to scripts.
	Env []string `yaml:"env"`
	// Script limits for user code.
	Script ScriptConfig `yaml:"script"`
	// Server timeouts and limits.
	Server ServerConfig `yaml:"server"`
	// Log settings.
	Log LogConfig `yaml:"log"`
	// DemoUser creates a demo user with a random one-time password on an empty store.
	// Default true.
	DemoUser *bool `yaml:"demo_user"`
	// Store is where users, sessions, revocations and sign-in counters live: "bolt" (the
	// embedded file in DataDir, one replica) or a Redis URL (redis://, rediss://,
	// redis+sentinel://, redis+cluster://) shared by many replicas. Default bolt.
	Store string `yaml:"store"`
	// Redis tunes the Redis store (config/store.go).
	Redis RedisConfig `yaml:"redis"`
	// Security holds sign-out-everywhere and brute-force settings (config/store.go).
	Security SecurityConfig `yaml:"security"`
	// Routes put apps behind the gateway (config/proxy.go). With none, the gateway serves
	// only its own endpoints and forward-auth.
	Routes []Route `yaml:"routes"`
	// Bearer lists the identity providers whose access tokens routes may accept.
	Bearer BearerConfig `yaml:"bearer"`
	// Proxy holds the reverse proxy and forward-auth settings.
	Proxy ProxyConfig `yaml:"proxy"`
	// Identity says which headers and assertion JWT tell the app who the user is.
	Identity IdentityConfig `yaml:"identity"`
	// Session is the session token's format and keys (config/session.go).
	Session SessionConfig `yaml:"session"`
	// CookieDomain, e.g. ".example.com", shares the session cookie with every subdomain so
	// routes on several hosts share one sign-in. Default: the gateway's own host only.
	CookieDomain string `yaml:"cookie_domain"`
	// Inspector is the live view of the callback lifecycle at /-/inspector (docs/operations.md).
	Inspector InspectorConfig `yaml:"inspector"`
}

// InspectorConfig turns the inspector on outside --dev. Its admin credential is never in
// the file: it is the CALLGATE_INSPECTOR_TOKEN environment variable, and without one the
// inspector answers loopback clients only, so serve refuses a listener that is not loopback.
type InspectorConfig struct {
	Enabled bool `yaml:"enabled"`
}

// ScriptConfig bounds what user callbacks may take.
type ScriptConfig struct {
	// Timeout is the default deadline of one callback call. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// Timeouts overrides Timeout per callback: keys "authorize", "signIn", "jwt", "session",
	// "redirect", "events.signIn", "events.signOut", "events.session".
	Timeouts map[string]Duration `yaml:"timeouts"`
	// PoolSize bounds how many JS runtimes the callbacks of the request path (authorized,
	// session, jwt on session reads, redirect) have at once. 0 = 2 × the number of CPUs.
	PoolSize int `yaml:"pool_size"`
	// SignInPoolSize bounds the JS runtimes of the sign-in callbacks (authorize, signIn, jwt
	// as a sign-in makes the token, events), kept apart so that a burst of sign-ins cannot
	// stall the request path. 0 = half of pool_size, at least 1.
	SignInPoolSize int `yaml:"signin_pool_size"`
	// MaxCallStackSize bounds JS recursion depth. Default 1000.
	MaxCallStackSize int `yaml:"max_call_stack_size"`
	// MaxResultBytes bounds the JSON size of what one callback returns (the token, the
	// session, authorize's user). Default 65536.
	MaxResultBytes int `yaml:"max_result_bytes"`
	// MaxHeapBytes is the heap ceiling: while the process heap is past it, running callbacks
	// are interrupted. 0 = 1 GiB; -1 turns the guard off. goja has no per-runtime memory
	// limit; callbacks are trusted code.
	MaxHeapBytes int64 `yaml:"max_heap_bytes"`
	// Watch reloads the scripts when a file in the directory changes. Default true.
	Watch *bool `yaml:"watch"`
	// TestOnReload runs the *.test.js / *.test.ts files of the scripts directory before a
	// reloaded generation may serve; a failing test keeps the previous one. Default true.
	TestOnReload *bool `yaml:"test_on_reload"`
	// Fetch bounds the fetch global.
	Fetch FetchConfig `yaml:"fetch"`
}

// FetchConfig bounds what callbacks may fetch.
type FetchConfig struct {
	// Allow lists the hosts fetch may reach: "api.example.com" (any port),
	// "api.example.com:8443" or "*.example.com". Empty (default): fetch is refused.
	Allow []string `yaml:"allow"`
	// Timeout bounds one fetch; the callback's deadline bounds it too. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// MaxResponseBytes bounds a response body. Default 1048576.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// ServerConfig holds HTTP server limits.
type ServerConfig struct {
	// ReadHeaderTimeout bounds how long a client may take to send request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ShutdownGrace is how long in-flight requests may run after SIGTERM. Default 15s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// MaxBodyBytes bounds request bodies of /api/auth/* routes. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// RequestBodyTimeout bounds how long a client may take to send the body of an /api/auth/*
	// request (counted from the end of its headers); a slower one is answered 408 and its
	// connection closed. Sign-in forms are a few hundred bytes, so the default 10s only ever
	// cuts off senders that stall on purpose. Proxied bodies have proxy.request_body_timeout.
	RequestBodyTimeout Duration `yaml:"request_body_timeout"`
	// AdminListen, host:port, is a second listener for operators only: /-/status, /metrics
	// and /healthz in full (the offending source line of a refused reload, store errors) and
	// nothing else. Bind it to loopback or a private network. Empty (default): no admin
	// listener; the public listener then serves the redacted forms and /metrics on the
	// gateway's own host.
	AdminListen string `yaml:"admin_listen"`
	// TLSCert and TLSKey are PEM files; with both set the gateway serves HTTPS (HTTP/2 on).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// LogConfig selects the log output.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Duration is a time.Duration written as a Go duration string in YAML ("5s", "1m30s").
type Duration time.Duration

// UnmarshalYAML accepts a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("want a duration such as \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"5s\", got %q", s)
	}
	*d = Duration(v)
	return nil
}

// Error is an invalid configuration value: it names the field and says why.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Field, e.Reason) }

// LoadFile parses a YAML file. Unknown fields are errors, so a typo never goes unnoticed.
func LoadFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config file: %w", err)
	}
	return Parse(data, path)
}

// Parse parses YAML configuration text; name is used in error messages.
func Parse(data []byte, name string) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return Config{}, fmt.Errorf("config %s: %s", name, strings.Join(te.Errors, "; "))
		}
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}

	return c, nil
}

// ApplyDefaults fills every unset field.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.URL == "" {
		c.URL = DefaultURL
		if _, port, err := net.SplitHostPort(c.Listen); err == nil && port != "3000" && port != "0" {
			c.URL = "http://localhost:" + port
		}
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Scripts == "" {
		c.Scripts = DefaultScripts
	}
	if c.Script.Timeout == 0 {
		c.Script.Timeout = Duration(5 * time.Second)
	}
	if c.Script.MaxCallStackSize == 0 {
		c.Script.MaxCallStackSize = 1000
	}
	if c.Script.MaxResultBytes == 0 {
		c.Script.MaxResultBytes = 64 << 10
	}
	if c.Script.MaxHeapBytes == 0 {
		c.Script.MaxHeapBytes = 1 << 30
	}
	if c.Script.Watch == nil {
		t := true
		c.Script.Watch = &t
	}
	if c.Script.TestOnReload == nil {
		t := true
		c.Script.TestOnReload = &t
	}
	if c.Script.Fetch.Timeout == 0 {
		c.Script.Fetch.Timeout = Duration(5 * time.Second)
	}
	if c.Script.Fetch.MaxResponseBytes == 0 {
		c.Script.Fetch.MaxResponseBytes = 1 << 20
	}
	if c.Server.ReadHeaderTimeout == 0 {
		c.Server.ReadHeaderTimeout = Duration(10 * time.Second)
	}
	if c.Server.IdleTimeout == 0 {
		c.Server.IdleTimeout = Duration(120 * time.Second)
	}
	if c.Server.ShutdownGrace == 0 {
		c.Server.ShutdownGrace = Duration(15 * time.Second)
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = 1 << 20
	}
	if c.Server.RequestBodyTimeout == 0 {
		c.Server.RequestBodyTimeout = Duration(10 * time.Second)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.DemoUser == nil {
		t := true
		c.DemoUser = &t
	}
	c.applyProxyDefaults()
	c.applyStoreDefaults()
	c.applySessionDefaults()
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks every field and returns the first problem as an *Error.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return &Error{"listen", fmt.Sprintf("want host:port, got %q", c.Listen)}
	}
	if _, err := ParseURL(c.URL); err != nil {
		return &Error{"url", err.Error()}
	}
	for i, name := range c.Env {
		if !envName.MatchString(name) {
			return &Error{fmt.Sprintf("env[%d]", i), fmt.Sprintf("not an environment variable name: %q", name)}
		}
	}
	if c.Script.Timeout < 0 {
		return &Error{"script.timeout", "must be positive"}
	}
	known := map[string]bool{"authorize": true, "signIn": true, "jwt": true, "session": true, "redirect": true,
		"authorized": true, "events.signIn": true, "events.signOut": true, "events.session": true}
	for k, v := range c.Script.Timeouts {
		if !known[k] {
			return &Error{"script.timeouts." + k, "not a callback name (authorize, signIn, jwt, session, redirect, events.signIn, events.signOut, events.session)"}
		}
		if v <= 0 {
			return &Error{"script.timeouts." + k, "must be positive"}
		}
	}
	if c.Script.PoolSize < 0 {
		return &Error{"script.pool_size", "must not be negative"}
	}
	if c.Script.SignInPoolSize < 0 {
		return &Error{"script.signin_pool_size", "must not be negative"}
	}
	if c.Script.MaxCallStackSize < 0 {
		return &Error{"script.max_call_stack_size", "must not be negative"}
	}
	if c.Script.MaxResultBytes < 0 {
		return &Error{"script.max_result_bytes", "must not be negative"}
	}
	if c.Script.MaxHeapBytes < -1 {
		return &Error{"script.max_heap_bytes", "must be a number of bytes, or -1 to turn the guard off"}
	}
	if c.Script.Fetch.Timeout < 0 {
		return &Error{"script.fetch.timeout", "must be positive"}
	}
	if c.Script.Fetch.MaxResponseBytes < 0 {
		return &Error{"script.fetch.max_response_bytes", "must not be negative"}
	}
	for i, h := range c.Script.Fetch.Allow {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return &Error{fmt.Sprintf("script.fetch.allow[%d]", i), fmt.Sprintf("want a host such as api.example.com, api.example.com:8443 or *.example.com, got %q", h)}
		}
	}
	if c.Server.MaxBodyBytes < 0 {
		return &Error{"server.max_body_bytes", "must not be negative"}
	}
	// A negative timeout would turn the limit off in net/http; off is not an option here.
	for field, d := range map[string]Duration{
		"server.read_header_timeout": c.Server.ReadHeaderTimeout, "server.request_body_timeout": c.Server.RequestBodyTimeout,
		"server.idle_timeout": c.Server.IdleTimeout, "server.shutdown_grace": c.Server.ShutdownGrace,
	} {
		if d < 0 {
			return &Error{field, "must be positive"}
		}
	}
	if a := c.Server.AdminListen; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return &Error{"server.admin_listen", fmt.Sprintf("want host:port, got %q", a)}
		}
		if a == c.Listen {
			return &Error{"server.admin_listen", "must differ from listen: the admin listener is a listener of its own"}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &Error{"log.level", fmt.Sprintf("want debug, info, warn or error, got %q", c.Log.Level)}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return &Error{"log.format", fmt.Sprintf("want text or json, got %q", c.Log.Format)}
	}
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		return &Error{"server.tls_cert", "tls_cert and tls_key must be set together"}
	}
	if err := c.validateStore(); err != nil {
		return err
	}
	if err := c.validateSession(); err != nil {
		return err
	}
	if err := c.validateProxy(); err != nil {
		return err
	}
	return c.validateBearer()
}

// ParseURL parses the public URL (NEXTAUTH_URL). Like NextAuth it accepts a value without a
// scheme (https is assumed); unlike NextAuth it refuses a path other than "/" or the default
// base path, because the gateway serves its routes at the root of its origin.
func ParseURL(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %q", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("want an http or https URL, got %q", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("no host in %q", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("want scheme://host[:port] only, got %q", raw)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if p != "" && p != DefaultBasePath {
		return nil, fmt.Errorf("the gateway serves at the root of its origin: path %q is not supported", u.Path)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
