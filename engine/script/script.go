// Package script hosts the user's auth config (scripts/auth.config.js or .ts, shaped like
// NextAuth's authOptions) in goja: it bundles the scripts directory with esbuild, compiles
// it once per generation, validates the static configuration, and runs the callbacks
// (authorize, callbacks.*, events.*) on a bounded pool of runtimes with a deadline per call.
//
// Values cross the boundary only as JSON-shaped copies: arguments become fresh plain JS
// objects and results come back through JSON.stringify, so a script can never hold or
// mutate Go memory. Scripts reach nothing of the host beyond console, process.env (the
// operator's allow-list), crypto.randomUUID, atob/btoa, fetch (to the operator's host
// allow-list only) and the built-in modules callgate/providers/credentials, bcryptjs and
// callgate/store. This package must never give scripts file or process access or network
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
	bundle   *bundle
	program  *goja.Program
	config   Config
	has      map[string]bool
	env      map[string]string
	users    store.Users
	logger   *slog.Logger
	timeouts Timeouts
	maxStack int
	pool     *pool

	loadedAt  time.Time
	observer  Observer
	heap      *HeapGuard
	maxResult int
	fetch     *fetcher
	testing   *testRegistry // set only for the runtimes of `gateway test`

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
		entry = "auth.config.js"
		if readable(filepath.Join(dir, "auth.config.ts")) {
			entry = "auth.config.ts"
		}
	}
	b, err := buildBundle(dir, filepath.Clean(entry))
	if err != nil {
		return nil, err
	}
	g := newGeneration(b, opts)
	if g.program, err = compile(b); err != nil {
		return nil, err
	}
	size := opts.PoolSize
	if size <= 0 {
		size = 2 * runtime.GOMAXPROCS(0)
	}
	g.pool = newPool(size)

	// The first runtime runs the program, yields the configuration and joins the pool.
	v, err := g.newVM(ctx, func(v *vm) error {
		if err := g.readConfig(v); err != nil {
			return err
		}
		return v.bind()
	})
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Callback = ""
		}
		return nil, err
	}
	g.pool.adopt(v)
	g.loadedAt = time.Now()
	return g, nil
}

// newGeneration fills a generation's settings from opts, defaults applied.
func newGeneration(b *bundle, opts Options) *Generation {
	g := &Generation{
		bundle:    b,
		env:       opts.Env,
		users:     opts.Users,
		logger:    opts.Logger,
		timeouts:  opts.Timeouts,
		maxStack:  opts.MaxCallStackSize,
		observer:  opts.Observer,
		heap:      opts.HeapGuard,
		maxResult: opts.MaxResultBytes,
		life:      lifecycle{drained: make(chan struct{})},
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

// Has reports whether the script defines a callback or event: "callbacks.jwt",
// "callbacks.signIn", "callbacks.session", "callbacks.redirect", "callbacks.authorized",
// "events.signIn", "events.signOut", "events.session", ...
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
	g.pool.close()
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
// the runtimes are released. Later calls fail. Calls have deadlines, so the wait is bounded
// by the longest callback deadline plus whatever the pinning requests do besides.
func (g *Generation) Close() {
	g.Retire()
	<-g.life.drained
}

// PoolStats describes a generation's runtime pool at one moment.
type PoolStats struct {
	Size  int // the pool's bound
	Live  int // runtimes that exist (idle or in use)
	Idle  int // runtimes waiting for a call
	InUse int // pinned requests and calls in flight
}

// PoolStats returns the pool's current occupancy.
func (g *Generation) PoolStats() PoolStats {
	g.life.mu.Lock()
	refs := g.life.refs
	g.life.mu.Unlock()
	return PoolStats{Size: cap(g.pool.slots), Live: len(g.pool.slots), Idle: len(g.pool.idle), InUse: refs}
}

// timeout is the deadline of one call: "callbacks.jwt" looks up "jwt", "authorize" and
// "events.signIn" look up themselves.
func (g *Generation) timeout(name string) time.Duration {
	key := strings.TrimPrefix(name, "callbacks.")
	if d, ok := g.timeouts.PerCallback[key]; ok && d > 0 {
		return d
	}
	if g.timeouts.Default > 0 {
		return g.timeouts.Default
	}
	return defaultTimeout
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

// pool bounds the runtimes of a generation. slots holds one token per existing runtime;
// idle holds the runtimes not in use. A call takes an idle runtime, or creates one when a
// slot is free, or waits.
type pool struct {
	idle  chan *vm
	slots chan struct{}

	mu     sync.Mutex
	closed bool
}

func newPool(size int) *pool {
	return &pool{idle: make(chan *vm, size), slots: make(chan struct{}, size)}
}

var errClosed = errors.New("generation closed")

// adopt puts the load runtime into the pool.
func (p *pool) adopt(v *vm) {
	p.slots <- struct{}{}
	p.idle <- v
}

// acquire takes an idle runtime, or starts or waits for one. When it did not find one at
// hand, got is when it had one; otherwise got is zero.
func (p *pool) acquire(ctx context.Context, g *Generation) (v *vm, got time.Time, err error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, time.Time{}, &Error{Kind: KindInternal, Message: "no runtime", Err: errClosed}
	}
	select {
	case v := <-p.idle:
		return v, time.Time{}, nil
	default:
	}
	waitStart := time.Now()
	defer func() {
		got = time.Now()
		if g.observer != nil {
			g.observer.ObservePoolWait(got.Sub(waitStart))
		}
	}()
	select {
	case v := <-p.idle:
		return v, got, nil
	case p.slots <- struct{}{}:
		v, err := g.newVM(ctx, (*vm).bind)
		if err != nil {
			<-p.slots
			var se *Error
			if errors.As(err, &se) {
				se.Kind = KindInternal
				se.Message = "start a runtime: " + se.Message
				return nil, got, se
			}
			return nil, got, &Error{Kind: KindInternal, Message: "start a runtime", Err: err}
		}
		return v, got, nil
	case <-ctx.Done():
		return nil, got, &Error{Kind: KindInternal, Message: "no runtime became free", Err: ctx.Err()}
	}
}

// release returns a runtime after a clean call, or frees its slot.
func (p *pool) release(v *vm, clean bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if clean && !p.closed {
		p.idle <- v
		return
	}
	<-p.slots
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for {
		select {
		case <-p.idle:
			<-p.slots
		default:
			return
		}
	}
}
