package script

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/dop251/goja"
)

// plainVM is a runtime of the behaviours fixture, for tests of the JSON helpers.
func plainVM(t testing.TB) *vm {
	t.Helper()
	l := load(t, filepath.Join(fixtures, "behaviours"), nil)
	v, _, err := l.gen.pools[laneRequest].acquire(context.Background(), l.gen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.gen.pools[laneRequest].release(v, false) })
	return v
}

// checkPlainJSON compares the direct JSON walk with the runtime's JSON.stringify: the same
// bytes when the walk takes the value, and plain says whether it must.
func checkPlainJSON(t *testing.T, v *vm, val goja.Value, plain bool) {
	t.Helper()
	budget := 1 << 30
	got, ok := v.appendPlainJSON(nil, val, 0, &budget)
	s, err := v.stringify(v.jsonObj, val)
	if err != nil {
		if ok {
			t.Fatalf("the walk wrote %s where JSON.stringify throws %v", got, err)
		}
		return
	}
	if ok != plain {
		t.Fatalf("the walk took it: got %v, want %v (JSON.stringify: %s)", ok, plain, s)
	}
	if ok && string(got) != s.String() {
		t.Errorf("walk %s\nJSON.stringify %s", got, s)
	}
}

// TestPlainJSONMatchesStringify: the walk that writes callback results is JSON.stringify
// byte for byte, key order, escapes and number forms included, and leaves everything it
// cannot write exactly to JSON.stringify.
func TestPlainJSONMatchesStringify(t *testing.T) {
	v := plainVM(t)
	for _, tc := range []struct {
		src   string
		plain bool
	}{
		{`({b: 1, a: 2, c: {z: 1, y: [3, 2, 1]}})`, true},
		{`({"2": "two", "1": "one", x: 1, "10": "ten", "-1": "neg"})`, true},
		{`(() => { const o = {first: 1, second: 2}; delete o.first; o.first = 3; o.third = 4; return o; })()`, true},
		{`({a: 1, b: "x", c: true, d: null, e: undefined, f() {}, [Symbol("s")]: 1, g: [1, undefined, () => 1, null, , 2]})`, true},
		{`({n: NaN, i: -Infinity, z: -0, big: 2 ** 60, huge: 1e21, frac: 0.1, tiny: 1e-7, small: 0.000001, neg: -5, max: Number.MAX_VALUE, min: 5e-324, unsafe: 2 ** 53 + 2, third: 1 / 3})`, true},
		{`({q: "say \"hi\"", bs: "a\\b", ctl: "\b\f\n\r\t\u0001\u001f\u007f", sep: "\u2028\u2029", uni: "é 日本 😀", html: "<a>&</a>"})`, true},
		{`({"ké\"y\n": 1})`, true},
		{`Object.assign(Object.create(null), {a: 1})`, true},
		{`({get g() { return "got"; }})`, true},
		{`({lone: "\ud800"})`, false},
		{`({pair: "\ud83d\ude00", fffd: "\ufffd"})`, false},
		{`({when: new Date(0)})`, false},
		{`({custom: {toJSON() { return "J"; }}})`, false},
		{`({inst: new (class P { constructor() { this.p = 1; } })()})`, false},
		{`({boxed: new String("s")})`, false},
		{`({big: 10n})`, false},
	} {
		t.Run(tc.src, func(t *testing.T) {
			val, err := v.rt.RunString(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			checkPlainJSON(t, v, val, tc.plain)
		})
	}
}

// TestParseJSONKeepsOrder: a JSON argument reaches the script as JSON.parse would make it,
// keys in the text's order, __proto__ an own key, and the same values.
func TestParseJSONKeepsOrder(t *testing.T) {
	v := plainVM(t)
	check, err := v.rt.RunString(`(o) => JSON.stringify([Object.keys(o), Object.getPrototypeOf(o) === Object.prototype, o])`)
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := goja.AssertFunction(check)
	for _, text := range []string{
		`{"name":"Jane","email":"j@x","sub":"1","iat":1700000000,"exp":1700003600.5,"jti":"x"}`,
		`{"z":{"b":[1,{"d":null,"c":true}],"a":false},"a":-0.25,"big":12345678901234567890}`,
		`{"__proto__":{"polluted":1},"k":"v"}`,
		`{"esc":"\u00e9\ud83d\ude00\n","lone":"\ud800"}`,
		`{"dup":1,"other":2,"dup":3}`,
	} {
		want, err := fn(goja.Undefined(), mustParse(t, v, text))
		if err != nil {
			t.Fatal(err)
		}
		got, err := fn(goja.Undefined(), v.parseJSON(JSON(text)))
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s:\n got %s\nwant %s", text, got, want)
		}
	}
}

func mustParse(t *testing.T, v *vm, text string) goja.Value {
	t.Helper()
	val, err := v.jsonParse(v.jsonObj, v.rt.ToValue(text))
	if err != nil {
		t.Fatal(err)
	}
	return val
}

// FuzzPlainJSON compares the walk with JSON.stringify on objects made of fuzzed keys,
// strings and numbers.
func FuzzPlainJSON(f *testing.F) {
	for _, s := range []string{"", "a", "é\"\\\n\x01", "\u2028", "\xff", "10", "__proto__"} {
		f.Add(s, 1.5)
	}
	f.Add("k", math.Inf(1))
	f.Add("k", 1e21)
	f.Add("k", -0.0)
	v := plainVM(f)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		o := v.rt.NewObject()
		_ = o.Set("s", s)
		_ = o.Set("x", x)
		_ = o.DefineDataProperty(s, v.rt.ToValue(x), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
		_ = o.Set("arr", v.rt.NewArray(x, s, int64(x)))
		s2, err := v.stringify(v.jsonObj, o)
		if err != nil {
			t.Fatal(err)
		}
		budget := 1 << 30
		got, ok := v.appendPlainJSON(nil, o, 0, &budget)
		if ok && string(got) != s2.String() {
			t.Fatalf("walk %s\nJSON.stringify %s", got, s2)
		}
		if !ok && !containsFFFD(s) {
			t.Fatalf("the walk refused %q", s)
		}
	})
}

func containsFFFD(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' {
			return true
		}
	}
	return false
}
