package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/inspect"
	"github.com/callgate/callgate/engine/proxy"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
	"github.com/callgate/callgate/store"
)

const serveUsage = `Usage: gateway serve [flags]

Runs the gateway. With no flags and no config file it listens on 127.0.0.1:3000 for
http://localhost:3000, keeps its data in ./data and runs the callbacks in ./scripts.

Environment:
  AUTH_SECRET / NEXTAUTH_SECRET  session secret(s), comma-separated; the first encrypts,
                                 every one decrypts (rotate without signing anyone out);
                                 without them, secret_file, else the auth config's secret
  AUTH_URL / NEXTAUTH_URL        the public URL (overridden by --url)

Flags:
`

// serveFlags are the command-line settings; they win over the environment and the file.
type serveFlags struct {
	listen, url, data, scripts, configFile string
	upstream                               string
	store                                  string
	// dev turns on what a developer's machine wants and a server must not: the inspector.
	dev bool
}

func (c *cli) runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	var f serveFlags
	fs.StringVar(&f.listen, "listen", "", "address to listen on, host:port (default "+config.DefaultListen+")")
	fs.StringVar(&f.url, "url", "", "public URL of the gateway (default "+config.DefaultURL+")")
	fs.StringVar(&f.data, "data", "", "data directory: store and generated secret (default ./"+config.DefaultDataDir+")")
	fs.StringVar(&f.scripts, "scripts", "", "scripts directory holding auth.config.js or .ts (default ./"+config.DefaultScripts+")")
	fs.StringVar(&f.configFile, "config", "", "YAML configuration file (see docs/configuration.md)")
	fs.StringVar(&f.store, "store", "", "store: bolt (the embedded file in --data, default) or a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL shared by replicas")
	fs.BoolVar(&f.dev, "dev", false, "development mode: the live callback inspector at /-/inspector (loopback clients only unless "+inspectorTokenEnv+" is set)")
	fs.StringVar(&f.upstream, "upstream", "", "URL of one app to put behind the gateway, e.g. http://127.0.0.1:8080 (YAML routes: for more)")
	rest, err := c.parseFlags(fs, serveUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return c.usageError(fs, serveUsage, "serve takes no arguments, got %q", rest)
	}
	cfg, err := c.resolveConfig(f)
	if err != nil {
		return err
	}
	logger := newLogger(c.stderr, cfg.Log)
	tuneGC(c.getenv)
	tel, err := setupTelemetry(ctx, cfg, c.getenv)
	if err != nil {
		return err
	}
	if tel != nil {
		logger = slog.New(tel.LogHandler(logger.Handler()))
		logger.Info("tracing on: spans go over OTLP", "endpoint", tel.Endpoint, "protocol", tel.Protocol)
	}

	configured, err := c.configuredSecrets(cfg)
	if err != nil {
		return err
	}
	st, err := c.openStore(cfg, logger)
	if err != nil {
		return err
	}
	st = tel.Store(st, storeSystem(cfg.Store))
	// Deferred first, so it runs last: every component has stopped and every generation
	// is closed before the store goes.
	defer st.Close()
	logger.Info("store opened", "store", cfg.RedactedStore())
	publicURL, _ := config.ParseURL(cfg.URL)
	insp, err := newInspector(cfg, f.dev, c.getenv, publicURL)
	if err != nil {
		return err
	}
	scripts := newScriptHost(cfg, logger)
	scripts.otel = tel.Tracer()
	sopts := scripts.options(cfg, scriptOptions(cfg, st, st, logger, c.getenv))
	// A script's `secret` (a NextAuth config's) must be the operator's secret when there is
	// one; without one it is the gateway's.
	sopts.Secrets = configured
	sopts.Tracer = script.JoinTracers(sopts.Tracer, insp.tracer())
	gen, err := script.Load(ctx, sopts)
	if err != nil {
		return fmt.Errorf("load scripts from %s: %s", cfg.Scripts, describeScriptError(err))
	}
	defer shutdownGeneration(gen)
	secrets, err := c.sessionSecrets(cfg, configured, gen.Config().Secret, logger)
	if err != nil {
		return err
	}
	// The key ring is derived once: a reload whose script sets another secret is refused.
	sopts.Secrets = secrets
	keys, err := token.NewKeyRing(secrets, "", token.WithClock(c.now))
	if err != nil {
		return fmt.Errorf("session secret: %w", err)
	}
	sessionTokens, err := openSessionTokens(cfg, secrets, keys, true, c.now)
	if err != nil {
		return err
	}
	logger.Info("session tokens", describeSessionTokens(sessionTokens)...)
	if *cfg.DemoUser {
		if err := c.ensureDemoUser(ctx, st, logger); err != nil {
			return err
		}
	}
	eng, err := engine.New(engine.Options{
		URL: publicURL, Keys: keys, Tokens: sessionTokens, Generation: gen, Logger: logger,
		MaxBodyBytes: cfg.Server.MaxBodyBytes, BodyTimeout: time.Duration(cfg.Server.RequestBodyTimeout),
		CookieDomain: cfg.CookieDomain, RedirectOrigins: proxy.RedirectOrigins(publicURL.Scheme, cfg.Routes),
		Store: st, Security: securityOptions(cfg), Now: c.now, Inspector: insp.in,
	})
	if err != nil {
		return err
	}
	assertionKeys, err := openAssertionKeys(cfg, eng, logger, c.now)
	if err != nil {
		return err
	}
	if err := scripts.prepare(cfg, sopts, eng); err != nil {
		return err
	}
	// Deferred after shutdownGeneration, so it runs before it: the live generation, then the
	// first one (the same one when no reload happened; Shutdown twice is harmless).
	defer scripts.close()
	ops, err := newOpsEndpoints(cfg, publicURL, eng, scripts)
	if err != nil {
		return err
	}
	surface := gatewaySurface(surfaceParts{auth: eng.Handler(), jwks: assertionKeys, sessionJWKS: sessionJWKSHandler(sessionTokens), ops: ops, inspector: insp})
	front, err := frontHandler(cfg, eng, assertionKeys, surface, tel, logger, c.getenv, c.now)
	if err != nil {
		return err
	}
	var admin http.Handler
	if cfg.Server.AdminListen != "" {
		admin = adminHandler(scripts.metrics, surface)
	}
	var lc lifecycle
	// First, so it stops last: the spans of the requests the server drains are sent.
	lc.add(telemetryComponent(tel, logger))
	lc.add(
		component{
			name: "revocation watch",
			start: func(ctx context.Context) error {
				if err := eng.WatchRevocations(ctx); err != nil {
					return fmt.Errorf("watch revocations: %w", err)
				}
				return nil
			},
			close: eng.Close,
		},
		component{name: "assertion key rotation", run: func(ctx context.Context) error {
			assertionKeys.Run(ctx)
			return nil
		}},
	)
	if cfg.Store == "" || cfg.Store == config.StoreBolt {
		lc.add(adminSocketComponent(cfg.DataDir, st, logger))
	}
	lc.add(scripts.components()...)
	lc.add(httpComponents(cfg, publicHandler(scripts.metrics, tel, surface, ops, front), admin, logger, c.stdout)...)
	if insp.in != nil {
		// Added last, so stopped first: the event streams end before the servers drain.
		lc.add(component{name: "inspector", run: func(ctx context.Context) error {
			<-ctx.Done()
			insp.in.Close()
			return nil
		}})
		logger.Info("the inspector is on", "path", inspect.PagePath, "credential", insp.access.Token != "")
	}
	return lc.run(ctx)
}

// tuneGC sets the collector for a gateway's allocation pattern unless the operator chose
// with GOGC and GOMEMLIMIT: the live heap is small (keys, compiled scripts, a few JS
// runtimes) and nearly everything a request allocates dies with it, so collecting at 4×
// the live heap instead of 2× saves about a third of the CPU of a session read. Under
// heavy load that lets the heap run up to 4× its live size; the soft limit caps it, so
// the collector works harder only when memory is actually high (bench/README.md has the
// figures).
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// defaultMemoryLimit is the Go runtime's soft memory limit when GOMEMLIMIT is unset. It is
// soft: a gateway whose live heap needs more (a huge session cache, many scripts) gets it,
// with the collector capped at about half the CPU, rather than failing.
const defaultMemoryLimit = 36 << 20

// resolveConfig merges, in rising precedence: defaults, the YAML file, the environment,
// the flags. The result is validated; an invalid field stops serve with its name.
func (c *cli) resolveConfig(f serveFlags) (config.Config, error) {
	var cfg config.Config
	if f.configFile != "" {
		var err error
		if cfg, err = config.LoadFile(f.configFile); err != nil {
			return cfg, err
		}
	}
	if u := firstNonEmpty(c.getenv("AUTH_URL"), c.getenv("NEXTAUTH_URL")); u != "" {
		cfg.URL = u
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{
		{&cfg.Listen, f.listen}, {&cfg.URL, f.url}, {&cfg.DataDir, f.data}, {&cfg.Scripts, f.scripts}, {&cfg.Store, f.store},
	} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if f.upstream != "" {
		cfg.Routes = append(cfg.Routes, upstreamRoute(f.upstream))
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func newLogger(w io.Writer, lc config.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// secretFileName is where a generated development secret is kept, inside the data directory.
const secretFileName = "secret"

// loadSecrets returns the session secrets: AUTH_SECRET, else NEXTAUTH_SECRET, else the
// configured secret file, else a secret generated once into the data directory (mode 0600)
// with a warning that this is for development.
func (c *cli) loadSecrets(cfg config.Config, logger *slog.Logger) ([]string, error) {
	secrets, generated, err := c.findSecrets(cfg)
	if err == nil {
		if generated {
			logger.Warn("using the generated development secret; set AUTH_SECRET in production", "file", filepath.Join(cfg.DataDir, secretFileName))
		}
		return secrets, nil
	}
	if !errors.Is(err, errNoSecret) {
		return nil, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(cfg.DataDir, secretFileName)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("store generated secret: %w", err)
	}
	logger.Warn("no AUTH_SECRET set: generated a development secret; set AUTH_SECRET in production", "file", path)
	return []string{secret}, nil
}

// configuredSecrets returns the secrets the operator configured (AUTH_SECRET, NEXTAUTH_SECRET
// or secret_file), nil when there are none (a generated development secret is not one).
func (c *cli) configuredSecrets(cfg config.Config) ([]string, error) {
	secrets, generated, err := c.findSecrets(cfg)
	if errors.Is(err, errNoSecret) || generated {
		return nil, nil
	}
	return secrets, err
}

// sessionSecrets returns the secrets serve runs with: the operator's, else the script's
// `secret`, else the generated development secret (loadSecrets).
func (c *cli) sessionSecrets(cfg config.Config, configured, fromScript []string, logger *slog.Logger) ([]string, error) {
	switch {
	case configured != nil:
		return configured, nil
	case fromScript != nil:
		logger.Info("session secret: the secret option of the auth config", "file", cfg.Scripts)
		return fromScript, nil
	}
	return c.loadSecrets(cfg, logger)
}

// readSecrets is loadSecrets for the commands that only read tokens: no secret is generated.
func (c *cli) readSecrets(cfg config.Config) ([]string, error) {
	secrets, _, err := c.findSecrets(cfg)
	if errors.Is(err, errNoSecret) {
		return nil, fmt.Errorf("no session secret: set AUTH_SECRET, or secret_file in the config, or point --data at the directory where gateway serve generated one")
	}
	return secrets, err
}

// errNoSecret: no secret is configured and none was generated yet.
var errNoSecret = errors.New("no session secret")

// findSecrets returns the configured secrets, or the generated one (generated true), or
// errNoSecret.
func (c *cli) findSecrets(cfg config.Config) (secrets []string, generated bool, err error) {
	if s := firstNonEmpty(c.getenv("AUTH_SECRET"), c.getenv("NEXTAUTH_SECRET")); s != "" {
		secrets := token.ParseSecrets(s)
		if len(secrets) == 0 {
			return nil, false, errors.New("AUTH_SECRET holds no secret")
		}
		return secrets, false, nil
	}
	if cfg.SecretFile != "" {
		data, err := os.ReadFile(cfg.SecretFile)
		if err != nil {
			return nil, false, fmt.Errorf("config: secret_file: %w", err)
		}
		secrets := token.ParseSecrets(strings.TrimSpace(string(data)))
		if len(secrets) == 0 {
			return nil, false, fmt.Errorf("config: secret_file: %s holds no secret", cfg.SecretFile)
		}
		return secrets, false, nil
	}
	path := filepath.Join(cfg.DataDir, secretFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, errNoSecret
	}
	if err != nil {
		return nil, false, fmt.Errorf("read generated secret: %w", err)
	}
	secrets = token.ParseSecrets(strings.TrimSpace(string(data)))
	if len(secrets) == 0 {
		return nil, false, fmt.Errorf("%s holds no secret: delete it to generate a new one", path)
	}
	return secrets, true, nil
}

// demoUsername is the user created on an empty store so a first run can sign in at once.
const demoUsername = "demo"

func (c *cli) ensureDemoUser(ctx context.Context, st store.Store, logger *slog.Logger) error {
	n, err := st.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("generate demo password: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(b[:])
	hash, err := bcrypt.GenerateFromPassword([]byte(password), 10)
	if err != nil {
		return fmt.Errorf("hash demo password: %w", err)
	}
	if _, err := st.CreateUser(ctx, store.User{
		Username: demoUsername, Name: "Demo User", Email: "demo@example.com", Role: "admin", PasswordHash: string(hash),
	}); err != nil {
		return fmt.Errorf("create demo user: %w", err)
	}
	logger.Warn("created a demo user on the empty store; its password is shown only once", "username", demoUsername)
	fmt.Fprintf(c.stdout, "\n  Demo user created. Sign in with\n    username: %s\n    password: %s\n  (shown once; delete it with: gateway users delete --username %s)\n\n", demoUsername, password, demoUsername)
	return nil
}

func scriptOptions(cfg config.Config, users store.Users, factors store.Factors, logger *slog.Logger, getenv func(string) string) script.Options {
	env := map[string]string{}
	for _, name := range cfg.Env {
		if v := getenv(name); v != "" {
			env[name] = v
		}
	}
	per := map[string]time.Duration{}
	for k, v := range cfg.Script.Timeouts {
		per[k] = time.Duration(v)
	}
	return script.Options{
		Dir:              cfg.Scripts,
		Env:              env,
		Users:            users,
		Factors:          factors,
		Logger:           logger,
		PoolSize:         cfg.Script.PoolSize,
		SignInPoolSize:   cfg.Script.SignInPoolSize,
		Timeouts:         script.Timeouts{Default: time.Duration(cfg.Script.Timeout), PerCallback: per},
		MaxCallStackSize: cfg.Script.MaxCallStackSize,
	}
}

// describeScriptError formats a load failure as file:line:column, the message and the
// offending source line, so the operator can go straight to it.
func describeScriptError(err error) string {
	if all := script.Errors(err); len(all) > 1 {
		parts := make([]string, len(all))
		for i, e := range all {
			parts[i] = describeScriptError(e)
		}
		return strings.Join(parts, "\n")
	}
	var se *script.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	var b strings.Builder
	if se.File != "" {
		fmt.Fprintf(&b, "%s:%d:%d: ", se.File, se.Line, se.Column)
	}
	if se.Name != "" {
		b.WriteString(se.Name + ": ")
	}
	b.WriteString(se.Message)
	if se.File == "" && se.Err != nil && !strings.Contains(se.Message, se.Err.Error()) {
		b.WriteString(": " + se.Err.Error())
	}
	if se.SourceLine != "" {
		fmt.Fprintf(&b, "\n    %s", se.SourceLine)
		if se.Column > 0 {
			fmt.Fprintf(&b, "\n    %s^", strings.Repeat(" ", se.Column-1))
		}
	}
	return b.String()
}

// httpComponents are the admin listener (when admin is not nil: server.admin_listen, plain
// HTTP, for loopback or a private network) and the main server, in order of start. Both
// addresses are bound in Start, before either serves (lifecycle), so a gateway that answers
// on one answers on both, and a busy admin port stops serve before it starts. Each server
// stops gracefully: its listener closes at once and in-flight requests get the configured
// grace period.
func httpComponents(cfg config.Config, h, admin http.Handler, logger *slog.Logger, out io.Writer) []component {
	// One grace for both servers: the main one stops first and the admin one after it, and
	// together they take no longer than server.shutdown_grace.
	var once sync.Once
	var deadline time.Time
	shutdownBy := func() time.Time {
		once.Do(func() { deadline = time.Now().Add(time.Duration(cfg.Server.ShutdownGrace)) })
		return deadline
	}
	newServer := func(h http.Handler) *httpServer {
		// Requests do not end with serve's context (SIGTERM): they get the shutdown grace.
		// Once it is over their contexts end, which interrupts the script calls they run (a
		// call stuck where no interrupt reaches is answered and abandoned by the script
		// host) and so lets the handlers return.
		reqCtx, stopRequests := context.WithCancel(context.Background())
		return &httpServer{grace: time.Duration(cfg.Server.ShutdownGrace), shutdownBy: shutdownBy, stopRequests: stopRequests, log: logger, srv: &http.Server{
			Handler: h,
			// Headers must arrive within the deadline (config defaults it to 10 s, never 0);
			// bodies have their own: engine (server.request_body_timeout) and proxy
			// (proxy.request_body_timeout). There is no ReadTimeout for the whole request:
			// it would also cut proxied WebSockets and long uploads.
			ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
			IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return reqCtx },
		}}
	}
	var cs []component
	if admin != nil {
		a := newServer(admin)
		cs = append(cs, component{
			name: "admin listener",
			start: func(context.Context) error {
				var err error
				if a.ln, err = net.Listen("tcp", cfg.Server.AdminListen); err != nil {
					return fmt.Errorf("listen on server.admin_listen %s: %w", cfg.Server.AdminListen, err)
				}
				return nil
			},
			run: func(ctx context.Context) error {
				logger.Info("serving the operational endpoints in full on the admin listener", "admin_listen", a.ln.Addr().String())
				return a.run(ctx, a.srv.Serve)
			},
			close: a.close,
		})
	}
	m := newServer(h)
	return append(cs, component{
		name: "server",
		start: func(context.Context) error {
			var err error
			if m.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
				return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
			}
			return nil
		},
		run: func(ctx context.Context) error {
			scheme, serve := "http", m.srv.Serve
			if cfg.Server.TLSCert != "" {
				// ServeTLS turns HTTP/2 on (ALPN h2) next to HTTP/1.1.
				scheme = "https"
				serve = func(ln net.Listener) error { return m.srv.ServeTLS(ln, cfg.Server.TLSCert, cfg.Server.TLSKey) }
			}
			fmt.Fprintf(out, "callgate listening on %s://%s — open %s\n", scheme, m.ln.Addr(), cfg.URL)
			logger.Info("serving", "listen", m.ln.Addr().String(), "url", cfg.URL, "scripts", cfg.Scripts, "data", cfg.DataDir)
			return m.run(ctx, serve)
		},
		close: m.close,
	})
}

// httpServer is one listener and its server.
type httpServer struct {
	srv          *http.Server
	ln           net.Listener
	grace        time.Duration
	shutdownBy   func() time.Time   // the end of the grace, shared with the other server
	stopRequests context.CancelFunc // ends the contexts of this server's requests
	log          *slog.Logger
}

// close releases the listener and the requests' context. The server has closed its
// listener by then; closing it again covers a Run that never began (another component
// failed to start).
func (s *httpServer) close() {
	_ = s.ln.Close()
	s.stopRequests()
}

// run serves until ctx ends, then shuts down within the grace; a listener that fails (a
// TLS key that does not load, say) returns its error at once, which stops the others.
func (s *httpServer) run(ctx context.Context, serve func(net.Listener) error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "listen", s.ln.Addr().String(), "grace", s.grace.String())
	shutdownCtx, cancel := context.WithDeadline(context.Background(), s.shutdownBy())
	defer cancel()
	err := s.srv.Shutdown(shutdownCtx)
	if err != nil {
		// The grace is over with requests still running: stop them and their connections
		// rather than wait for them (serve then closes the generation, bounded too).
		s.stopRequests()
		_ = s.srv.Close()
		err = fmt.Errorf("shutdown: %w", err)
	}
	<-errc // Serve has returned: no goroutine of this server outlives run
	return err
}

// scriptsCloseWait bounds how long closing a generation at shutdown waits for the requests
// still holding it. By then their contexts have ended (serveHTTP), so their script calls
// stop within the script host's abandon grace; the bound is for a request stuck elsewhere.
const scriptsCloseWait = 2 * time.Second

// shutdownGeneration closes gen at shutdown without waiting longer than scriptsCloseWait.
func shutdownGeneration(gen *script.Generation) {
	ctx, cancel := context.WithTimeout(context.Background(), scriptsCloseWait)
	defer cancel()
	_ = gen.Shutdown(ctx)
}
