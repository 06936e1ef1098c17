// Package script hosts the user's auth config (scripts/auth.config.js or .ts, shaped like
// NextAuth's authOptions) in goja: it bundles the scripts directory with esbuild, compiles
// it once per generation, validates the static configuration, and runs the callbacks
// (authorize, callbacks.*, events.*) on bounded pools of runtimes, one for sign-ins and one
// for the request path (pool.go), with a deadline per call that also ends a call stuck where
// the deadline's interrupt cannot reach (regexp.go). Each runtime's intrinsics and global
// object are frozen once the program's top level has run, so that no call can change what
// the next one sees (freeze.go).
//
// The host calls the callbacks through typed methods named by exported constants (JWT,
// Session, SignIn, Redirect, Authorized, Emit with an Event, Defines: hooks.go and cb_*.go),
// and a runtime whose call merely threw goes back to its pool (invoke says why).
//
// Values cross the boundary only as JSON-shaped copies: arguments become fresh plain JS
// objects and results come back through JSON.stringify, so a script can never hold or
// mutate Go memory. Scripts reach nothing of the host beyond console, process.env (the
// operator's allow-list), crypto.randomUUID, atob/btoa, fetch (to the operator's host
// allow-list only) and the built-in modules (the provider modules, bcryptjs, callgate/crypto
// and callgate/store). This package must never give scripts file or process access or network
// access beyond that allow-list, never apply NextAuth defaults for a missing callback (the
// engine does that), and never know about the gateway's HTTP routes or cookies.
//
// Generations are immutable; hot reload (package engine/reload) builds a new one beside the
// live one and swaps. A retired generation drains: requests pinned to it (Acquire/Release)
// and calls in flight finish on it, then its runtimes are released.
//
// Callbacks are trusted code: goja has no per-runtime memory limit, so the limits here
// (deadline, stack depth, result and console caps, the process-wide HeapGuard) bound
// mistakes, not attacks.
package script

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"github.com/callgate/callgate/store"
)

// Defaults for Options and Timeouts left at zero.
const (
	defaultTimeout   = 5 * time.Second
	defaultMaxStack  = 1000
	defaultMaxResult = 64 << 10
)

// Generation is everything built from one snapshot of the scripts directory: the compiled
// program, its static Config, and a pool of runtimes that have run it. It is immutable and
// safe for concurrent use.
type Generation struct {
	bundle  *bundle
	program *goja.Program
	config  Config
	has     map[string]bool
	// warnings are the config's ignored options (config.go: ignored), in source order.
	warnings []*Error
	// defines is has for the typed calls: one slot per Callback, then per Event (hooks.go).
	defines  [hookSlots]bool
	env      map[string]string
	secrets  []string // Options.Secrets
	users    store.Users
	factors  store.Factors
	logger   *slog.Logger
	timeouts Timeouts
	maxStack int
	// pools are the lanes' runtimes (pool.go): sign-ins and per-request callbacks each
	// have their own, so neither can take every runtime from the other.
	pools [laneCount]*pool
	// runtimes lists every runtime made for g, so that Shutdown can interrupt the calls
	// still running. Weak: a discarded runtime is not kept alive here.
	runtimes struct {
		mu   sync.Mutex
		list []weak.Pointer[vm]
	}

	loadedAt time.Time
	observer Observer
	tracer   Tracer
	// traceValues: the tracer reads arguments and results (tracer.go).
	traceValues bool
	heap        *HeapGuard
	maxResult   int
	// maxTimeout caps every deadline: maxCallTimeout when g loaded.
	maxTimeout time.Duration
	fetch      *fetcher
	testing    *testRegistry // set only for the runtimes of `gateway test`

	life lifecycle
}

// lifecycle counts what holds a generation (pinned requests and calls in flight) so that a
// retired generation releases its runtimes only once the last of them has finished.
type lifecycle struct {
	mu      sync.Mutex
	refs    int
	closing bool
	closed  bool
	drained chan struct{} // closed once closed is set
}

// Load bundles, compiles and validates the scripts in opts.Dir and returns a generation
// ready to call. Every failure is an *Error pointing into the user's source when it can.
func Load(ctx context.Context, opts Options) (gen *Generation, err error) {
	defer recoverInto("", &err)
	dir, err := filepath.Abs(opts.Dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil, &Error{Kind: KindInternal, Message: fmt.Sprintf("scripts directory %q", opts.Dir), Err: err}
	}
	entry := opts.Entry
	if entry == "" {
		entry = defaultEntry(dir)
	}
	b, err := buildBundle(dir, filepath.Clean(entry))
	if err != nil {
		return nil, err
	}
	g := newGeneration(b, opts)
	if g.program, err = compile(b); err != nil {
		return nil, err
	}
	size, signIn := poolSizes(opts)
	g.pools[laneRequest] = newPool(laneRequest, size)
	g.pools[laneSignIn] = newPool(laneSignIn, signIn)

	// The first runtime runs the program, yields the configuration and joins the request
	// lane (the sign-in lane starts its runtimes on its first calls).
	p := g.pools[laneRequest]
	p.slots <- struct{}{}
	v, abandoned, err := g.newVM(ctx, p, func(v *vm) error {
		if err := g.readConfig(v); err != nil {
			return err
		}
		return v.bind()
	})
	if err != nil {
		if !abandoned {
			<-p.slots
		}
		for _, se := range Errors(err) {
			se.Callback = ""
		}
		return nil, err
	}
	p.idle <- v
	g.warnLongTimeouts()
	g.loadedAt = time.Now()
	return g, nil
}

// poolSizes returns the bounds of the request and sign-in lanes: PoolSize (default two per
// CPU) and SignInPoolSize (default half of that, at least one). Sign-ins are mostly bcrypt,
// bound by the CPUs, so more of them at once would only queue on the cores.
func poolSizes(opts Options) (request, signIn int) {
	request = opts.PoolSize
	if request <= 0 {
		request = 2 * runtime.GOMAXPROCS(0)
	}
	signIn = opts.SignInPoolSize
	if signIn <= 0 {
		signIn = max(1, request/2)
	}
	return request, signIn
}

// warnLongTimeouts logs the configured deadlines that maxCallTimeout shortens.
func (g *Generation) warnLongTimeouts() {
	ceiling := maxCallTimeout()
	if g.timeouts.Default > ceiling {
		g.logger.Warn("script deadline shortened to the longest allowed", "code", "SCRIPT_TIMEOUT_CAPPED", "timeout", g.timeouts.Default.String(), "max", ceiling.String())
	}
	for k, d := range g.timeouts.PerCallback {
		if d > ceiling {
			g.logger.Warn("script deadline shortened to the longest allowed", "code", "SCRIPT_TIMEOUT_CAPPED", "callback", k, "timeout", d.String(), "max", ceiling.String())
		}
	}
}

// newGeneration fills a generation's settings from opts, defaults applied.
func newGeneration(b *bundle, opts Options) *Generation {
	g := &Generation{
		bundle:      b,
		env:         opts.Env,
		secrets:     opts.Secrets,
		users:       opts.Users,
		factors:     opts.Factors,
		logger:      opts.Logger,
		timeouts:    opts.Timeouts,
		maxStack:    opts.MaxCallStackSize,
		observer:    opts.Observer,
		tracer:      opts.Tracer,
		traceValues: tracesValues(opts.Tracer),
		heap:        opts.HeapGuard,
		maxResult:   opts.MaxResultBytes,
		life:        lifecycle{drained: make(chan struct{})},

		maxTimeout: maxCallTimeout(),
	}
	if g.logger == nil {
		g.logger = slog.New(slog.DiscardHandler)
	}
	if g.maxStack <= 0 {
		g.maxStack = defaultMaxStack
	}
	if g.maxResult <= 0 {
		g.maxResult = defaultMaxResult
	}
	g.fetch = newFetcher(opts.Fetch)
	return g
}

// compile parses the bundle with its inline source map (and no other: a sourceMappingURL
// pointing at a file is refused) and compiles it in strict mode, as ES modules are.
func compile(b *bundle) (*goja.Program, error) {
	ast, err := goja.Parse(bundleName, b.code, parser.WithSourceMapLoader(func(path string) ([]byte, error) {
		return nil, errors.New("only inline source maps are read")
	}))
	if err != nil {
		e := &Error{Kind: KindThrown, Name: "SyntaxError", Message: err.Error(), Err: err}
		var list parser.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			e.Message = list[0].Message
			e.File, e.Line, e.Column = b.mapPosition(list[0].Position.Line, list[0].Position.Column)
			e.SourceLine = b.sourceLine(e.File, e.Line)
		}
		return nil, e
	}
	prg, err := goja.CompileAST(ast, true)
	if err != nil {
		e := &Error{Kind: KindThrown, Name: "SyntaxError", Message: err.Error(), Err: err}
		var ce *goja.CompilerSyntaxError
		if errors.As(err, &ce) {
			e.Message = ce.Message
			if ce.File != nil {
				p := ce.File.Position(ce.Offset)
				e.File, e.Line, e.Column = p.Filename, p.Line, p.Column
				e.SourceLine = b.sourceLine(e.File, e.Line)
			}
		}
		return nil, e
	}
	return prg, nil
}

// Config returns the validated static configuration.
func (g *Generation) Config() Config { return g.config }

// Hash is the SHA-256 of the bundle, hex: equal hashes mean identical scripts.
func (g *Generation) Hash() string { return g.bundle.hash }

func (g *Generation) shortHash() string { return g.bundle.hash[:12] }

// Has reports whether the script defines a callback or event by its full name:
// "callbacks.jwt", "events.signIn", ...
//
// Deprecated: use Defines, whose names the compiler checks.
func (g *Generation) Has(name string) bool { return g.has[name] }

// LoadedAt is when the generation became ready to serve.
func (g *Generation) LoadedAt() time.Time { return g.loadedAt }

// Acquire pins g for the length of one request, so that a request that started on g
// finishes on it even when a reload retires g meanwhile. It reports false when g has
// already been released (the caller should take the current generation again). Every
// successful Acquire must be paired with one Release.
func (g *Generation) Acquire() bool {
	g.life.mu.Lock()
	defer g.life.mu.Unlock()
	if g.life.closed {
		return false
	}
	g.life.refs++
	return true
}

// Release ends a pin taken with Acquire.
func (g *Generation) Release() {
	g.life.mu.Lock()
	defer g.life.mu.Unlock()
	g.life.refs--
	if g.life.refs == 0 && g.life.closing {
		g.finishLocked()
	}
}

func (g *Generation) finishLocked() {
	if g.life.closed {
		return
	}
	g.life.closed = true
	for _, p := range g.pools {
		p.close()
	}
	close(g.life.drained)
}

// Retire marks g as no longer current without waiting: once every pinned request and call
// in flight has finished, its runtimes are released and later calls fail. Until then,
// holders of g may keep calling it.
func (g *Generation) Retire() {
	g.life.mu.Lock()
	defer g.life.mu.Unlock()
	g.life.closing = true
	if g.life.refs == 0 {
		g.finishLocked()
	}
}

// Drained is closed once a retired generation has released its runtimes.
func (g *Generation) Drained() <-chan struct{} { return g.life.drained }

// Close retires g and waits until every pinned request and call in flight has finished and
// the runtimes are released. Later calls fail. Calls have deadlines (and a call that does
// not stop is answered abandonGrace after its deadline), so the wait is bounded by the
// longest callback deadline plus whatever the pinning requests do besides; Shutdown bounds
// it outright.
func (g *Generation) Close() {
	g.Retire()
	<-g.life.drained
}

// errShutdown is what Shutdown interrupts the calls still running with.
var errShutdown = errors.New("the generation was shut down")

// Shutdown retires g and waits, like Close, until it has drained or ctx ends. When ctx ends
// first, every call still running on g is interrupted: it fails (KindTimeout) at its next
// instruction, or is answered and abandoned abandonGrace later if it is stuck where an
// interrupt cannot reach. Shutdown then returns ctx's error without waiting any longer;
// the runtimes are released once the pinning requests have let go of g.
func (g *Generation) Shutdown(ctx context.Context) error {
	g.Retire()
	select {
	case <-g.life.drained:
		return nil
	case <-ctx.Done():
	}
	g.eachRuntime(func(v *vm) { v.watchdog.interrupt(errShutdown) })
	return ctx.Err()
}

// register records a new runtime of g.
func (g *Generation) register(v *vm) {
	g.runtimes.mu.Lock()
	defer g.runtimes.mu.Unlock()
	alive := g.runtimes.list[:0]
	for _, p := range g.runtimes.list {
		if p.Value() != nil {
			alive = append(alive, p)
		}
	}
	clear(g.runtimes.list[len(alive):])
	g.runtimes.list = append(alive, weak.Make(v))
}

// eachRuntime calls f with every runtime of g still alive.
func (g *Generation) eachRuntime(f func(*vm)) {
	g.runtimes.mu.Lock()
	var live []*vm
	for _, p := range g.runtimes.list {
		if v := p.Value(); v != nil {
			live = append(live, v)
		}
	}
	g.runtimes.mu.Unlock()
	for _, v := range live {
		f(v)
	}
}

// PoolStats describes a generation's runtime pools (both lanes together) at one moment.
type PoolStats struct {
	Size  int // the pools' bound
	Live  int // runtimes that hold a slot (idle, in use, or abandoned and not yet stopped)
	Idle  int // runtimes waiting for a call
	InUse int // pinned requests and calls in flight
	// Abandoned counts runtimes whose call did not stop when interrupted: their callers
	// have had the deadline error, and they are discarded once they stop.
	Abandoned int
	// Created counts the runtimes started for calls over the generation's life (not the
	// one Load starts): each costs about a millisecond, so a rate of them that follows the
	// rate of calls means runtimes are being discarded.
	Created int
}

// PoolStats returns the pools' current occupancy.
func (g *Generation) PoolStats() PoolStats {
	g.life.mu.Lock()
	refs := g.life.refs
	g.life.mu.Unlock()
	s := PoolStats{InUse: refs}
	for _, p := range g.pools {
		p.stats(&s)
	}
	return s
}

// timeout is the deadline of one call: "callbacks.jwt" looks up "jwt" (Callback.Key),
// "authorize" and "events.signIn" look up themselves. It is never longer than maxCallTimeout (regexp.go
// says why).
func (g *Generation) timeout(name string) time.Duration {
	d := g.timeouts.Default
	if pd, ok := g.timeouts.PerCallback[strings.TrimPrefix(name, "callbacks.")]; ok && pd > 0 {
		d = pd
	}
	if d <= 0 {
		d = defaultTimeout
	}
	return min(d, g.maxTimeout)
}

// isUserFile reports whether a source-mapped file name is one of the user's files (not a
// built-in module, not the bundle wrapper).
func (g *Generation) isUserFile(name string) bool {
	if name == "" || name == bundleName || strings.HasPrefix(name, builtinNamespace+":") {
		return false
	}
	_, ok := g.bundle.sources[name]
	return ok
}
