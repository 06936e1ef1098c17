package script

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestExportMatchesJSON checks that the direct export of plain values gives exactly what
// JSON.stringify + encoding/json gives, and that everything else takes the JSON path.
func TestExportMatchesJSON(t *testing.T) {
	v := plainVM(t)
	tests := []struct {
		src   string
		plain bool
	}{
		{`({a: 1, b: "x", c: true, d: null, e: undefined, f() {}, [Symbol("s")]: 1, g: [1, undefined, () => 1, null]})`, true},
		{`({n: NaN, i: Infinity, z: -0, big: 2 ** 60, frac: 0.1, neg: -5})`, true},
		{`({nested: {deeper: {list: [{x: 1}, [2, [3]]]}}, "2": "numeric", "1": "keys"})`, true},
		{`Object.assign(Object.create(null), {a: 1})`, true},
		{`({get g() { return "got"; }, h: [,,1]})`, true},
		{`({when: new Date(0)})`, false},
		{`({custom: {toJSON() { return "J"; }}})`, false},
		{`({inst: new (class P { constructor() { this.p = 1; } })()})`, false},
		{`({boxed: new String("s"), num: new Number(2)})`, false},
		{`({m: new Map([[1, 2]]), re: /x/})`, false},
		{`(() => { let o = {}; let c = o; for (let i = 0; i < 40; i++) { c.n = {}; c = c.n; } return o; })()`, false},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			val, err := v.rt.RunString(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			s, err := v.stringify(v.jsonObj, val)
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if err := json.Unmarshal([]byte(s.String()), &want); err != nil {
				t.Fatal(err)
			}
			budget := 1 << 30
			plain, ok := v.exportPlain(val, 0, &budget)
			if ok != tc.plain {
				t.Fatalf("exportPlain handled it: got %v, want %v", ok, tc.plain)
			}
			if ok && !reflect.DeepEqual(plain, want) {
				t.Errorf("direct export: got %#v, want %#v", plain, want)
			}
			got, err := v.exportJSON(val)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("exportJSON: got %#v, want %#v", got, want)
			}
		})
	}
}

// TestAsPromise: promises are told apart by what they export, not by their class name,
// which goja reports as "Object": an async callback's result is read as the promise it is
// (not adopted as a thenable, which costs a promise and a microtask turn per call), and
// typeOf names it in errors.
func TestAsPromise(t *testing.T) {
	v := plainVM(t)
	for _, tc := range []struct {
		src     string
		promise bool
	}{
		{`(async () => ({a: 1}))()`, true},
		{`Promise.resolve(1)`, true},
		{`new Promise(() => {})`, true},
		{`({a: 1})`, false},
		{`({then(resolve) { resolve(1); }})`, false},
		{`[1, 2]`, false},
	} {
		val, err := v.rt.RunString(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		o := val.ToObject(v.rt)
		if got := asPromise(o) != nil; got != tc.promise {
			t.Errorf("%s: asPromise %v, want %v", tc.src, got, tc.promise)
		}
		if got := v.typeOf(val) == "promise"; got != tc.promise {
			t.Errorf("%s: typeOf %q", tc.src, v.typeOf(val))
		}
	}
}
