// Package engine runs the NextAuth v4 login lifecycle behind the /api/auth/* routes: it
// parses requests, checks CSRF, reads and renews session cookies, calls the user's
// callbacks through the current script generation and answers exactly as NextAuth v4 does
// on the wire (docs: nextauth-v4-wire.md).
//
// The engine owns everything that is easy to get wrong: CSRF, cookie names, flags and
// chunking, token crypto (through engine/token), and the final same-origin check on every
// redirect. Scripts only decide and shape data. The engine never trusts the Host or
// X-Forwarded-* headers for its origin: that comes from the configured URL.
package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
	"github.com/callgate/callgate/store"
)

// BasePath is where the auth routes live, as in NextAuth.
const BasePath = "/api/auth"

// Options configure an Engine.
type Options struct {
	// URL is the public origin (NEXTAUTH_URL): scheme and host, no path.
	URL *url.URL
	// Keys encrypt and decrypt session tokens; the first secret also hashes CSRF tokens.
	Keys *token.KeyRing
	// Generation is the script generation to serve first. SetGeneration swaps it later.
	Generation *script.Generation
	// Logger receives the NextAuth-style log codes (JWT_SESSION_ERROR, ...).
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means 1 MiB.
	MaxBodyBytes int64
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
	// Security tunes revocation checks and sign-in limits (revocation.go).
	Security SecurityOptions
}

// Engine serves /api/auth/* and the gateway's home page. It is safe for concurrent use.
type Engine struct {
	origin       string // e.g. "http://localhost:3000"
	base         string // origin + BasePath
	keys         *token.KeyRing
	log          *slog.Logger
	maxBodyBytes int64
	now          func() time.Time
	gen          atomic.Pointer[script.Generation]
	// cookieDomain and redirectOrigins: see Options (hosts.go).
	cookieDomain    string
	cookieSets      [2]cookie.Set // plain, secure; the options in them are shared: never write through them
	redirectOrigins map[string]bool
	// sessions caches decoded session cookies for the proxy's hot path (identity.go).
	sessions *sessionCache
	// stored holds what needs the store: database sessions, revocations, sign-in limits.
	stored *storeFeatures
	// oauth holds discovered providers, check-cookie keys and refresh coordination (oauth.go).
	oauth *oauthClient
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
		now:          o.Now,
	}
	e.base = e.origin + BasePath
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.maxBodyBytes == 0 {
		e.maxBodyBytes = 1 << 20
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.gen.Store(o.Generation)
	e.cookieDomain = o.CookieDomain
	e.cookieSets = buildCookieSets(o.CookieDomain)
	e.redirectOrigins = make(map[string]bool, len(o.RedirectOrigins))
	for _, origin := range o.RedirectOrigins {
		e.redirectOrigins[originOfString(origin)] = true
	}
	e.sessions = newSessionCache(sessionCacheSize)
	e.stored = newStoreFeatures(o.Store, o.Security, e.log, e.sessions)
	e.oauth = newOAuthClient(nil)
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
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(BasePath+"/", e.serveAuth)
	mux.HandleFunc(BasePath, e.serveAuth)
	mux.HandleFunc("/{$}", e.serveHome)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// A store outage is "degraded", not down: jwt sessions still work, and every replica
		// shares the store, so taking them all out of the load balancer would help nobody.
		st := e.StoreStatus(r.Context())
		status := "ok"
		if !st.OK() {
			status = "degraded"
		}
		storeJSON, _ := json.Marshal(st)
		fmt.Fprintf(w, `{"status":%q,"scripts":%q,"store":%s}`, status, e.Generation().Hash(), storeJSON)
	})
	return mux
}

// secureCookies follows NextAuth: on for https origins unless the config says otherwise.
func secureCookies(cfg *script.Config, origin string) bool {
	if cfg.UseSecureCookies != nil {
		return *cfg.UseSecureCookies
	}
	return strings.HasPrefix(origin, "https://")
}
