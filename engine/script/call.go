package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// Call runs a callback by its full name ("callbacks.jwt", ...) with one argument object
// and returns its result, JSON-shaped. A callback the script does not define is an error:
// the engine applies NextAuth's default instead of calling.
//
// The argument object reaches the script as an Object (see Shared): a property is converted
// when the script first reads it, so the callback pays only for what it uses.
//
// Deprecated: use the typed calls (JWT, Session, SignIn, Redirect, Authorized), whose names
// the compiler checks. Call remains for tests and for the engine files that have not moved
// to them yet.
func (g *Generation) Call(ctx context.Context, name string, arg map[string]any) (result any, err error) {
	return g.CallObject(ctx, name, Shared(arg))
}

// CallObject is Call with an argument object whose properties the host computes on read.
//
// Deprecated: use the typed calls, as for Call.
func (g *Generation) CallObject(ctx context.Context, name string, arg Object) (result any, err error) {
	defer recoverInto(name, &err)
	if !strings.HasPrefix(name, "callbacks.") || !g.has[name] {
		return nil, notDefined(name)
	}
	return g.invoke(ctx, laneOf(name, arg), name, name, arg, nil, objectArgs, callbackResult)
}

// objectArgs and the *Result functions are plain functions of their arguments, so a call
// on the request path allocates no closure to hand to the runtime's goroutine.
func objectArgs(v *vm, arg Object) []goja.Value { return []goja.Value{v.toJS(arg)} }

// callbackResult checks a result of the raw API with the typed calls' own checks.
func callbackResult(v *vm, name string, val goja.Value) (any, error) {
	switch name {
	case CallbackJWT.String(), CallbackSession.String():
		// The typed calls return JSON; the raw API has always returned maps.
		check := sessionResult
		if name == CallbackJWT.String() {
			check = jwtResult
		}
		res, err := check(v, name, val)
		if j, ok := res.(JSON); ok && err == nil {
			return j.Map()
		}
		return res, err
	case CallbackRedirect.String():
		return redirectResult(v, name, val)
	}
	return anyResult(v, name, val)
}

// Event runs an event handler by its full name ("events.signIn", ...). Its result is
// ignored.
//
// Deprecated: use Emit, whose event names the compiler checks.
func (g *Generation) Event(ctx context.Context, name string, arg map[string]any) (err error) {
	defer recoverInto(name, &err)
	if !strings.HasPrefix(name, "events.") || !g.has[name] {
		return notDefined(name)
	}
	_, err = g.invoke(ctx, laneOf(name, nil), name, name, Shared(arg), nil, objectArgs, ignoreResult)
	return err
}

// invoke takes a runtime of lane l, calls fnName with the arguments args builds from the
// argument object (inside the runtime), settles the result and hands it to use. The
// argument object is arg, or, when stage is set, what stage returns: the typed calls copy
// their argument struct into the runtime (vm.staged) and pass a pointer to that copy, so a
// typed call allocates nothing for its argument where the caller's struct would otherwise
// escape to the heap.
//
// The runtime goes back to the pool after a clean call, and after a call that ended with an
// ordinary JavaScript exception (KindThrown): the intrinsics and the global object are
// frozen (freeze.go), so all a throw can leave behind is the script's own module state,
// which is the script's business on success too (docs/callbacks.md). Creating a runtime
// costs about a millisecond, so discarding it on every throw would let anyone who can make
// a script throw charge a millisecond per request. A runtime whose call was interrupted
// (deadline, cancellation, heap guard, shutdown), panicked, overflowed its stack or failed
// in the host is discarded (run sets broken), and a call that does not stop when
// interrupted is answered with the deadline error and its runtime abandoned (pool.go).
func (g *Generation) invoke(ctx context.Context, l lane, name, fnName string, arg Object, stage func(*vm) Object, args func(*vm, Object) []goja.Value, use func(v *vm, name string, val goja.Value) (any, error)) (result any, err error) {
	start := time.Now() // one clock read for the metrics and the deadline: they are per call
	if g.observer != nil {
		defer func() { g.observer.ObserveCall(name, time.Since(start), err) }()
	}
	err = g.onRuntime(ctx, l, name, start, func(v *vm, got time.Time) (bool, error) {
		if stage != nil {
			arg = stage(v)
		}
		abandoned, err := v.exec(job{ctx: ctx, name: name, start: got, timeout: g.timeout(name), fnName: fnName, arg: arg, args: args, result: use})
		if !abandoned { // an abandoned runtime's goroutine may still write it
			result = v.out
		}
		return abandoned, err
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// onRuntime takes a runtime of lane l for one operation (name is its callback, for
// errors), runs the operation's calls on it, and gives it back. got is when the runtime
// was at hand, from which the calls' deadlines count (start, when an idle one was). calls
// reads what it needs of the runtime (v.out, v.staged) before it returns, and only when no
// call was abandoned: an abandoned runtime's goroutine may still be writing them, and the
// runtime is then the pool's business, not given back. A runtime given back is cleared,
// so that it keeps none of the caller's values alive.
func (g *Generation) onRuntime(ctx context.Context, l lane, name string, start time.Time, calls func(v *vm, got time.Time) (abandoned bool, err error)) error {
	if !g.Acquire() {
		return &Error{Callback: name, Kind: KindInternal, Message: "no runtime", Err: errClosed}
	}
	defer g.Release()
	p := g.pools[l]
	v, got, err := p.acquire(ctx, g)
	if got.IsZero() {
		got = start // an idle runtime was at hand
	}
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Callback = name
		}
		return err
	}
	abandoned, err := calls(v, got)
	if abandoned {
		return err
	}
	v.staged = stagedArgs{}
	v.out = nil
	p.release(v, !v.broken)
	return err
}

// recoverInto turns a panic escaping an entry point into a KindInternal error.
func recoverInto(name string, err *error) {
	if r := recover(); r != nil {
		*err = &Error{Callback: name, Kind: KindInternal, Message: fmt.Sprintf("host panic: %v", r), Stack: string(debug.Stack())}
	}
}

// eventLoop settles the promises of one call on the runtime's goroutine.
//
// Contract:
//   - A Go binding that starts asynchronous work calls start on the runtime goroutine and
//     receives a settle function. Whoever finishes the work calls settle exactly once (later
//     calls are ignored) with a job; the job runs on the runtime goroutine and resolves or
//     rejects the binding's promise, after which goja runs the resulting microtasks.
//   - The loop runs until nothing is outstanding (every started operation has had its job
//     run) or the call's context ends. Work still running when the loop stops is abandoned:
//     its settle becomes a no-op, so nothing touches the runtime after the call.
//   - When the loop is idle, the promise the callback returned must be settled: a promise
//     still pending then can never settle and is an error. A rejected promise nobody handled
//     during the call is an error too.
type eventLoop struct {
	mu          sync.Mutex
	queue       []func()
	closed      bool
	wake        chan struct{}
	outstanding int // runtime goroutine only
}

func newEventLoop() *eventLoop { return &eventLoop{wake: make(chan struct{}, 1)} }

// start registers one asynchronous operation. Call it on the runtime goroutine.
func (l *eventLoop) start() (settle func(job func())) {
	l.outstanding++
	var once sync.Once
	return func(job func()) {
		once.Do(func() {
			l.mu.Lock()
			if !l.closed {
				l.queue = append(l.queue, job)
			}
			l.mu.Unlock()
			select {
			case l.wake <- struct{}{}:
			default:
			}
		})
	}
}

// next waits for a settled operation's job.
func (l *eventLoop) next(ctx context.Context) (func(), error) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			job := l.queue[0]
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return job, nil
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *eventLoop) close() {
	l.mu.Lock()
	l.closed = true
	l.queue = nil
	l.mu.Unlock()
}

// run executes f under the call's deadline (timeout from start, the time the call got
// its runtime), drives the event loop, settles a returned
// promise and passes the settled value to use (still under the deadline, since exporting
// may run script code such as toJSON). Any error it returns is an *Error, and the runtime
// must then be discarded.
//
// The runtime's watchdog interrupts the script at the deadline or when the caller's
// context ends (and the HeapGuard when the heap is past its ceiling). An interrupt may land
// just as the call finishes, and the runtime may then carry it into its next call, so a
// runtime that was interrupted is discarded.
func (v *vm) run(ctx context.Context, name string, start time.Time, timeout time.Duration, f func() (goja.Value, error), use func(goja.Value) error) (err error) {
	c := &callState{v: v, parent: ctx, deadline: start.Add(timeout), name: name}
	if err := ctx.Err(); err != nil {
		v.broken = true
		return v.timeoutError(err, name)
	}
	v.call = c
	v.watchdog.watch(c, start)
	defer func() {
		// The watchdog (and through it the HeapGuard) lets go of the call before the verdict.
		fired, abandoned := v.watchdog.release()
		if fired {
			// An interrupt fired (or is firing): the runtime may carry it into its next call.
			v.broken = true
		}
		if abandoned {
			// The caller has been answered already; whatever this call returns is dropped.
			v.broken, v.abandoned = true, true
		}
		if c.cancel != nil {
			c.cancel()
		}
		if c.loop != nil {
			c.loop.close()
		}
		v.call = nil
		if r := recover(); r != nil {
			v.broken = true
			err = &Error{Callback: name, Kind: KindInternal, Message: fmt.Sprintf("host panic: %v", r), Stack: string(debug.Stack())}
		}
		if err != nil && !plainThrow(err) {
			v.broken = true
		}
	}()
	val, ferr := f()
	if ferr != nil {
		return v.toError(c, name, ferr)
	}
	var promise *goja.Promise
	if o, ok := val.(*goja.Object); ok {
		// An async callback's promise is read directly; anything else with a then method
		// is adopted the way await would (a promise, a job and a microtask turn more).
		if promise = asPromise(o); promise == nil {
			if then, ok := goja.AssertFunction(o.Get("then")); ok && then != nil {
				p, resolve, _ := v.rt.NewPromise()
				if rerr := resolve(o); rerr != nil {
					return v.toError(c, name, rerr)
				}
				promise = p
			}
		}
	}
	for c.loop != nil && c.loop.outstanding > 0 {
		job, werr := c.loop.next(c.context())
		if werr != nil {
			cause := c.err()
			if cause == nil {
				cause = werr
			}
			return v.timeoutError(cause, name)
		}
		c.loop.outstanding--
		c.jobPending = job
		if _, jerr := v.runJob(goja.Undefined()); jerr != nil {
			return v.toError(c, name, jerr)
		}
	}
	if promise != nil {
		delete(c.unhandled, promise)
		switch promise.State() {
		case goja.PromiseStatePending:
			return &Error{Callback: name, Kind: KindInternal, Message: "the returned promise never settles: nothing it waits for is still running"}
		case goja.PromiseStateRejected:
			return v.thrownError(name, promise.Result(), nil)
		}
		val = promise.Result()
	}
	for p := range c.unhandled {
		e := v.thrownError(name, p.Result(), nil)
		e.Message = "unhandled promise rejection: " + e.Message
		e.Public = false
		return e
	}
	if uerr := use(val); uerr != nil {
		if _, joined := uerr.(interface{ Unwrap() []error }); joined && len(Errors(uerr)) > 0 {
			return uerr // every problem the config reading found (readConfig)
		}
		var se *Error
		if errors.As(uerr, &se) {
			return se
		}
		return v.toError(c, name, uerr)
	}
	if cerr := c.err(); cerr != nil {
		return v.timeoutError(cerr, name)
	}
	return nil
}

// plainThrow reports a call that failed only because the script threw (or a promise it
// returned, or left unhandled, rejected): the runtime is as clean as after a call that
// returned, so invoke may reuse it. Interrupts, deadlines, the heap guard, shutdown and
// host panics have other kinds; the watchdog's verdict (fired, abandoned) is checked apart.
func plainThrow(err error) bool {
	se, ok := err.(*Error)
	return ok && se.Kind == KindThrown
}

// toError classifies an error returned by goja.
func (v *vm) toError(c *callState, name string, err error) *Error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		reason, _ := ie.Value().(error)
		// Point at the line the callback was running when the interrupt struck, so a loop
		// that never ends is found at once.
		return v.interruptedError(c, reason, ie.Stack())
	}
	if cerr := c.err(); cerr != nil {
		return v.timeoutError(cerr, name)
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return &Error{Callback: name, Kind: KindInternal, Name: "RangeError", Message: "maximum call stack size exceeded", Err: err}
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		e := v.thrownError(name, ex.Value(), ex.Stack())
		e.Err = err
		return e
	}
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return &Error{Callback: name, Kind: KindInternal, Message: err.Error(), Err: err}
}

// interruptedError describes call c interrupted with reason (what the watchdog or the
// HeapGuard interrupted it with), at frames when known. Safe on any goroutine: the watchdog
// also uses it to answer the caller of a call it abandons.
func (v *vm) interruptedError(c *callState, reason error, frames []goja.StackFrame) *Error {
	var e *Error
	switch {
	case reason == errHeapLimit:
		e = &Error{Callback: c.name, Kind: KindLimit, Message: "interrupted: " + errHeapLimit.Error(), Err: errHeapLimit}
	case reason == errShutdown:
		e = &Error{Callback: c.name, Kind: KindTimeout, Message: c.name + " was canceled: " + errShutdown.Error(), Err: errShutdown}
	default:
		cerr := c.err()
		if cerr == nil {
			// Interrupted, but the clock reads the deadline as not quite passed.
			cerr = context.DeadlineExceeded
		}
		e = v.timeoutError(cerr, c.name)
	}
	if frames != nil {
		v.locate(e, frames)
	}
	return e
}

// timeoutError describes a call stopped by cause, the error of the context that ended.
func (v *vm) timeoutError(cause error, name string) *Error {
	if errors.Is(cause, context.DeadlineExceeded) {
		return &Error{Callback: name, Kind: KindTimeout, Message: fmt.Sprintf("%s did not finish within %s", name, v.gen.timeout(name)), Err: cause}
	}
	return &Error{Callback: name, Kind: KindTimeout, Message: name + " was canceled", Err: cause}
}

// stackFrameRE matches one frame of a goja stack string: "at fn (file:line:col(pc))".
var stackFrameRE = regexp.MustCompile(`at (?:.*? \()?([^\s()]+):(\d+):(\d+)\(\d+\)`)

// thrownError describes a thrown value (or a rejection reason). frames, when known, are the
// stack at the throw; an Error object's own stack (where it was created) is preferred.
func (v *vm) thrownError(name string, val goja.Value, frames []goja.StackFrame) *Error {
	e := &Error{Callback: name, Kind: KindThrown}
	if o, ok := val.(*goja.Object); ok && v.rt.InstanceOf(o, v.errorCtr) {
		e.Name = stringProp(o, "name")
		e.Message = stringProp(o, "message")
		e.Stack = stringProp(o, "stack")
		mark := o.GetSymbol(v.hostMark)
		e.Public = mark == nil || !mark.ToBoolean()
		for _, c := range v.runtimeErr {
			if v.rt.InstanceOf(o, c) {
				e.Public = false
				break
			}
		}
		for _, m := range stackFrameRE.FindAllStringSubmatch(e.Stack, -1) {
			if v.gen.isUserFile(m[1]) {
				e.File = m[1]
				e.Line, _ = strconv.Atoi(m[2])
				e.Column, _ = strconv.Atoi(m[3])
				e.Column++ // goja reports source-mapped columns 0-based
				break
			}
		}
	} else if s, ok := val.Export().(string); ok && !isObject(val) {
		e.Message = s
		e.Public = true
	} else {
		e.Message = "threw a non-error value: " + v.describe(val)
	}
	if e.File == "" {
		v.locate(e, frames)
	} else {
		e.SourceLine = v.gen.bundle.sourceLine(e.File, e.Line)
	}
	return e
}

// locate fills the position of e from the innermost frame in the user's own files, and its
// stack from the frames when it has none yet.
func (v *vm) locate(e *Error, frames []goja.StackFrame) {
	var sb bytes.Buffer
	for _, f := range frames {
		p := f.Position()
		if e.File == "" && v.gen.isUserFile(p.Filename) {
			e.File, e.Line, e.Column = p.Filename, p.Line, p.Column+1 // mapped columns are 0-based
		}
		if e.Stack == "" {
			sb.WriteString("\tat ")
			f.Write(&sb)
			sb.WriteByte('\n')
		}
	}
	if e.Stack == "" {
		e.Stack = sb.String()
	}
	if e.File != "" {
		e.SourceLine = v.gen.bundle.sourceLine(e.File, e.Line)
	}
}
