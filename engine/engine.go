// Package engine runs the NextAuth v4 login lifecycle behind the /api/auth/* routes: it
// parses requests, checks CSRF, reads and renews session cookies, calls the user's
// callbacks through the current script generation and answers exactly as NextAuth v4 does
// on the wire (docs/wire.md).
//
// The engine owns everything that is easy to get wrong: CSRF, cookie names, flags and
// chunking, token crypto (through engine/token), and the final same-origin check on every
// redirect. Scripts only decide and shape data. The engine never trusts the Host or
// X-Forwarded-* headers for its origin: that comes from the configured URL.
package engine

import (
	"errors"
	"github.com/callgate/callgate/engine/inspect"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/engine/oauth"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
	"github.com/callgate/callgate/engine/token"
	"github.com/callgate/callgate/engine/urlpolicy"
	"github.com/callgate/callgate/store"
)

// BasePath is where the auth routes live, as in NextAuth.
const BasePath = "/api/auth"

// Options configure an Engine.
type Options struct {
	// URL is the public origin (NEXTAUTH_URL): scheme and host, no path.
	URL *url.URL
	// Keys hold the secrets: the first hashes CSRF tokens, all of them key the OAuth check
	// cookies, and they encrypt session tokens unless Tokens is set.
	Keys *token.KeyRing
	// Tokens encode and decode session tokens (session.token.format); nil means Keys (jwe).
	Tokens token.Codec
	// Generation is the script generation to serve first. SetGeneration swaps it later.
	Generation *script.Generation
	// Logger receives the NextAuth-style log codes (JWT_SESSION_ERROR, ...).
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means 1 MiB.
	MaxBodyBytes int64
	// BodyTimeout bounds how long a client may take to send a request body, from the moment
	// the handler starts; a slower one gets 408 (bodydeadline.go). 0 means 10 s.
	BodyTimeout time.Duration
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// CookieDomain, when set, scopes the session and callback-url cookies to a parent
	// domain (".example.com") so apps on several subdomains share one sign-in.
	CookieDomain string
	// RedirectOrigins are origins besides the gateway's own ("https://app.example.com")
	// that a callbackUrl may point at: the hosts of the configured routes.
	RedirectOrigins []string
	// Store keeps database sessions, revocations and sign-in failure counters. nil turns
	// those off: the jwt strategy works without it, the database strategy does not.
	Store store.Store
	// Security tunes revocation checks and sign-in limits (engine/guard).
	Security guard.Options
	// Inspector, when set, is told about every auth request's flow (engine/inspect); the
	// same inspector must be the script host's Tracer for the callbacks to join it.
	Inspector *inspect.Inspector
}

// Engine serves /api/auth/* and the gateway's home page. It is safe for concurrent use.
//
// Its methods are the NextAuth HTTP surface (the route handlers) and the public API. Every
// other job is a small type it builds once in New: pages renders the HTML pages (pages.go),
// callbackURLs decides callback URLs and checks redirects (redirects.go), csrf mints and
// verifies CSRF tokens (csrf.go), checkCookies carries the OAuth checks (oauth.go),
// signInLimiter applies the sign-in limits (signinlimit.go), cookieSets holds the cookie
// names and options (hosts.go) and liveGeneration the serving script generation
// (generation.go). What needs only the request is authRequest's (request.go, response.go).
// Back-channel logout from OpenID Connect providers is a route of its own, outside
// NextAuth's init (backchannel.go).
type Engine struct {
	origin       string // e.g. "http://localhost:3000"
	base         string // origin + BasePath
	keys         *token.KeyRing
	log          *slog.Logger
	maxBodyBytes int64
	bodyTimeout  time.Duration
	now          func() time.Time
	gen          liveGeneration // generation.go
	// cookieDomain: see Options (hosts.go).
	cookieDomain string
	cookieSets   cookieSets // plain, secure (hosts.go)
	// urls decides callback URLs and checks every redirect (redirects.go).
	urls *callbackURLs
	// csrf mints and verifies CSRF tokens (csrf.go).
	csrf *csrf
	// sessions are the session strategies (engine/session) and their caches.
	sessions *session.Sessions
	// stored holds the store for what else needs it (storefeatures.go).
	stored *storeFeatures
	// guard holds the store-backed protections: revocations and sign-in limits.
	guard *guard.Guard
	// limiter applies the sign-in limits to credentials sign-ins (signinlimit.go).
	limiter *signInLimiter
	// oauth is the OAuth client: discovered providers, linking, refresh coordination.
	oauth *oauth.Client
	// checks writes and reads the OAuth check cookies (oauth.go).
	checks *checkCookies
	// pages renders the built-in HTML pages (pages.go).
	pages *pages
	// factors runs second factors and passkeys (factors.go, factor_routes.go).
	factors *factors
	// inspector is nil unless the inspector is on (inspection.go).
	inspector *inspect.Inspector
}

// New checks the options and returns an Engine.
func New(o Options) (*Engine, error) {
	if o.URL == nil || o.URL.Host == "" {
		return nil, errors.New("engine: a public URL is required")
	}
	if o.Keys == nil {
		return nil, errors.New("engine: a key ring is required")
	}
	if o.Generation == nil {
		return nil, errors.New("engine: a script generation is required")
	}
	e := &Engine{
		origin:       o.URL.Scheme + "://" + o.URL.Host,
		keys:         o.Keys,
		log:          o.Logger,
		maxBodyBytes: o.MaxBodyBytes,
		bodyTimeout:  o.BodyTimeout,
		now:          o.Now,
		inspector:    o.Inspector,
	}
	e.base = e.origin + BasePath
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.maxBodyBytes == 0 {
		e.maxBodyBytes = 1 << 20
	}
	if e.bodyTimeout == 0 {
		e.bodyTimeout = 10 * time.Second
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.gen.Store(o.Generation)
	e.cookieDomain = o.CookieDomain
	e.cookieSets = buildCookieSets(o.CookieDomain)
	e.urls = &callbackURLs{
		origin: e.origin, base: e.base, log: e.log,
		allowed: urlpolicy.NewRedirects(append([]string{e.origin}, o.RedirectOrigins...)...),
	}
	e.csrf = &csrf{keys: e.keys}
	// The guard's clock is the real one, not Now: revocation expiries are set on the
	// store's clock, as the sign-in windows are.
	e.guard = guard.New(o.Store, o.Security, e.log, time.Now)
	tokens := o.Tokens
	if tokens == nil {
		tokens = e.keys
	}
	e.sessions = session.New(session.Options{
		Keys: tokens, Store: o.Store, Now: e.now, Log: e.log,
		Revoked: revokedHook(e.guard.Revocations), Refresh: e.refreshToken, RefreshDueAt: refreshDueAt,
		RevokeProvider: e.revokeProviderSession, ProviderRevoked: providerRevokedHook(e.guard.Revocations),
		KeptClaims: []string{oauth.SessionClaim, session.AMRClaim, session.AuthTimeClaim},
	})
	e.stored = newStoreFeatures(o.Store)
	// A revocation must reach the proxy's session caches at once, not when they expire.
	e.guard.Revocations.OnChange(e.sessions.Clear)
	e.limiter = &signInLimiter{limits: e.guard.Limits, addrs: o.Security.Addresses, log: e.log, urls: e.urls}
	e.oauth = oauth.New(e.oauthOptions(o.Store))
	e.checks = newCheckCookies(e.keys, e.now)
	e.pages = &pages{origin: e.origin, base: e.base, log: e.log}
	f, err := newFactors(e, o)
	if err != nil {
		return nil, err
	}
	e.factors = f
	return e, nil
}

// SetGeneration makes g serve every request that starts from now on. Requests already
// running finish on the generation they started with.
func (e *Engine) SetGeneration(g *script.Generation) { e.gen.Store(g) }

// Generation returns the generation serving new requests.
func (e *Engine) Generation() *script.Generation { return e.gen.Load() }

// Origin returns the public origin, e.g. "http://localhost:3000".
func (e *Engine) Origin() string { return e.origin }

// Handler returns the HTTP handler for the whole gateway: /api/auth/* and the home page.
// The operational endpoints (/healthz, /-/status, /metrics) are not here: which host or
// listener may see them, and in how much detail, is the binary's decision (cmd/gateway),
// and a handler that answered them on every host would leak them to every route host.
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+BackchannelLogoutPath+"/{provider}", e.serveBackchannelLogout)
	mux.HandleFunc(BasePath+"/", e.serveAuth)
	mux.HandleFunc(BasePath, e.serveAuth)
	mux.HandleFunc("/{$}", e.serveHome)
	return mux
}

// secureCookies follows NextAuth: on for https origins unless the config says otherwise.
func secureCookies(cfg *script.Config, origin string) bool {
	if cfg.UseSecureCookies != nil {
		return *cfg.UseSecureCookies
	}
	return strings.HasPrefix(origin, "https://")
}
