package script

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/google/uuid"
	"github.com/valyala/fastjson"
)

// consoleCap bounds the console output of one call; the rest is replaced by one line. Each
// line is charged its message plus consoleLineCost, so many empty lines are bounded too.
const (
	consoleCap      = 8 << 10
	consoleLineCost = 64
)

// vm is one goja runtime that has run the generation's program once. It is used by one call
// at a time (the pool hands it out), and only its own goroutine (serve) runs script code on
// it: a caller hands the call over and waits, so that a call stuck where no interrupt
// reaches can be given up on without giving up its caller's goroutine too.
type vm struct {
	gen *Generation
	rt  *goja.Runtime

	// pool is the lane the runtime holds a slot of; nil for `gateway test` runtimes.
	pool *pool
	// jobs feeds serve; closed by stop. done carries a job's outcome back: the call's own,
	// or the watchdog's when it abandons the call.
	jobs chan job
	done chan jobDone
	// slotHeld (guarded by pool.mu) is set on an abandoned runtime that keeps its slot.
	slotHeld bool
	// detached is set when the runtime is abandoned: its caller has returned, so the
	// caller's argument Objects must no longer be read (lazy.go).
	detached atomic.Bool
	// hardener freezes the intrinsics and the global object (freeze.go); made before the
	// program runs, so that the program cannot change what it uses.
	hardener *hardener

	// fns are the script's callables by name: "callbacks.jwt", "events.signIn",
	// "authorize:<provider id>". this is what they are called on (their owner object).
	fns map[string]boundFn

	// Captured before user code ran, so a script overwriting globals cannot change them.
	stringify   goja.Callable
	jsonParse   goja.Callable
	jsonParser  fastjson.Parser // parseJSON's, reused: runtime goroutine only
	jsonBuf     []byte          // exportObjectJSON's, reused: runtime goroutine only
	jsonObj     goja.Value
	promiseCtr  *goja.Object
	objectProto *goja.Object
	arrayProto  *goja.Object
	errorCtr    *goja.Object
	runtimeErr  []*goja.Object // TypeError, ReferenceError, ... : never public
	runJob      goja.Callable  // runs loop.job on the runtime goroutine, then the microtasks
	hostMark    *goja.Symbol   // own property of errors the host raised (never public)

	exports goja.Value // module.exports of the bundle (load runtime only needs it)

	call *callState // the call in progress
	// noCall stands for "no call" in the argument objects made outside of one (lazy.go).
	noCall callState

	// watchdog interrupts the call in progress at its deadline or when its caller gives up.
	watchdog watchdog
	// broken marks a runtime that must not be reused: a call on it was interrupted, might
	// still receive an interrupt, or failed other than by a plain throw (plainThrow).
	broken bool
	// abandoned is set by run, on the runtime's goroutine, when the watchdog gave up on the
	// call: its caller has been answered and the runtime must stop serving.
	abandoned bool
	// staged holds a typed call's argument struct for the length of the call (invoke), so
	// that it reaches the runtime's goroutine without a heap allocation of its own.
	staged stagedArgs
	// out is a callback call's result, written on the runtime's goroutine and read by the
	// caller once exec has returned.
	out any
}

// stagedArgs is one slot per typed call's argument struct (cb_*.go).
type stagedArgs struct {
	jwt      JWTArgs
	session  SessionArgs
	signIn   SignInArgs
	redirect RedirectArgs
	read     readState
}

type boundFn struct {
	fn   goja.Callable
	this goja.Value
}

// callState is what Go bindings need to know about the call in progress. Most callbacks
// return a plain value without starting any asynchronous work, so the context with the
// call's deadline, the event loop and the set of unhandled rejections are made only when
// something needs them.
type callState struct {
	v          *vm             // the runtime the call runs on
	parent     context.Context // the caller's context
	deadline   time.Time       // when the call's own time is up
	name       string
	ctx        context.Context // parent bounded by deadline; nil until context() is called
	cancel     context.CancelFunc
	loop       *eventLoop // nil until async() is called
	logged     int
	truncated  bool
	unhandled  map[*goja.Promise]struct{}
	jobPending func()
	// userEvents counts the events users.create and users.update fired (users_write.go).
	userEvents int
}

// context returns the call's context: the caller's, ending at the call's deadline. Go work
// started by the script runs under it.
func (c *callState) context() context.Context {
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
	}
	return c.ctx
}

// async returns the call's event loop. Call it on the runtime goroutine.
func (c *callState) async() *eventLoop {
	if c.loop == nil {
		c.loop = newEventLoop()
	}
	return c.loop
}

// newVM creates a runtime of pool p (nil for `gateway test`), installs the globals, runs
// the program, freezes the intrinsics and hands the runtime to inspect (which reads the
// config and binds the callables). The program's top level and inspect run on the
// runtime's goroutine under ctx and the load deadline like any callback; when they do not
// stop, abandoned reports that the runtime was abandoned (its slot is then the pool's
// business).
func (g *Generation) newVM(ctx context.Context, p *pool, inspect func(*vm) error) (v *vm, abandoned bool, err error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(g.maxStack)
	v = &vm{gen: g, rt: rt, pool: p, hostMark: goja.NewSymbol("callgate.hostError"),
		jobs: make(chan job, 1), done: make(chan jobDone, 1)}
	v.watchdog = watchdog{rt: rt, v: v}
	v.noCall.v = v
	if g.heap != nil {
		g.heap.register(v)
	}
	g.register(v)
	v.jsonObj = rt.Get("JSON")
	v.stringify, _ = goja.AssertFunction(v.jsonObj.ToObject(rt).Get("stringify"))
	v.jsonParse, _ = goja.AssertFunction(v.jsonObj.ToObject(rt).Get("parse"))
	v.promiseCtr = rt.Get("Promise").ToObject(rt)
	v.objectProto = rt.Get("Object").ToObject(rt).Get("prototype").ToObject(rt)
	v.arrayProto = rt.Get("Array").ToObject(rt).Get("prototype").ToObject(rt)
	v.errorCtr = rt.Get("Error").ToObject(rt)
	for _, n := range []string{"TypeError", "ReferenceError", "RangeError", "SyntaxError", "EvalError", "URIError", "AggregateError"} {
		if c := rt.Get(n); c != nil && !goja.IsUndefined(c) {
			v.runtimeErr = append(v.runtimeErr, c.ToObject(rt))
		}
	}
	v.runJob, _ = goja.AssertFunction(rt.ToValue(func(goja.FunctionCall) goja.Value {
		if j := v.call.jobPending; j != nil {
			v.call.jobPending = nil
			j()
		}
		return goja.Undefined()
	}))
	rt.SetPromiseRejectionTracker(func(p *goja.Promise, op goja.PromiseRejectionOperation) {
		if v.call == nil {
			return
		}
		if op == goja.PromiseRejectionReject {
			if v.call.unhandled == nil {
				v.call.unhandled = map[*goja.Promise]struct{}{}
			}
			v.call.unhandled[p] = struct{}{}
		} else {
			delete(v.call.unhandled, p)
		}
	})
	if err := v.installGlobals(); err != nil {
		return nil, false, &Error{Callback: "load", Kind: KindInternal, Message: "install globals", Err: err}
	}
	if v.hardener, err = newHardener(rt); err == nil {
		err = v.hardener.capture()
	}
	if err != nil {
		return nil, false, &Error{Callback: "load", Kind: KindInternal, Message: "prepare freezing the intrinsics", Err: err}
	}
	bridge := rt.NewObject()
	_ = bridge.Set("bcrypt", v.bcryptModule())
	_ = bridge.Set("crypto", v.cryptoModule())
	_ = bridge.Set("store", v.storeModule())
	if g.testing != nil {
		_ = bridge.Set("test", v.testModule())
	}
	if err := rt.GlobalObject().DefineDataProperty(bridgeGlobal, bridge, goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
		return nil, false, &Error{Callback: "load", Kind: KindInternal, Message: "install built-in modules", Err: err}
	}

	go v.serve()
	abandoned, err = v.exec(job{ctx: ctx, name: "load", start: time.Now(), timeout: g.timeout("load"), f: func() (goja.Value, error) {
		return rt.RunProgram(g.program)
	}, use: func(exports goja.Value) error {
		if err := rt.GlobalObject().Delete(bridgeGlobal); err != nil {
			return &Error{Callback: "load", Kind: KindInternal, Message: "remove the built-in module bridge", Err: err}
		}
		v.exports = exports
		return nil
	}})
	if err == nil {
		// From here on nothing a call does to the intrinsics or the global object can be
		// seen by the next call on this runtime. Hardening is the host's work (about a
		// millisecond, most of a new runtime's cost), so it does not eat into the deadline of
		// the program's top level, and has a floor of its own.
		abandoned, err = v.exec(job{ctx: ctx, name: "load", start: time.Now(), timeout: min(max(g.timeout("load"), hardenTimeout), g.maxTimeout), f: func() (goja.Value, error) {
			return goja.Undefined(), v.hardener.harden(bridge)
		}, use: func(goja.Value) error { return inspect(v) }})
	}
	if err != nil {
		if !abandoned {
			v.stop()
		}
		return nil, abandoned, err
	}
	return v, false, nil
}

// job is one call handed to a runtime's goroutine: v.run's arguments. A callback call
// (invoke) names the function and says how to build its arguments and shape its result,
// which the runtime's goroutine wraps itself: closures made there do not escape, where
// closures made by the caller and handed over would cost an allocation each.
type job struct {
	ctx     context.Context
	name    string
	start   time.Time
	timeout time.Duration

	fnName string // a callback call: v.fns[fnName]...
	arg    Object // ...called with what args makes of arg...
	args   func(*vm, Object) []goja.Value
	result func(*vm, string, goja.Value) (any, error) // ...its settled value shaped into v.out

	f   func() (goja.Value, error) // anything else: the program's top level, a test
	use func(goja.Value) error
}

// jobDone is a job's outcome. abandoned: the call did not stop within abandonGrace of its
// interrupt; err is then the deadline (or heap, or shutdown) error the watchdog made, the
// runtime was given up on, and its goroutine ends when the call finally does.
type jobDone struct {
	err       error
	abandoned bool
}

// serve runs the runtime's jobs, one at a time, until stop or until a job is abandoned.
func (v *vm) serve() {
	for j := range v.jobs {
		var err error
		if j.args != nil && v.gen.tracer != nil {
			err = v.serveTraced(&j)
		} else if j.args != nil {
			err = v.run(j.ctx, j.name, j.start, j.timeout, func() (goja.Value, error) {
				b := v.fns[j.fnName]
				return b.fn(b.this, j.args(v, j.arg)...)
			}, func(val goja.Value) error {
				var err error
				v.out, err = j.result(v, j.name, val)
				return err
			})
		} else {
			err = v.run(j.ctx, j.name, j.start, j.timeout, j.f, j.use)
		}
		if v.abandoned {
			// The caller has had its answer; the pool gets the slot back now if it did
			// not already.
			v.watchdog.stop()
			if v.pool != nil {
				v.pool.stopped(v)
			}
			return
		}
		v.done <- jobDone{err: err}
	}
}

// exec runs j on the runtime's goroutine and waits for its outcome. The handover costs two
// goroutine switches, a fraction of a microsecond, and is what lets a caller be answered
// when the call is stuck.
func (v *vm) exec(j job) (abandoned bool, err error) {
	v.jobs <- j
	d := <-v.done
	return d.abandoned, d.err
}

// stop ends the runtime's goroutine once it is idle. Call it once, on a runtime that is
// not abandoned and will not be used again.
func (v *vm) stop() {
	v.watchdog.stop()
	close(v.jobs)
}

// installGlobals gives scripts console, process.env, crypto.randomUUID, atob, btoa and fetch,
// and nothing else of the host.
func (v *vm) installGlobals() error {
	rt := v.rt
	console := rt.NewObject()
	for name, level := range map[string]slog.Level{
		"log": slog.LevelInfo, "info": slog.LevelInfo, "warn": slog.LevelWarn,
		"error": slog.LevelError, "debug": slog.LevelDebug,
	} {
		if err := console.Set(name, v.consoleFunc(level)); err != nil {
			return err
		}
	}
	env := rt.NewObject()
	for k, val := range v.gen.env {
		if err := env.Set(k, val); err != nil {
			return err
		}
	}
	process := rt.NewObject()
	if err := process.Set("env", env); err != nil {
		return err
	}
	crypto := rt.NewObject()
	if err := crypto.Set("randomUUID", func() string { return uuid.NewString() }); err != nil {
		return err
	}
	freeze, _ := goja.AssertFunction(rt.Get("Object").ToObject(rt).Get("freeze"))
	for _, o := range []*goja.Object{console, env, process, crypto} {
		if _, err := freeze(goja.Undefined(), o); err != nil {
			return err
		}
	}
	g := rt.GlobalObject()
	for name, val := range map[string]any{
		"console": console, "process": process, "crypto": crypto,
		"atob": v.atob, "btoa": v.btoa, "fetch": v.fetch,
	} {
		if err := g.Set(name, val); err != nil {
			return err
		}
	}
	return nil
}

// consoleFunc logs one console.* call to the generation's logger, within the call's budget.
func (v *vm) consoleFunc(level slog.Level) func(goja.FunctionCall) goja.Value {
	return func(fc goja.FunctionCall) goja.Value {
		c := v.call
		if c == nil || c.truncated {
			return goja.Undefined()
		}
		parts := make([]string, len(fc.Arguments))
		for i, a := range fc.Arguments {
			parts[i] = v.describe(a)
		}
		msg := strings.Join(parts, " ")
		ctx := c.parent // for the log record's values only; logging does not wait
		cost := len(msg) + consoleLineCost
		if c.logged+cost > consoleCap {
			c.truncated = true
			v.gen.logger.Log(ctx, slog.LevelWarn, "console output truncated", "callback", c.name, "generation", v.gen.shortHash(), "limit_bytes", consoleCap)
			return goja.Undefined()
		}
		c.logged += cost
		v.gen.logger.Log(ctx, level, msg, "callback", c.name, "generation", v.gen.shortHash(), "source", "console")
		return goja.Undefined()
	}
}

// describe renders a console argument: strings as they are, errors with their stack,
// other values as JSON when they have a JSON form.
func (v *vm) describe(val goja.Value) string {
	if val == nil || goja.IsUndefined(val) {
		return "undefined"
	}
	if s, ok := val.Export().(string); ok {
		return s
	}
	if o, ok := val.(*goja.Object); ok {
		if o.ClassName() == "Error" {
			if st := o.Get("stack"); st != nil && !goja.IsUndefined(st) {
				return st.String()
			}
			return o.String()
		}
		if o.ClassName() != "Function" {
			if s, err := v.stringify(v.jsonObj, val); err == nil && !goja.IsUndefined(s) {
				return s.String()
			}
		}
	}
	return val.String()
}

// btoa encodes a string whose characters are all below U+0100 as base64, like the web API.
func (v *vm) btoa(fc goja.FunctionCall) goja.Value {
	s := fc.Argument(0).String()
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			v.throw("InvalidCharacterError", "btoa: the string contains characters outside of the Latin1 range")
		}
		b = append(b, byte(r))
	}
	return v.rt.ToValue(base64.StdEncoding.EncodeToString(b))
}

// atob decodes base64 (ASCII whitespace ignored, padding optional) into a Latin1 string.
func (v *vm) atob(fc goja.FunctionCall) goja.Value {
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\f' || r == '\r' {
			return -1
		}
		return r
	}, fc.Argument(0).String())
	if len(s)%4 == 0 {
		s = strings.TrimRight(s, "=")
	}
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		v.throw("InvalidCharacterError", "atob: the string to be decoded is not correctly encoded")
	}
	out := make([]byte, 0, len(raw)*2)
	for _, c := range raw {
		out = utf8.AppendRune(out, rune(c))
	}
	return v.rt.ToValue(string(out))
}

// newError builds a JS error raised by the host (a TypeError when name says so, else an
// Error with that name). It carries the hostError mark: its message is never public,
// since it may describe the gateway's internals.
func (v *vm) newError(name, msg string) *goja.Object {
	var e *goja.Object
	if name == "TypeError" {
		e = v.rt.NewTypeError(msg)
	} else {
		var err error
		if e, err = v.rt.New(v.errorCtr, v.rt.ToValue(msg)); err != nil {
			e = v.rt.NewGoError(fmt.Errorf("%s: %s", name, msg))
		}
		if name != "Error" {
			_ = e.Set("name", name)
		}
	}
	_ = e.DefineDataPropertySymbol(v.hostMark, v.rt.ToValue(true), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
	return e
}

// throw raises a JS Error from inside a Go function called by the script. goja turns a
// panic with a JS value into a catchable throw at the call site.
func (v *vm) throw(name, msg string) {
	panic(v.newError(name, msg))
}
