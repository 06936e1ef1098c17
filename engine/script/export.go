package script

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"
)

// Values cross between Go and the runtime here: results leave through exportJSON (JSON
// semantics, size-bounded), arguments enter through toJS (fresh plain JS values).

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
	switch v.plainShape(o) {
	case plainObject:
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
	case plainArray:
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

// shape is what plainShape makes of an object.
type shape uint8

const (
	notPlain shape = iota
	plainObject
	plainArray
)

// plainShape says whether o is data that JSON.stringify writes as it is: an object whose
// prototype is Object.prototype (or none) without a toJSON, or an array whose prototype is
// Array.prototype. Anything else (Dates, class instances, wrappers, proxies of other
// classes) is left to JSON.stringify.
func (v *vm) plainShape(o *goja.Object) shape {
	switch o.ClassName() {
	case "Object":
		if proto := o.Prototype(); proto != nil && !proto.SameAs(v.objectProto) {
			return notPlain
		}
		if t := o.Get("toJSON"); t != nil && !goja.IsUndefined(t) {
			return notPlain
		}
		return plainObject
	case "Array":
		if proto := o.Prototype(); proto != nil && !proto.SameAs(v.arrayProto) {
			return notPlain
		}
		return plainArray
	}
	return notPlain
}

// skipsInJSON reports values JSON.stringify leaves out of objects: functions and symbols.
func (v *vm) skipsInJSON(e goja.Value) bool {
	if _, ok := e.(*goja.Symbol); ok {
		return true
	}
	_, ok := goja.AssertFunction(e)
	return ok
}

// typePromise is what ExportType says of a promise object. goja's promises have the class
// name "Object", so the class cannot tell them apart, and Export would convert a plain
// object whole.
var typePromise = reflect.TypeOf((*goja.Promise)(nil))

// asPromise returns o's promise, or nil when o is not a promise.
func asPromise(o *goja.Object) *goja.Promise {
	if o.ExportType() != typePromise {
		return nil
	}
	p, _ := o.Export().(*goja.Promise)
	return p
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
		}
		if asPromise(o) != nil {
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
	case nullValue:
		return goja.Null()
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
		c := v.call
		if c == nil {
			c = &v.noCall // made outside a call (tests): read whenever
		}
		return v.rt.NewDynamicObject(&lazyObject{c: c, src: t})
	case JSON:
		return v.parseJSON(t)
	case Fields:
		return v.fieldsToJS(t)
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
	case goja.Value:
		// A value of this runtime the host kept between two calls of one operation
		// (ReadSession's token): passed as it is, as NextAuth passes the same object on.
		return t
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
