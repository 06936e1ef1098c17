package script

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// isolationConfig has callbacks that misbehave as their argument asks: authorized runs a
// regular expression that never ends, jwt pollutes or observes the intrinsics, authorize
// is a slow sign-in.
const isolationConfig = `import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

let calls = 0; // module state: tells which calls shared a runtime
const findOne = users.findOne, compare = bcrypt.compare;

const aaa = "a".repeat(40);
// Regular expressions RE2 cannot express (or RE2 ones started past index 0), which goja
// runs on regexp2, a backtracking engine: each backtracks exponentially on these inputs
// and would run for days.
const stuck = {
  backreference: () => /^(a+)+\1$/.test(aaa + "b"),
  namedBackreference: () => new RegExp("^(?<x>a+)+\\k<x>$").test(aaa + "b"),
  lookahead: () => /^(?=(a+)+b)/.test(aaa),
  negativeLookahead: () => /^(?!(a+)+$)/.test(aaa + "!"),
  stickyFromLastIndex: () => { const re = /(a+)+b/y; re.lastIndex = 1; return re.test(aaa); },
  splitOnLookahead: () => aaa.split(/(?=(a+)+b)/).length > 0,
};

// Each tries to change what later calls see. Each runs in its own try, so that the call
// returns normally and its runtime is reused.
const pollutions = {
  objectPrototype: () => { Object.prototype.isAdmin = true; },
  defineOnObjectPrototype: () => { Object.defineProperty(Object.prototype, "role", { value: "admin", configurable: true }); },
  arrayIncludes: () => { Array.prototype.includes = () => true; },
  deleteArrayMap: () => { delete Array.prototype.map; },
  arrayPrototypeSwap: () => { Object.setPrototypeOf(Array.prototype, { evil: true }); },
  stringStartsWith: () => { String.prototype.startsWith = () => true; },
  numberToFixed: () => { Number.prototype.toFixed = () => "0"; },
  functionCall: () => { Function.prototype.apply = () => "pwned"; },
  errorToString: () => { Error.prototype.toString = () => "pwned"; },
  errorName: () => { Error.prototype.name = "pwned"; },
  regexpExec: () => { RegExp.prototype.exec = () => null; },
  promiseThen: () => { Promise.prototype.then = function () {}; },
  iteratorNext: () => { Object.getPrototypeOf([][Symbol.iterator]()).next = () => ({ done: true }); },
  mapGet: () => { Map.prototype.get = () => "admin"; },
  jsonParse: () => { JSON.parse = () => ({ admin: true }); },
  mathRandom: () => { Math.random = () => 0; },
  objectKeys: () => { Object.keys = () => []; },
  dateNow: () => { Date.now = () => 0; },
  reflectOwnKeys: () => { Reflect.ownKeys = () => []; },
  tamedAccessor: () => { Object.getOwnPropertyDescriptor(Object.prototype, "toString").get.leak = "x"; },
  globalVariable: () => { globalThis.x = 1; },
  globalReplaced: () => { globalThis.console = { log() {} }; },
  globalDeleted: () => { delete globalThis.fetch; },
  constructorStatic: () => { Array.isArray = () => true; },
  builtinFunction: () => { Object.defineProperty(Math.max, "call", { value: () => 99 }); },
  storeModule: () => { users.findOne = async () => ({ _id: "admin", role: "admin" }); },
  bcryptModule: () => { bcrypt.compare = async () => true; },
  // Sloppy code (new Function) cannot throw on a failed write: the write is ignored.
  sloppyWrites: () => { new Function("Object.prototype.sloppy = 1; globalThis.y = 2; this.z = 3;")(); },
};

const observe = () => ({
  objectPrototype: ({}).isAdmin === undefined,
  defineOnObjectPrototype: ({}).role === undefined,
  arrayIncludes: [1].includes(2) === false,
  deleteArrayMap: typeof [].map === "function",
  arrayPrototypeSwap: Object.getPrototypeOf(Array.prototype) === Object.prototype && [].evil === undefined,
  stringStartsWith: "abc".startsWith("z") === false,
  numberToFixed: (1.5).toFixed(1) === "1.5",
  functionCall: Math.max.apply(null, [1, 2]) === 2,
  errorToString: String(new Error("m")) === "Error: m",
  errorName: new Error("m").name === "Error",
  regexpExec: /a/.exec("a") !== null,
  promiseThen: Promise.prototype.then.name === "then",
  iteratorNext: [...[1, 2]].length === 2,
  mapGet: new Map().get("k") === undefined,
  jsonParse: JSON.parse('{"a":1}').a === 1,
  mathRandom: Math.random.name === "random",
  objectKeys: Object.keys({ a: 1 }).length === 1,
  dateNow: Date.now() > 0,
  reflectOwnKeys: Reflect.ownKeys({ a: 1 }).length === 1,
  tamedAccessor: Object.getOwnPropertyDescriptor(Object.prototype, "toString").get.leak === undefined,
  globalVariable: !("x" in globalThis),
  globalReplaced: typeof console.info === "function",
  globalDeleted: typeof fetch === "function",
  constructorStatic: Array.isArray({}) === false,
  builtinFunction: Math.max.call(null, 1, 2) === 2,
  storeModule: users.findOne === findOne,
  bcryptModule: bcrypt.compare === compare,
  sloppyWrites: ({}).sloppy === undefined && !("y" in globalThis) && !("z" in globalThis),
});

// Code that assigns over a frozen prototype's property (the "override mistake"): common
// enough that it must keep working.
function idioms() {
  class AppError extends Error {
    constructor(message) { super(message); this.name = "AppError"; this.code = 42; }
  }
  function LegacyError(message) { this.message = message; }
  LegacyError.prototype = Object.create(Error.prototype);
  LegacyError.prototype.constructor = LegacyError;
  LegacyError.prototype.name = "LegacyError";
  const e = new Error("first");
  e.message = "second";
  e.name = "Renamed";
  const custom = {};
  custom.toString = () => "custom";
  custom.valueOf = () => 7;
  custom.constructor = "mine";
  const fn = function () {};
  fn.toString = () => "fn";
  const assigned = Object.assign({}, { toString: 1, constructor: 2 });
  const sorted = [3, 1, 2].sort((a, b) => a - b);
  const m = new Map([["k", "v"]]);
  return {
    appError: String(new AppError("boom")),
    appErrorIsError: new AppError("x") instanceof Error,
    legacy: String(new LegacyError("old")),
    renamed: String(e),
    custom: String(custom) + (custom + 1) + custom.constructor,
    fn: String(fn),
    assigned: assigned.toString + assigned.constructor,
    sorted: sorted.join(","),
    map: [...m].flat().join(","),
    json: JSON.stringify({ a: [1, { b: null }] }),
    replaced: "x-x".replace(/x/g, "y"),
    split: "a1b2c".split(/\d/).join("|"),
  };
}

export default {
  providers: [Credentials({
    async authorize(c) {
      if (c.mode === "busy") {
        // A sign-in that takes its time on the CPU, as bcrypt does.
        const end = Date.now() + 50;
        while (Date.now() < end) {}
      }
      return { id: "u1" };
    },
  })],
  callbacks: {
    authorized({ request }) {
      const f = stuck[request.mode];
      return f ? f() : true;
    },
    async jwt({ token }) {
      calls++;
      switch (token.mode) {
        case "pollute": {
          const results = {};
          for (const [name, f] of Object.entries(pollutions)) {
            try { f(); results[name] = "no error"; } catch (e) { results[name] = e.name; }
          }
          return { results, calls };
        }
        case "observe": return { clean: observe(), calls };
        case "idioms": return { got: idioms(), calls };
      }
      return token;
    },
  },
};
`

// callWithin runs call and fails the test when it has not returned within limit (generous:
// the point is that it returns at all, not how fast).
func callWithin[T any](t *testing.T, limit time.Duration, call func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(limit):
		t.Fatalf("the call did not return within %v", limit)
		panic("unreachable")
	}
}

// TestRegexpStopsAtDeadline: a regular expression that backtracks for days ends the call at
// its deadline with the usual deadline error, whichever regexp2 path it takes.
func TestRegexpStopsAtDeadline(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": isolationConfig})
	l := load(t, dir, func(o *Options) { o.Timeouts.Default = 100 * time.Millisecond })
	for _, mode := range []string{"backreference", "namedBackreference", "lookahead", "negativeLookahead", "stickyFromLastIndex", "splitOnLookahead"} {
		t.Run(mode, func(t *testing.T) {
			// Far longer than the deadline, and shorter than regexp2's own match timeout
			// in these tests: only the deadline can have ended the call this soon.
			res, err := callWithin(t, 3*time.Second, func() (any, error) {
				return l.gen.Call(context.Background(), "callbacks.authorized", map[string]any{"request": map[string]any{"mode": mode}})
			})
			if err == nil {
				t.Fatalf("got result %v, want the deadline error", res)
			}
			se := asError(t, err)
			if se.Kind != KindTimeout || !strings.Contains(se.Message, "did not finish within 100ms") {
				t.Fatalf("got %v (kind %v), want the deadline error", err, se.Kind)
			}
		})
	}
}

// TestStuckCallsLoseTheirRuntime: calls that cannot be stopped, one more than the pool has
// runtimes, are each answered with the deadline error; their runtimes are abandoned and
// the pool makes new ones, so the next call succeeds.
func TestStuckCallsLoseTheirRuntime(t *testing.T) {
	const size = 2
	dir := writeDir(t, map[string]string{"auth.config.js": isolationConfig})
	l := load(t, dir, func(o *Options) {
		o.PoolSize = size
		// The stuck calls keep both cores busy until regexp2's timeout: the call after
		// them needs a deadline that a loaded machine still meets.
		o.Timeouts.Default = time.Second
	})
	authorized := func(mode string) (any, error) {
		return l.gen.Call(context.Background(), "callbacks.authorized", map[string]any{"request": map[string]any{"mode": mode}})
	}
	errs := make(chan error, size+1)
	for range size + 1 {
		go func() {
			_, err := authorized("backreference")
			errs <- err
		}()
	}
	// Generous, but shorter than regexp2's match timeout in these tests.
	limit := time.After(5 * time.Second)
	for i := range size + 1 {
		select {
		case err := <-errs:
			if se := asError(t, err); se.Kind != KindTimeout {
				t.Fatalf("stuck call %d: got %v, want the deadline error", i, err)
			}
		case <-limit:
			t.Fatalf("only %d of %d stuck calls were answered within 5s", i, size+1)
		}
	}
	res, err := callWithin(t, 5*time.Second, func() (any, error) { return authorized("allow") })
	if err != nil || res != true {
		t.Fatalf("call after the stuck ones: got %v, %v, want true", res, err)
	}
}

// TestNoStateLeaksBetweenCalls: a callback that tries to pollute the intrinsics and the
// global object (catching each failure, so that its runtime is reused) changes nothing the
// next call on the same runtime sees; strict code gets a TypeError for each write, sloppy
// code has its writes ignored.
func TestNoStateLeaksBetweenCalls(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": isolationConfig})
	l := load(t, dir, func(o *Options) { o.PoolSize = 1 })
	ctx := context.Background()
	jwt := func(mode string) map[string]any {
		t.Helper()
		res, err := l.gen.Call(ctx, "callbacks.jwt", map[string]any{"token": map[string]any{"mode": mode}})
		if err != nil {
			t.Fatalf("jwt %s: %v", mode, err)
		}
		return res.(map[string]any)
	}
	checkClean := func(when string, got map[string]any) {
		t.Helper()
		clean := got["clean"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(clean)) {
			if clean[k] != true {
				t.Errorf("%s: %s is polluted", when, k)
			}
		}
	}
	checkClean("before", jwt("observe"))

	got := jwt("pollute")
	results := got["results"].(map[string]any)
	for _, k := range slices.Sorted(maps.Keys(results)) {
		want := "TypeError"
		if k == "sloppyWrites" {
			want = "no error"
		}
		if results[k] != want {
			t.Errorf("pollution %s: got %v, want %s", k, results[k], want)
		}
	}

	after := jwt("observe")
	checkClean("after", after)
	if after["calls"] != 3.0 {
		t.Errorf("module call counter: got %v, want 3 (the three calls shared one runtime)", after["calls"])
	}
}

// TestFrozenIntrinsicsKeepCommonCode: code that assigns over a property of a frozen
// prototype (error names and messages, toString, constructor) keeps working.
func TestFrozenIntrinsicsKeepCommonCode(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": isolationConfig})
	l := load(t, dir, func(o *Options) { o.PoolSize = 1 })
	for i := range 2 { // the second time on a runtime that has run the first
		res, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{"mode": "idioms"}})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		got := res.(map[string]any)["got"]
		want := map[string]any{
			"appError": "AppError: boom", "appErrorIsError": true, "legacy": "LegacyError: old",
			"renamed": "Renamed: second", "custom": "custom8mine", "fn": "fn", "assigned": 3.0,
			"sorted": "1,2,3", "map": "k,v", "json": `{"a":[1,{"b":null}]}`, "replaced": "y-y", "split": "a|b|c",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("call %d:\ngot  %v\nwant %v", i, got, want)
		}
	}
}

// TestSignInsDoNotStarveRequests: while a burst of slow sign-ins saturates what sign-ins may
// use, per-request callbacks keep completing promptly.
func TestSignInsDoNotStarveRequests(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": isolationConfig})
	l := load(t, dir, func(o *Options) {
		o.PoolSize = 2
		o.SignInPoolSize = 2 // 100 sign-ins of 50 ms: 2.5 s of sign-ins
	})
	ctx := context.Background()
	const signIns = 100
	var wg sync.WaitGroup
	var finished atomic.Int32
	for range signIns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			if _, err := l.gen.Authorize(ctx, "credentials", map[string]any{"mode": "busy"}, nil); err != nil {
				t.Errorf("sign-in: %v", err)
			}
		}()
	}
	defer wg.Wait()
	// A steady stream of authorized calls, one every few milliseconds, while the sign-ins
	// run (each takes 50 ms of CPU, so the burst lasts seconds).
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	calls := 0
	var maxD time.Duration
	defer func() { t.Logf("slowest authorized call: %v", maxD) }()
	for ; finished.Load() < signIns; calls++ {
		<-tick.C
		running := signIns - finished.Load()
		start := time.Now()
		res, err := l.gen.Call(ctx, "callbacks.authorized", map[string]any{"request": map[string]any{"mode": "allow"}})
		d := time.Since(start)
		if d > maxD {
			maxD = d
		}
		if d > 2*time.Second {
			t.Fatalf("authorized call %d took %v with %d of %d sign-ins still running", calls, d, running, signIns)
		}
		if err != nil || res != true {
			t.Fatalf("authorized call %d: got %v, %v, want true", calls, res, err)
		}
	}
	t.Logf("%d authorized calls during the sign-ins", calls)
	if calls < 10 {
		t.Errorf("only %d authorized calls ran during the sign-ins, want the stream to overlap them", calls)
	}
}

// TestLanes: which lane each callback runs on, and the lanes' default sizes.
func TestLanes(t *testing.T) {
	for _, tc := range []struct {
		name string
		arg  Object
		want lane
	}{
		{"authorize", nil, laneSignIn},
		{"profile", nil, laneSignIn},
		{"callbacks.signIn", nil, laneSignIn},
		{"callbacks.jwt", Shared{"token": map[string]any{}, "trigger": "signIn"}, laneSignIn},
		{"callbacks.jwt", Shared{"token": map[string]any{}, "trigger": "signUp"}, laneSignIn},
		{"events.signIn", nil, laneSignIn},
		{"events.signOut", nil, laneSignIn},
		{"events.createUser", nil, laneSignIn},
		{"callbacks.authorized", Shared{}, laneRequest},
		{"callbacks.session", Shared{}, laneRequest},
		{"callbacks.jwt", Shared{"token": map[string]any{}, "session": Undefined}, laneRequest},
		{"callbacks.jwt", Shared{"token": map[string]any{}, "trigger": "update"}, laneRequest},
		{"callbacks.jwt", Shared{"token": map[string]any{}, "trigger": "refresh"}, laneRequest},
		{"callbacks.redirect", Shared{}, laneRequest},
		{"events.session", nil, laneRequest},
	} {
		if got := laneOf(tc.name, tc.arg); got != tc.want {
			t.Errorf("laneOf(%s, %v) = %v, want %v", tc.name, tc.arg, got, tc.want)
		}
	}
	for _, tc := range []struct{ pool, signIn, wantRequest, wantSignIn int }{
		{8, 0, 8, 4}, {1, 0, 1, 1}, {3, 0, 3, 1}, {4, 6, 4, 6},
	} {
		r, s := poolSizes(Options{PoolSize: tc.pool, SignInPoolSize: tc.signIn})
		if r != tc.wantRequest || s != tc.wantSignIn {
			t.Errorf("poolSizes(%d, %d) = %d, %d, want %d, %d", tc.pool, tc.signIn, r, s, tc.wantRequest, tc.wantSignIn)
		}
	}
}

// TestAbandonedRuntimesBounded: a lane gives back the slots of at most as many abandoned
// runtimes as it has slots; past that an abandoned runtime keeps its slot until regexp2's
// match timeout stops it, so runaway matches cannot pile up goroutines without end. Once
// they stop, the lane serves again.
func TestAbandonedRuntimesBounded(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": isolationConfig})
	l := load(t, dir, func(o *Options) {
		o.PoolSize = 1
		o.Timeouts.Default = 100 * time.Millisecond
	})
	authorized := func(ctx context.Context, mode string) (any, error) {
		return l.gen.Call(ctx, "callbacks.authorized", map[string]any{"request": map[string]any{"mode": mode}})
	}
	for i := range 2 {
		_, err := callWithin(t, 5*time.Second, func() (any, error) { return authorized(context.Background(), "lookahead") })
		if se := asError(t, err); se.Kind != KindTimeout {
			t.Fatalf("stuck call %d: got %v, want the deadline error", i, err)
		}
	}
	if st := l.gen.PoolStats(); st.Abandoned != 2 || st.Live != 1 {
		t.Errorf("after two abandoned calls: got %+v, want 2 abandoned, the second holding the one request slot", st)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := authorized(short, "allow"); err == nil || !strings.Contains(err.Error(), "no runtime became free") {
		t.Errorf("call while the lane is full of stuck runtimes: got %v, want no runtime", err)
	}
	// Waits in the pool until the runaway matches reach their timeout.
	res, err := callWithin(t, testRegexpMatchTimeout+10*time.Second, func() (any, error) {
		return authorized(context.Background(), "allow")
	})
	if err != nil || res != true {
		t.Fatalf("call once the stuck runtimes stopped: got %v, %v, want true", res, err)
	}
}

// TestDeadlineCappedAtRegexpTimeout: no deadline is longer than regexp2's match timeout, so
// a match that times out (and reads as "no match") has always outlived its call's deadline;
// a longer configured deadline is shortened, with a warning.
func TestDeadlineCappedAtRegexpTimeout(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": isolationConfig})
	l := load(t, dir, func(o *Options) {
		o.Timeouts.Default = time.Hour
		o.Timeouts.PerCallback = map[string]time.Duration{"session": 2 * time.Hour, "jwt": time.Second}
	})
	for name, want := range map[string]time.Duration{
		"callbacks.authorized": testRegexpMatchTimeout, "callbacks.session": testRegexpMatchTimeout,
		"callbacks.jwt": time.Second, "load": testRegexpMatchTimeout,
	} {
		if got := l.gen.timeout(name); got != want {
			t.Errorf("deadline of %s: got %v, want %v", name, got, want)
		}
	}
	if n := strings.Count(l.logs.String(), "SCRIPT_TIMEOUT_CAPPED"); n != 2 {
		t.Errorf("got %d capped-deadline warnings, want 2 (default and session):\n%s", n, l.logs)
	}
}

// TestShutdownStopsRunningCalls: Shutdown waits for calls in flight until its context ends,
// then interrupts them; one stuck in a match that no interrupt reaches is answered and
// abandoned. Neither Shutdown nor the calls wait for the calls' own deadlines.
func TestShutdownStopsRunningCalls(t *testing.T) {
	iso := writeDir(t, map[string]string{"auth.config.js": isolationConfig})
	lim := writeDir(t, map[string]string{"auth.config.js": limitsConfig})
	for _, tc := range []struct {
		name, dir, callback, mode string
	}{
		{"loop", lim, "callbacks.jwt", "loop"},
		{"runaway match", iso, "callbacks.authorized", "backreference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen, err := Load(context.Background(), Options{Dir: tc.dir, Timeouts: Timeouts{Default: 5 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			arg := map[string]any{"token": map[string]any{"mode": tc.mode}, "request": map[string]any{"mode": tc.mode}}
			errc := make(chan error, 1)
			go func() {
				_, err := gen.Call(context.Background(), tc.callback, arg)
				errc <- err
			}()
			// Shutdown must find the call running: wait until its runtime's watchdog has it
			// (nothing tells the test when a call starts; it takes microseconds).
			for !callRunning(gen) {
				runtime.Gosched()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			if err := gen.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown with a call running: got %v, want its context's deadline", err)
			}
			select {
			case err := <-errc:
				se := asError(t, err)
				if se.Kind != KindTimeout || !errors.Is(err, errShutdown) {
					t.Errorf("call: got %v (kind %v), want it canceled by the shutdown", err, se.Kind)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("the call was not answered within 3s of the shutdown (its deadline is 5s)")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("shutdown and call took %v, want well under the call's deadline", d)
			}
			gen.Close() // the call has let go: Close returns
		})
	}
}

// callRunning reports whether a call is running on one of gen's runtimes.
func callRunning(gen *Generation) bool {
	running := false
	gen.eachRuntime(func(v *vm) { running = running || v.watchdog.running() })
	return running
}

// TestStuckOutsideCallbacks: a top level, or a `gateway test` test, stuck in a runaway match
// fails at its deadline too, instead of hanging Load or the test run.
func TestStuckOutsideCallbacks(t *testing.T) {
	stuckTop := strings.Replace(isolationConfig, "let calls = 0;", "let calls = 0; /^(a+)+\\1$/.test(\"a\".repeat(40) + \"b\");", 1)
	dir := writeDir(t, map[string]string{"auth.config.js": stuckTop})
	_, err := callWithin(t, 3*time.Second, func() (*Generation, error) {
		return Load(context.Background(), Options{Dir: dir, Timeouts: Timeouts{Default: 100 * time.Millisecond}})
	})
	if se := asError(t, err); se.Kind != KindTimeout {
		t.Errorf("Load of a stuck top level: got %v, want the load deadline", err)
	}

	tests := writeDir(t, map[string]string{
		"auth.config.js": isolationConfig,
		"stuck.test.js": `import { test, expect } from "callgate/test";
test("runaway match", () => { /^(?=(a+)+b)/.test("a".repeat(40)); });
test("runs after it", () => { expect(1).toBe(1); });
`,
	})
	results, err := callWithin(t, 5*time.Second, func() ([]TestResult, error) {
		return RunTests(context.Background(), Options{Dir: tests, Timeouts: Timeouts{Default: 100 * time.Millisecond}}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Err == nil || results[0].Err.Kind != KindTimeout || results[1].Err != nil {
		t.Errorf("got %+v, want the runaway test failed at its deadline and the next one passed", results)
	}
}
