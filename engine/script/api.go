package script

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/callgate/callgate/store"
)

// Undefined, used as a value in an argument map, makes the key present on the JS object
// with the value undefined (NextAuth passes `{token, session: undefined}` to jwt on a plain
// session read, and scripts may inspect the key set).
var Undefined = undefinedValue{}

type undefinedValue struct{}

// Null, used as a typed argument's value (JWTArgs.Session, SessionArgs.NewSession), makes
// the key present with the value null, where a Go nil leaves the key out (or passes
// undefined). In an argument map a nil value is null already.
var Null = nullValue{}

type nullValue struct{}

// Options say where a generation comes from and what its scripts may reach.
type Options struct {
	// Dir is the scripts directory. Imports are confined to it.
	Dir string
	// Entry is the entry file relative to Dir. Empty means auth.config.ts, else auth.config.js,
	// else a NextAuth route file where a Next.js app keeps it (defaultEntry).
	Entry string
	// Env is what the scripts see as process.env: only the variables the operator listed.
	Env map[string]string
	// Secrets are the session secrets the gateway runs with, when they are settled (by the
	// operator, or by the script that started the gateway); nil when the script may still
	// choose them. A script that sets `secret` must then set these (nextauth_compat.go).
	Secrets []string
	// Users backs the built-in module callgate/store (users.findOne). May be nil: then
	// findOne throws "no user store configured".
	Users store.Users
	// Factors backs factors.list in callgate/store: the passkeys, TOTP enrolment and
	// recovery codes a user has. May be nil: then factors.list throws "no store is
	// configured".
	Factors store.Factors
	// Logger receives console.* output (tagged with the callback name) and script errors.
	Logger *slog.Logger
	// PoolSize bounds the runtimes of the callbacks that run on the request path
	// (authorized, session, jwt on session reads, redirect, events.session); 0 means
	// GOMAXPROCS*2.
	PoolSize int
	// SignInPoolSize bounds the runtimes of the sign-in callbacks (authorize, profile,
	// signIn, jwt as a sign-in makes the token, the other events), apart from PoolSize's so
	// that a burst of sign-ins cannot stall the request path; 0 means half of PoolSize, at
	// least 1.
	SignInPoolSize int
	// Timeouts is the per-call deadline; a name missing from PerCallback uses Default. No
	// deadline is longer than regexp2's match timeout, 30 s (regexp.go says why).
	Timeouts Timeouts
	// MaxCallStackSize bounds JS recursion; 0 means 1000.
	MaxCallStackSize int
	// MaxResultBytes bounds the JSON size of what a callback returns (the token jwt builds,
	// the session body, authorize's user); 0 means 64 KiB. A larger result fails the call
	// with KindLimit.
	MaxResultBytes int
	// HeapGuard, when set, interrupts the callbacks running while the process heap is past
	// its ceiling. One guard serves every generation of a process.
	HeapGuard *HeapGuard
	// Fetch configures the fetch global. With no allowed host every fetch is refused.
	Fetch FetchOptions
	// Observer, when set, is told about every call and every wait for a runtime (metrics).
	Observer Observer
	// Tracer, when set, is told about every callback call with its arguments and result
	// (tracer.go): the inspector and OpenTelemetry listen here.
	Tracer Tracer
}

// Observer receives measurements from the script host. Implementations must be safe for
// concurrent use and fast: they run on the call path.
type Observer interface {
	// ObserveCall is told about every finished call: the callback name ("callbacks.jwt",
	// "authorize", "events.signIn"), its duration and its error (nil, or an *Error).
	ObserveCall(callback string, d time.Duration, err error)
	// ObservePoolWait is told how long a call waited to get a runtime.
	ObservePoolWait(d time.Duration)
}

// Timeouts are call deadlines. PerCallback keys are "authorize", "signIn", "jwt",
// "session", "redirect", "events.signIn", ...
type Timeouts struct {
	Default     time.Duration
	PerCallback map[string]time.Duration
}

// Config is the static part of the auth config's default export (NextAuth's authOptions),
// read and validated once when a generation loads.
type Config struct {
	Providers        []Provider
	Pages            Pages
	Session          SessionOptions
	JWT              JWTOptions
	UseSecureCookies *bool // nil: decided by the URL scheme
	Theme            Theme
	// Factors turns on second factors and passkeys (config_factors.go); the zero value is
	// off, and the gateway then is NextAuth exactly.
	Factors FactorOptions
	// Secret is the script's `secret` (NextAuth's option) as a list in AUTH_SECRET's format,
	// the first encrypting; nil when the script sets none. It is never a different list from
	// Options.Secrets.
	Secret []string
}

// Provider is one sign-in method: Type is "credentials", "oauth", "oidc" or "passkey"
// (WebAuthn; at most one per config).
type Provider struct {
	ID          string // defaults to the type ("credentials", "passkey")
	Name        string // defaults to "Credentials", "Passkey"
	Type        string
	Credentials []CredentialField // in declaration order
	// OAuth is set for "oauth" and "oidc" providers (oauth_providers.go).
	OAuth *OAuthProvider
	// Email is set for "email" providers (email_provider.go).
	Email *EmailProvider
}

// CredentialField is one input of a credentials provider's form
// (`credentials: {username: {label: "Username", type: "text", placeholder: "jsmith"}}`).
type CredentialField struct {
	Name        string
	Label       string
	Type        string
	Placeholder string
}

// Pages moves built-in pages to the app's own URLs (NextAuth `pages`). Empty means built-in.
type Pages struct {
	SignIn        string
	SignOut       string
	Error         string
	VerifyRequest string
	NewUser       string
	// Challenge and Factors are callgate's: the app's own second-factor challenge page and
	// sign-in methods page, which run the JSON endpoints (docs/factors.md).
	Challenge string
	Factors   string
}

// SessionOptions mirrors NextAuth's `session`.
type SessionOptions struct {
	Strategy  string        // "jwt" (default) or "database"
	MaxAge    time.Duration // default 30 days
	UpdateAge time.Duration // default 24 hours
	// AbsoluteMaxAge bounds a session from its sign-in, however often it is renewed; 0
	// (the default, NextAuth's behaviour) means no bound: a session lives as long as it is
	// used within MaxAge.
	AbsoluteMaxAge time.Duration
}

// JWTOptions mirrors NextAuth's `jwt`.
type JWTOptions struct {
	MaxAge time.Duration // default 30 days, independent of Session.MaxAge (NextAuth quirk)
}

// Theme mirrors NextAuth's `theme` for the built-in pages.
type Theme struct {
	ColorScheme string // "auto" (default), "light", "dark"
	BrandColor  string
	Logo        string
	ButtonText  string
}

// ErrorKind classifies a failed script call or load. At load, a syntax error or a refused
// import is KindThrown with Name "SyntaxError" or "ImportError", an invalid default export
// is KindInvalidResult with Name "ConfigError", and a timeout in the top-level code is
// KindTimeout.
type ErrorKind int

const (
	// KindThrown: the script threw (or a returned promise rejected).
	KindThrown ErrorKind = iota + 1
	// KindTimeout: the call passed its deadline and was interrupted.
	KindTimeout
	// KindInvalidResult: the callback returned a value of the wrong shape.
	KindInvalidResult
	// KindInternal: stack overflow, a host panic, or a runtime that could not be had.
	KindInternal
	// KindLimit: the call passed a limit other than its deadline: the heap ceiling, or a
	// result larger than MaxResultBytes.
	KindLimit
)

func (k ErrorKind) String() string {
	switch k {
	case KindThrown:
		return "thrown"
	case KindTimeout:
		return "timeout"
	case KindInvalidResult:
		return "invalid result"
	case KindInternal:
		return "internal"
	case KindLimit:
		return "limit"
	}
	return "unknown"
}

// Error is a failed callback call or a failed load. File, Line and Column point into the
// user's own source (through the bundle's source map), 1-based.
type Error struct {
	Callback   string // "callbacks.jwt", "authorize", "events.signIn"; empty for load errors
	Kind       ErrorKind
	Message    string // the JS error message (or a description of the failure)
	Name       string // the JS error name ("Error", "TypeError", ...) when thrown
	File       string // path relative to the scripts directory
	Line       int
	Column     int
	SourceLine string // the offending line of the user's source, when known
	Stack      string // the JS stack, when known
	// Public is true when the script threw on purpose (a plain Error or a string): NextAuth
	// shows such a message to the end user (error=<message>). Runtime errors (TypeError,
	// ReferenceError, ...), timeouts and invalid results are never public.
	Public bool
	Err    error // the underlying Go error, if any

	bundler bool // reported by the bundler: the scripts did not bundle (FromBundler)
}

// FromBundler reports whether the bundler found the problem (a file that does not parse, an
// import that cannot be resolved or is not allowed): the program then never ran, so the
// config was not read. A SyntaxError the program throws when it runs is not one.
func (e *Error) FromBundler() bool { return e.bundler }

func (e *Error) Error() string {
	where := ""
	if e.File != "" {
		where = fmt.Sprintf(" at %s:%d:%d", e.File, e.Line, e.Column)
	}
	who := e.Callback
	if who == "" {
		who = "load"
	}
	return fmt.Sprintf("%s: %s: %s%s", who, e.Kind, e.Message, where)
}

func (e *Error) Unwrap() error { return e.Err }

// Errors lists the *Error values in err: each member of a joined error (errors.Join, as
// Load returns for several problems found at once) in order, or err itself. An error that
// is no *Error anywhere yields none.
func Errors(err error) []*Error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	var se *Error
	if errors.As(err, &se) {
		return []*Error{se}
	}
	return nil
}
