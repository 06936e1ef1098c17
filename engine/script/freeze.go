package script

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// A runtime serves many calls, for many users, one after the other. Whatever a call leaves
// in the intrinsics or the global object, the next call would see: `Object.prototype.isAdmin
// = true` would make every later user an admin, `Array.prototype.includes = () => true`
// every role check pass. Discarding the runtime after each call would cost a fresh runtime
// per call (a millisecond, against microseconds for the call), so instead, once the
// generation's program has run its top level in a runtime, everything a script can reach
// from the global object is frozen: the intrinsics (constructors, their prototypes and
// statics, the built-in functions, JSON, Math, Reflect, the iterator and generator
// prototypes), the global object's own bindings, and the host objects of the built-in
// modules. A write then fails: a TypeError in strict code (all of the bundle), ignored in
// sloppy code (new Function). Module-level variables stay the script's own, per runtime
// (docs/callbacks.md).
//
// Freezing a prototype makes plain assignment of a property it has throw on every object
// that inherits it (`this.name = "AppError"` in an Error subclass, `obj.toString = f`): the
// "override mistake". The properties code commonly assigns are turned into accessors that
// define the property on the object assigned to, as SES does, and refuse the prototype
// itself.
//
// Finding every object means reading every property descriptor, which in goja costs about
// 3 ms a runtime, 25 times what the rest of a new runtime costs. The intrinsics are the
// same in every runtime, so their walk is done once per process (intrinsicsPlan): the plan
// says how each intrinsic is reached from the roots, and each runtime follows it with plain
// property reads before its program runs, then freezes what it found once the program has
// run. Only what the program (or the host) added or replaced is walked property by
// property.

// hardenSource evaluates, in a runtime that has run no script, to what hardening needs
// from JS: the roots the intrinsics are reached from, the override taming, and the
// functions the walk calls. It captures them before the program runs, so the program cannot
// change what hardening uses or hide an intrinsic by replacing its global binding.
const hardenSource = `(function () {
  "use strict";
  const { getOwnPropertyDescriptor, defineProperty, hasOwn } = Object;
  const TypeErrorCtor = TypeError, StringCtor = String;

  // The global object, and instances of what is reachable only through an instance.
  // (goja has no async generators.)
  const argumentsObject = (function () { return arguments; })();
  const roots = [globalThis,
    function* () {}, async function () {}, () => {}, (function* () {})(), argumentsObject,
    [][Symbol.iterator](), new Map()[Symbol.iterator](), new Set()[Symbol.iterator](),
    ""[Symbol.iterator](), /a/[Symbol.matchAll](""),
  ];

  // The properties code assigns on objects that inherit them. Each becomes an accessor,
  // and every read of it a getter call: not Array.prototype.constructor nor
  // Promise.prototype.constructor, which goja reads on every map, filter and await.
  const overridable = [
    [Object.prototype, ["constructor", "toString", "valueOf"]],
    [Function.prototype, ["constructor", "toString"]],
    [Error.prototype, ["constructor", "message", "name", "toString"]],
  ];
  for (const C of [EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]) {
    if (typeof C === "function") overridable.push([C.prototype, ["constructor", "message", "name"]]);
  }

  function tameOne(obj, name, made) {
    const d = getOwnPropertyDescriptor(obj, name);
    if (!d || !hasOwn(d, "value") || !d.configurable) return;
    const value = d.value;
    const accessors = {
      get() { return value; },
      set(v) {
        if (this === obj) {
          throw new TypeErrorCtor("Cannot assign to read only property '" + StringCtor(name) + "' of a frozen prototype");
        }
        if (hasOwn(this, name)) {
          this[name] = v;
        } else {
          defineProperty(this, name, { value: v, writable: true, enumerable: true, configurable: true });
        }
      },
    };
    made.push(accessors.get, accessors.set);
    defineProperty(obj, name, { get: accessors.get, set: accessors.set, enumerable: d.enumerable, configurable: false });
  }

  return {
    roots,
    // tame returns the accessor functions it made, for them to be frozen too.
    tame() {
      const made = [];
      for (let i = 0; i < overridable.length; i++) {
        const [obj, names] = overridable[i];
        for (let j = 0; j < names.length; j++) tameOne(obj, names[j], made);
      }
      return made;
    },
    freeze: Object.freeze,
    getOwnPropertyDescriptor,
    ownKeys: Reflect.ownKeys,
  };
})()`

// hardenTimeout is the least time hardening (and reading the config) is given, whatever
// deadline the top level has: it takes a fraction of a millisecond, more under the race
// detector on a busy machine. Only a program that hung a huge graph of objects on the
// global object could make it take long.
const hardenTimeout = 10 * time.Second

// hardenProgram is compiled once per process; each runtime runs it.
var hardenProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("callgate:harden", hardenSource, true)
})

// stepKind says how a plan step reaches its object from its parent.
type stepKind uint8

const (
	stepRoot   stepKind = iota // roots[parent]
	stepProto                  // the parent's prototype
	stepValue                  // the value of the parent's data property key
	stepGetter                 // the getter of the parent's accessor property key
	stepSetter                 // its setter
)

// planStep reaches one intrinsic. names and syms are how many own string keys and own
// enumerable symbol keys the object has in a runtime that has run no script: a runtime
// whose object has others was changed by its program or its host, and that object is
// walked property by property.
type planStep struct {
	parent      int
	kind        stepKind
	key         string
	sym         *goja.Symbol // the well-known symbols are the same in every runtime
	names, syms int
	method      bool // isMethod: its keys are not walked
}

// intrinsicsPlan walks the intrinsics of a fresh runtime once per process.
var intrinsicsPlan = sync.OnceValues(func() ([]planStep, error) {
	rt := goja.New()
	h, err := newHardener(rt)
	if err != nil {
		return nil, err
	}
	var plan []planStep
	var objs []*goja.Object
	index := map[*goja.Object]bool{}
	add := func(val goja.Value, st planStep) {
		o, ok := val.(*goja.Object)
		if !ok || o == nil || index[o] {
			return
		}
		index[o] = true
		st.names, st.syms, st.method = len(o.GetOwnPropertyNames()), len(o.Symbols()), isMethod(o)
		plan = append(plan, st)
		objs = append(objs, o)
	}
	err = h.run(func() {
		for i, r := range h.roots {
			add(r, planStep{parent: i, kind: stepRoot})
		}
		for i := 0; i < len(objs); i++ {
			o := objs[i]
			if p := o.Prototype(); p != nil {
				add(p, planStep{parent: i, kind: stepProto})
			}
			if plan[i].method {
				continue
			}
			h.eachOwn(o, func(key goja.Value, d *goja.Object) {
				st := planStep{parent: i}
				if sym, ok := key.(*goja.Symbol); ok {
					st.sym = sym
				} else {
					st.key = key.String()
				}
				if val := d.Get("value"); val != nil {
					st.kind = stepValue
					add(val, st)
					return
				}
				st.kind = stepGetter
				add(d.Get("get"), st)
				st.kind = stepSetter
				add(d.Get("set"), st)
			})
		}
	})
	if err != nil {
		return nil, err
	}
	return plan, nil
})

// isMethod reports a function without a prototype of its own (a method, an arrow, a
// getter): it has nothing but its length and name, so its keys are not walked.
func isMethod(o *goja.Object) bool {
	if _, ok := goja.AssertFunction(o); !ok {
		return false
	}
	return o.Get("prototype") == nil
}

// hardener freezes one runtime (newHardener before its program runs, harden after).
type hardener struct {
	rt                     *goja.Runtime
	roots                  []*goja.Object
	tame, freeze, gopd, ks goja.Callable
	// intrinsics are the plan's objects in this runtime, found before the program ran; nil
	// when the plan did not fit the runtime (then everything is walked).
	intrinsics []*goja.Object
	plan       []planStep
}

var errHardenSource = errors.New("the hardening helpers are not what they should be")

// newHardener captures what hardening needs, in a runtime that has run no script yet.
func newHardener(rt *goja.Runtime) (*hardener, error) {
	val, err := rt.RunProgram(hardenProgram())
	if err != nil {
		return nil, err
	}
	o := val.ToObject(rt)
	h := &hardener{rt: rt}
	var ok [4]bool
	h.tame, ok[0] = goja.AssertFunction(o.Get("tame"))
	h.freeze, ok[1] = goja.AssertFunction(o.Get("freeze"))
	h.gopd, ok[2] = goja.AssertFunction(o.Get("getOwnPropertyDescriptor"))
	h.ks, ok[3] = goja.AssertFunction(o.Get("ownKeys"))
	if ok != [4]bool{true, true, true, true} {
		return nil, errHardenSource
	}
	arr := o.Get("roots").ToObject(rt)
	for i := range int(arr.Get("length").ToInteger()) {
		r, ok := arr.Get(strconv.Itoa(i)).(*goja.Object)
		if !ok {
			return nil, errHardenSource
		}
		h.roots = append(h.roots, r)
	}
	return h, nil
}

// run runs f, which reads the runtime through goja's Go API (which throws by panicking)
// and panics with the errors of the functions it calls, and returns what went wrong.
func (h *hardener) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(error)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	if ex := h.rt.Try(f); ex != nil {
		return ex
	}
	return nil
}

// capture finds the plan's objects in the runtime, which must not have run a script yet:
// every step then reads a data property as the plan saw it, and runs no script's getter.
func (h *hardener) capture() error {
	plan, err := intrinsicsPlan()
	if err != nil {
		return err
	}
	objs := make([]*goja.Object, len(plan))
	fits := true
	err = h.run(func() {
		for i, st := range plan {
			var val goja.Value
			switch st.kind {
			case stepRoot:
				if st.parent < len(h.roots) {
					val = h.roots[st.parent]
				}
			case stepProto:
				if p := objs[st.parent].Prototype(); p != nil {
					val = p
				}
			case stepValue:
				val = h.get(objs[st.parent], st)
			case stepGetter, stepSetter:
				if d := h.descriptor(objs[st.parent], st); d != nil {
					if st.kind == stepGetter {
						val = d.Get("get")
					} else {
						val = d.Get("set")
					}
				}
			}
			o, ok := val.(*goja.Object)
			if !ok || o == nil {
				fits = false
				return
			}
			objs[i] = o
		}
	})
	if err != nil {
		return err
	}
	if fits {
		h.intrinsics, h.plan = objs, plan
	}
	return nil
}

func (h *hardener) get(o *goja.Object, st planStep) goja.Value {
	if st.sym != nil {
		return o.GetSymbol(st.sym)
	}
	return o.Get(st.key)
}

// descriptor is the descriptor of o's own property st.key (or st.sym); nil when o has none.
func (h *hardener) descriptor(o *goja.Object, st planStep) *goja.Object {
	var key goja.Value = st.sym
	if st.sym == nil {
		key = h.rt.ToValue(st.key)
	}
	d, err := h.gopd(goja.Undefined(), o, key)
	if err != nil {
		panic(err)
	}
	do, _ := d.(*goja.Object)
	return do
}

// eachOwn calls f with each own key of o and its descriptor.
func (h *hardener) eachOwn(o *goja.Object, f func(key goja.Value, d *goja.Object)) {
	keys, err := h.ks(goja.Undefined(), o)
	if err != nil {
		panic(err)
	}
	ko := keys.ToObject(h.rt)
	n := int(ko.Get("length").ToInteger())
	for i := range n {
		key := ko.Get(strconv.Itoa(i))
		d, err := h.gopd(goja.Undefined(), o, key)
		if err != nil {
			panic(err)
		}
		if do, ok := d.(*goja.Object); ok {
			f(key, do)
		}
	}
}

// harden tames the overridable properties and freezes the runtime: the intrinsics found
// before the program ran, and, walking them property by property, everything else
// reachable from the global object and from extra (the built-in modules' host objects,
// which the program holds but the global object does not).
func (h *hardener) harden(extra ...goja.Value) error {
	return h.run(func() {
		made, err := h.tame(goja.Undefined())
		if err != nil {
			panic(err)
		}
		seen := make(map[*goja.Object]bool, len(h.intrinsics)+64)
		stack := []goja.Value{made}
		var rescan []*goja.Object // seen, but with keys the plan does not know
		if h.intrinsics == nil {
			for _, r := range h.roots {
				stack = append(stack, r)
			}
		}
		for i, o := range h.intrinsics {
			seen[o] = true
			h.mustFreeze(o)
			st := h.plan[i]
			// What the program (or the host, on the global object) changed: a value
			// replaced, keys added or removed.
			if st.kind == stepValue {
				if cur, ok := h.get(h.intrinsics[st.parent], st).(*goja.Object); ok && cur != nil && !cur.SameAs(o) {
					stack = append(stack, cur)
				}
			}
			// (Not for the methods, nine in ten of the intrinsics: counting their keys would
			// be a third of the work, and a top level that hangs properties on a built-in
			// function is not worth it. The function itself is frozen all the same.)
			if !st.method && (len(o.GetOwnPropertyNames()) != st.names || len(o.Symbols()) != st.syms) {
				rescan = append(rescan, o)
			}
		}
		stack = append(stack, extra...)
		visitKeys := func(o *goja.Object) {
			h.eachOwn(o, func(_ goja.Value, d *goja.Object) {
				if val := d.Get("value"); val != nil {
					stack = append(stack, val)
					return
				}
				stack = append(stack, d.Get("get"), d.Get("set"))
			})
		}
		for _, o := range rescan {
			visitKeys(o)
		}
		for len(stack) > 0 {
			o, ok := stack[len(stack)-1].(*goja.Object)
			stack = stack[:len(stack)-1]
			if !ok || o == nil || seen[o] {
				continue
			}
			seen[o] = true
			h.mustFreeze(o)
			if p := o.Prototype(); p != nil {
				stack = append(stack, p)
			}
			if !isMethod(o) {
				visitKeys(o)
			}
		}
	})
}

func (h *hardener) mustFreeze(o *goja.Object) {
	if _, err := h.freeze(goja.Undefined(), o); err != nil {
		panic(err)
	}
}
