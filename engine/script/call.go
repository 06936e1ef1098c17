package script

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// Authorize runs the authorize function of the credentials provider providerID. It returns
// nil, nil when authorize returned null, undefined or false.
func (g *Generation) Authorize(ctx context.Context, providerID string, credentials, req map[string]any) (user map[string]any, err error) {
	const name = "authorize"
	defer recoverInto(name, &err)
	fnName := "authorize:" + providerID
	if !g.has[fnName] {
		return nil, &Error{Callback: name, Kind: KindInternal, Message: fmt.Sprintf("no credentials provider %q with an authorize function", providerID)}
	}
	res, err := g.invoke(ctx, name, fnName, func(v *vm) []goja.Value {
		return []goja.Value{v.toJS(credentials), v.toJS(req)}
	}, func(v *vm, val goja.Value) (any, error) {
		if isNullish(val) || val.StrictEquals(v.rt.ToValue(false)) {
			return nil, nil
		}
		out, err := v.exportJSON(val)
		if err != nil {
			return nil, err
		}
		if _, ok := out.(map[string]any); !ok {
			return nil, invalidResult(name, "an object, null or false", v.typeOf(val))
		}
		return out, nil
	})
	if err != nil || res == nil {
		return nil, err
	}
	return res.(map[string]any), nil
}

// Call runs a callback ("callbacks.jwt", "callbacks.session", ...) with one argument object
// and returns its result, JSON-shaped. A callback the script does not define is an error:
// the engine applies NextAuth's default instead of calling.
//
// The argument object reaches the script as an Object (see Shared): a property is converted
// when the script first reads it, so the callback pays only for what it uses.
func (g *Generation) Call(ctx context.Context, name string, arg map[string]any) (result any, err error) {
	return g.CallObject(ctx, name, Shared(arg))
}

// CallObject is Call with an argument object whose properties the host computes on read.
func (g *Generation) CallObject(ctx context.Context, name string, arg Object) (result any, err error) {
	defer recoverInto(name, &err)
	if !strings.HasPrefix(name, "callbacks.") || !g.has[name] {
		return nil, &Error{Callback: name, Kind: KindInternal, Message: "the script does not define " + name}
	}
	return g.invoke(ctx, name, name, func(v *vm) []goja.Value {
		return []goja.Value{v.toJS(arg)}
	}, func(v *vm, val goja.Value) (any, error) {
		switch name {
		case "callbacks.jwt":
			if isNullish(val) {
				return nil, nil
			}
			return v.exportObject(name, val, "an object, null or undefined")
		case "callbacks.session":
			return v.exportObject(name, val, "an object")
		case "callbacks.redirect":
			if s, ok := val.Export().(string); ok && !isObject(val) {
				return s, nil
			}
			return nil, invalidResult(name, "a string", v.typeOf(val))
		}
		if isNullish(val) {
			return nil, nil
		}
		return v.exportJSON(val)
	})
}

// Event runs an event handler ("events.signIn", ...). Its result is ignored.
func (g *Generation) Event(ctx context.Context, name string, arg map[string]any) (err error) {
	defer recoverInto(name, &err)
	if !strings.HasPrefix(name, "events.") || !g.has[name] {
		return &Error{Callback: name, Kind: KindInternal, Message: "the script does not define " + name}
	}
	_, err = g.invoke(ctx, name, name, func(v *vm) []goja.Value {
		return []goja.Value{v.toJS(Shared(arg))}
	}, func(*vm, goja.Value) (any, error) { return nil, nil })
	return err
}

// invoke takes a runtime, calls fnName with the arguments args builds (inside the runtime),
// settles the result and hands it to use. The runtime goes back to the pool only after a
// clean call. Even a plain throw discards it: the script may have changed module or global
// state half-way, and a fresh runtime costs about 0.4 ms against about 20 µs for a call, a
// price paid only on failures.
func (g *Generation) invoke(ctx context.Context, name, fnName string, args func(*vm) []goja.Value, use func(*vm, goja.Value) (any, error)) (result any, err error) {
	start := time.Now() // one clock read for the metrics and the deadline: they are per call
	if g.observer != nil {
		defer func() { g.observer.ObserveCall(name, time.Since(start), err) }()
	}
	if !g.Acquire() {
		return nil, &Error{Callback: name, Kind: KindInternal, Message: "no runtime", Err: errClosed}
	}
	defer g.Release()
	v, got, err := g.pool.acquire(ctx, g)
	if got.IsZero() {
		got = start // an idle runtime was at hand
	}
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Callback = name
		}
		return nil, err
	}
	clean := false
	defer func() { g.pool.release(v, clean) }()
	var out any
	err = v.run(ctx, name, got, g.timeout(name), func() (goja.Value, error) {
		b := v.fns[fnName]
		return b.fn(b.this, args(v)...)
	}, func(val goja.Value) error {
		var err error
		out, err = use(v, val)
		return err
	})
	if err != nil {
		return nil, err
	}
	clean = !v.broken
	return out, nil
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
	c := &callState{parent: ctx, deadline: start.Add(timeout), name: name}
	if err := ctx.Err(); err != nil {
		v.broken = true
		return v.timeoutError(err, name)
	}
	v.call = c
	v.watchdog.watch(c, start)
	defer func() {
		// The watchdog (and through it the HeapGuard) lets go of the call before the verdict.
		if v.watchdog.release() {
			// An interrupt fired (or is firing): the runtime may carry it into its next call.
			v.broken = true
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
		if err != nil {
			v.broken = true
		}
	}()
	val, ferr := f()
	if ferr != nil {
		return v.toError(c, name, ferr)
	}
	var promise *goja.Promise
	if o, ok := val.(*goja.Object); ok {
		if o.ClassName() == "Promise" {
			promise, _ = o.Export().(*goja.Promise)
		} else if then, ok := goja.AssertFunction(o.Get("then")); ok && then != nil {
			// A thenable: adopt it the way `await` would.
			p, resolve, _ := v.rt.NewPromise()
			if rerr := resolve(o); rerr != nil {
				return v.toError(c, name, rerr)
			}
			promise = p
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

// toError classifies an error returned by goja.
func (v *vm) toError(c *callState, name string, err error) *Error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) && ie.Value() == errHeapLimit {
		e := &Error{Callback: name, Kind: KindLimit, Message: "interrupted: " + errHeapLimit.Error(), Err: errHeapLimit}
		v.locate(e, ie.Stack())
		return e
	}
	if cerr := c.err(); ie != nil || cerr != nil {
		if cerr == nil {
			// Interrupted, but the clock reads the deadline as not quite passed.
			cerr = context.DeadlineExceeded
		}
		e := v.timeoutError(cerr, name)
		if ie != nil {
			// Point at the line the callback was running when the deadline struck, so a
			// loop that never ends is found at once.
			v.locate(e, ie.Stack())
		}
		return e
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

func invalidResult(name, want, got string) *Error {
	return &Error{Callback: name, Kind: KindInvalidResult, Message: fmt.Sprintf("%s must return %s, got %s", name, want, got)}
}

func (v *vm) exportObject(name string, val goja.Value, want string) (any, error) {
	if !isObject(val) || v.typeOf(val) != "object" {
		return nil, invalidResult(name, want, v.typeOf(val))
	}
	out, err := v.exportJSON(val)
	if err != nil {
		return nil, err
	}
	if _, ok := out.(map[string]any); !ok {
		return nil, invalidResult(name, want, "a value whose JSON form is not an object")
	}
	return out, nil
}

// exportJSON returns a value with JSON semantics, as NextAuth serialises tokens and session
// bodies: the runtime's own JSON.stringify (undefined and functions vanish, toJSON and Dates
// apply), then encoding/json. Primitives skip the round trip.
func (v *vm) exportJSON(val goja.Value) (any, error) {
	if isNullish(val) {
		return nil, nil
	}
	budget := v.gen.maxResult
	if !isObject(val) {
		switch x := val.Export().(type) {
		case string:
			if len(x) > budget {
				return nil, v.resultTooLarge()
			}
			return x, nil
		case bool:
			return x, nil
		case int64:
			return float64(x), nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, nil
			}
			return x, nil
		}
	}
	if out, ok := v.exportPlain(val, 0, &budget); ok {
		return out, nil
	}
	if budget < 0 {
		return nil, v.resultTooLarge()
	}
	s, err := v.stringify(v.jsonObj, val)
	if err != nil {
		return nil, err
	}
	if isNullish(s) {
		return nil, nil
	}
	str := s.String()
	if len(str) > v.gen.maxResult {
		return nil, v.resultTooLarge()
	}
	var out any
	if err := json.Unmarshal([]byte(str), &out); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	return out, nil
}

// resultTooLarge is the error of a result past MaxResultBytes. The caller fills Callback.
func (v *vm) resultTooLarge() *Error {
	name := ""
	if v.call != nil {
		name = v.call.name
	}
	return &Error{Callback: name, Kind: KindLimit, Message: fmt.Sprintf("the result is larger than the %d-byte limit (script.max_result_bytes)", v.gen.maxResult)}
}

// exportPlainDepth bounds the direct walk; deeper values (and cycles) take JSON.stringify.
const exportPlainDepth = 32

// exportPlainMaxArray keeps a sparse array with a huge length from allocating here.
const exportPlainMaxArray = 1 << 16

// exportPlain converts plain objects, arrays and primitives directly, with the same result
// JSON.stringify + encoding/json would give. It reports false for anything where the two
// could differ (toJSON, Dates, class instances, wrappers, BigInt, deep nesting), and the
// caller then takes the JSON.stringify path.
func (v *vm) exportPlain(val goja.Value, depth int, budget *int) (any, bool) {
	*budget -= 8 // a rough JSON size: enough to stop runaway results early
	if *budget < 0 {
		return nil, false
	}
	o, ok := val.(*goja.Object)
	if !ok {
		switch x := val.Export().(type) {
		case nil:
			return nil, true
		case string:
			if *budget -= len(x); *budget < 0 {
				return nil, false
			}
			return x, true
		case bool:
			return x, true
		case int64:
			return float64(x), true
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, true
			}
			if x == 0 {
				return 0.0, true // JSON has no -0
			}
			return x, true
		}
		return nil, false
	}
	if depth >= exportPlainDepth {
		return nil, false
	}
	switch o.ClassName() {
	case "Object":
		if proto := o.Prototype(); proto != nil && !proto.SameAs(v.objectProto) {
			return nil, false
		}
		if t := o.Get("toJSON"); t != nil && !goja.IsUndefined(t) {
			return nil, false
		}
		keys := o.Keys()
		m := make(map[string]any, len(keys))
		for _, k := range keys {
			e := o.Get(k)
			if e == nil || goja.IsUndefined(e) || v.skipsInJSON(e) {
				continue
			}
			*budget -= len(k)
			x, ok := v.exportPlain(e, depth+1, budget)
			if !ok {
				return nil, false
			}
			m[k] = x
		}
		return m, true
	case "Array":
		if proto := o.Prototype(); proto != nil && !proto.SameAs(v.arrayProto) {
			return nil, false
		}
		n := o.Get("length").ToInteger()
		if n > exportPlainMaxArray {
			return nil, false
		}
		out := make([]any, n)
		for i := range n {
			e := o.Get(strconv.FormatInt(i, 10))
			if e == nil || goja.IsUndefined(e) || v.skipsInJSON(e) {
				continue // null in JSON
			}
			x, ok := v.exportPlain(e, depth+1, budget)
			if !ok {
				return nil, false
			}
			out[i] = x
		}
		return out, true
	}
	return nil, false
}

// skipsInJSON reports values JSON.stringify leaves out of objects: functions and symbols.
func (v *vm) skipsInJSON(e goja.Value) bool {
	if _, ok := e.(*goja.Symbol); ok {
		return true
	}
	_, ok := goja.AssertFunction(e)
	return ok
}

func isNullish(v goja.Value) bool { return v == nil || goja.IsUndefined(v) || goja.IsNull(v) }

func isObject(v goja.Value) bool { _, ok := v.(*goja.Object); return ok }

// typeOf names a value's type for error messages.
func (v *vm) typeOf(val goja.Value) string {
	switch {
	case val == nil || goja.IsUndefined(val):
		return "undefined"
	case goja.IsNull(val):
		return "null"
	}
	if o, ok := val.(*goja.Object); ok {
		switch o.ClassName() {
		case "Array":
			return "array"
		case "Function":
			return "function"
		case "Promise":
			return "promise"
		}
		if _, ok := goja.AssertFunction(o); ok {
			return "function"
		}
		return "object"
	}
	switch val.ExportType().Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int64, reflect.Float64:
		return "number"
	}
	return strings.ToLower(val.ExportType().String())
}

func stringProp(o *goja.Object, key string) string {
	p := o.Get(key)
	if isNullish(p) {
		return ""
	}
	return p.String()
}

// toJS builds a fresh plain JS value from a JSON-shaped Go value. Nothing it returns refers
// back to Go memory, so the script may mutate it freely. Map keys are set in sorted order so
// that Object.keys is stable from call to call.
func (v *vm) toJS(x any) goja.Value {
	switch t := x.(type) {
	case nil:
		return goja.Null()
	case undefinedValue:
		return goja.Undefined()
	case string:
		return v.rt.ToValue(t)
	case bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return v.rt.ToValue(t)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return v.rt.ToValue(i)
		}
		f, _ := t.Float64()
		return v.rt.ToValue(f)
	case time.Time:
		return v.rt.ToValue(t.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	case Object: // Shared included
		return v.rt.NewDynamicObject(&lazyObject{v: v, src: t})
	case map[string]any:
		o := v.rt.NewObject()
		var small [8]string // a callback's argument object has a handful of keys
		keys := small[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			_ = o.Set(k, v.toJS(t[k]))
		}
		return o
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, s := range t {
			m[k] = s
		}
		return v.toJS(m)
	case []any:
		items := make([]any, len(t))
		for i, e := range t {
			items[i] = v.toJS(e)
		}
		return v.rt.NewArray(items...)
	case []string:
		items := make([]any, len(t))
		for i, e := range t {
			items[i] = e
		}
		return v.rt.NewArray(items...)
	case map[string][]string:
		m := make(map[string]any, len(t))
		for k, s := range t {
			m[k] = strings.Join(s, ", ")
		}
		return v.toJS(m)
	}
	// Anything else goes through its JSON form, which cannot keep a reference either.
	b, err := json.Marshal(x)
	if err != nil {
		return goja.Undefined()
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return goja.Undefined()
	}
	return v.toJS(generic)
}
