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
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
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
                                 every one decrypts (rotate without signing anyone out)
  AUTH_URL / NEXTAUTH_URL        the public URL (overridden by --url)

Flags:
`

// serveFlags are the command-line settings; they win over the environment and the file.
type serveFlags struct {
	listen, url, data, scripts, configFile string
	upstream                               string
	store                                  string
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
	fs.StringVar(&f.upstream, "upstream", "", "URL of one app to put behind the gateway, e.g. http://127.0.0.1:8080 (YAML routes: for more)")
	fs.Usage = func() {
		fmt.Fprint(c.stderr, serveUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	cfg, err := c.resolveConfig(f)
	if err != nil {
		return err
	}
	logger := newLogger(c.stderr, cfg.Log)
	tuneGC(c.getenv)

	secrets, err := c.loadSecrets(cfg, logger)
	if err != nil {
		return err
	}
	keys, err := token.NewKeyRing(secrets, "")
	if err != nil {
		return fmt.Errorf("session secret: %w", err)
	}
	st, err := openStore(cfg.Store, cfg.DataDir, cfg.Redis, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	logger.Info("store opened", "store", cfg.RedactedStore())
	scripts := newScriptHost(ctx, cfg, logger)
	defer scripts.close()
	sopts := scripts.options(cfg, scriptOptions(cfg, st, logger, c.getenv))
	gen, err := script.Load(ctx, sopts)
	if err != nil {
		return fmt.Errorf("load scripts from %s: %s", cfg.Scripts, describeScriptError(err))
	}
	defer gen.Close()
	if *cfg.DemoUser {
		if err := c.ensureDemoUser(ctx, st, logger); err != nil {
			return err
		}
	}
	publicURL, _ := config.ParseURL(cfg.URL)
	eng, err := engine.New(engine.Options{
		URL: publicURL, Keys: keys, Generation: gen, Logger: logger,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		CookieDomain: cfg.CookieDomain, RedirectOrigins: proxy.RedirectOrigins(publicURL.Scheme, cfg.Routes),
		Store: st, Security: securityOptions(cfg),
	})
	if err != nil {
		return err
	}
	if err := eng.WatchRevocations(ctx); err != nil {
		return fmt.Errorf("watch revocations: %w", err)
	}
	front, err := frontHandler(ctx, cfg, eng, logger)
	if err != nil {
		return err
	}
	if err := scripts.start(cfg, sopts, eng); err != nil {
		return err
	}
	front = scripts.handler(front)
	return serveHTTP(ctx, cfg, front, logger, c.stdout)
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
	if s := firstNonEmpty(c.getenv("AUTH_SECRET"), c.getenv("NEXTAUTH_SECRET")); s != "" {
		secrets := token.ParseSecrets(s)
		if len(secrets) == 0 {
			return nil, errors.New("AUTH_SECRET holds no secret")
		}
		return secrets, nil
	}
	if cfg.SecretFile != "" {
		data, err := os.ReadFile(cfg.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("config: secret_file: %w", err)
		}
		secrets := token.ParseSecrets(strings.TrimSpace(string(data)))
		if len(secrets) == 0 {
			return nil, fmt.Errorf("config: secret_file: %s holds no secret", cfg.SecretFile)
		}
		return secrets, nil
	}
	path := filepath.Join(cfg.DataDir, secretFileName)
	data, err := os.ReadFile(path)
	if err == nil {
		secrets := token.ParseSecrets(strings.TrimSpace(string(data)))
		if len(secrets) == 0 {
			return nil, fmt.Errorf("%s holds no secret: delete it to generate a new one", path)
		}
		logger.Warn("using the generated development secret; set AUTH_SECRET in production", "file", path)
		return secrets, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read generated secret: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("store generated secret: %w", err)
	}
	logger.Warn("no AUTH_SECRET set: generated a development secret; set AUTH_SECRET in production", "file", path)
	return []string{secret}, nil
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

func scriptOptions(cfg config.Config, users store.Users, logger *slog.Logger, getenv func(string) string) script.Options {
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
		Logger:           logger,
		PoolSize:         cfg.Script.PoolSize,
		Timeouts:         script.Timeouts{Default: time.Duration(cfg.Script.Timeout), PerCallback: per},
		MaxCallStackSize: cfg.Script.MaxCallStackSize,
	}
}

// describeScriptError formats a load failure as file:line:column, the message and the
// offending source line, so the operator can go straight to it.
func describeScriptError(err error) string {
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

// serveHTTP listens and serves until ctx ends, then shuts down gracefully: the listener
// closes at once and in-flight requests get the configured grace period.
func serveHTTP(ctx context.Context, cfg config.Config, h http.Handler, logger *slog.Logger, out io.Writer) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http"
	if cfg.Server.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(out, "callgate listening on %s://%s — open %s\n", scheme, ln.Addr(), cfg.URL)
	logger.Info("serving", "listen", ln.Addr().String(), "url", cfg.URL, "scripts", cfg.Scripts, "data", cfg.DataDir)
	errc := make(chan error, 1)
	go func() {
		if cfg.Server.TLSCert != "" {
			// ServeTLS turns HTTP/2 on (ALPN h2) next to HTTP/1.1.
			errc <- srv.ServeTLS(ln, cfg.Server.TLSCert, cfg.Server.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "grace", time.Duration(cfg.Server.ShutdownGrace).String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Server.ShutdownGrace))
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
