package script

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/dop251/goja"
	"github.com/valyala/fastjson"
)

// Two argument and result types keep the key order of objects as NextAuth has it. A JS
// object's keys come in insertion order, and NextAuth serialises tokens and session bodies
// with JSON.stringify, so what the browser and the token see is the order in which the
// script (or NextAuth before it) built the object. A Go map has no order; these do.

// JSON is the text of a JSON object. As a callback's argument (or a property of one) it is
// parsed by the runtime's own JSON.parse, so the script sees its keys in the text's order;
// the typed jwt and session calls return their result as JSON written by the runtime's
// JSON.stringify, which is NextAuth's serialisation byte for byte.
type JSON []byte

// Map decodes j for Go code that reads its fields. Numbers are float64, as in JavaScript.
func (j JSON) Map() (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("decode JSON object: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("decode JSON object: %s is not an object", shorten(j))
	}
	return m, nil
}

// MarshalJSON implements json.Marshaler: j is already JSON.
func (j JSON) MarshalJSON() ([]byte, error) {
	if !json.Valid(j) {
		return nil, fmt.Errorf("invalid JSON text %s", shorten(j))
	}
	return j, nil
}

func shorten(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q…", b[:40])
	}
	return fmt.Sprintf("%q", b)
}

// Field is one property of Fields.
type Field struct {
	Key   string
	Value any
}

// Fields is an object the host builds whose key order matters, such as NextAuth's default
// session {user: {name, email, image}, expires}. A value of Undefined is a key the script
// sees with the value undefined (`"image" in session.user` holds, as in NextAuth), which
// JSON leaves out.
type Fields []Field

// MarshalJSON writes the fields in order, leaving out undefined ones, as JSON.stringify
// would. Strings are not HTML-escaped, as JSON.stringify does not escape them.
func (f Fields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	first := true
	for _, fl := range f {
		if _, undefined := fl.Value.(undefinedValue); undefined {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		if err := enc.Encode(fl.Key); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode ends each value with a newline
		b.WriteByte(':')
		if err := enc.Encode(fl.Value); err != nil {
			return nil, fmt.Errorf("field %q: %w", fl.Key, err)
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// parseJSON makes a fresh JS value of j, as JSON.parse would: objects with their keys in
// the text's order. It parses with the runtime's own parser (fastjson, reused, so parsing
// allocates nothing) and builds the objects directly; a text it does not take (too deep, or
// with \u escapes, which may be lone surrogates only JSON.parse keeps) goes to the
// runtime's JSON.parse, captured before any script ran. A text neither parses is undefined,
// as toJS makes of values it cannot convert: the host only passes texts it decoded or wrote.
func (v *vm) parseJSON(j JSON) goja.Value {
	if !bytes.Contains(j, []byte(`\u`)) {
		if parsed, err := v.jsonParser.ParseBytes(j); err == nil {
			return v.fromParsed(parsed)
		}
	}
	val, err := v.jsonParse(v.jsonObj, v.rt.ToValue(string(j)))
	if err != nil {
		return goja.Undefined()
	}
	return val
}

// fromParsed builds the JS value of a parsed JSON value.
func (v *vm) fromParsed(x *fastjson.Value) goja.Value {
	switch x.Type() {
	case fastjson.TypeObject:
		o := v.rt.NewObject()
		obj, _ := x.Object()
		obj.Visit(func(key []byte, e *fastjson.Value) {
			k := string(key)
			if k == "__proto__" {
				// JSON.parse makes an own property of it; Set would change the prototype.
				_ = o.DefineDataProperty(k, v.fromParsed(e), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
				return
			}
			_ = o.Set(k, v.fromParsed(e))
		})
		return o
	case fastjson.TypeArray:
		arr, _ := x.Array()
		items := make([]any, len(arr))
		for i, e := range arr {
			items[i] = v.fromParsed(e)
		}
		return v.rt.NewArray(items...)
	case fastjson.TypeString:
		return v.rt.ToValue(string(x.GetStringBytes()))
	case fastjson.TypeNumber:
		f := x.GetFloat64()
		if i := int64(f); float64(i) == f && f >= -maxSafeInteger && f <= maxSafeInteger && !(f == 0 && math.Signbit(f)) {
			return v.rt.ToValue(i)
		}
		return v.rt.ToValue(f)
	case fastjson.TypeTrue:
		return v.rt.ToValue(true)
	case fastjson.TypeFalse:
		return v.rt.ToValue(false)
	}
	return goja.Null()
}

// maxSafeInteger is Number.MAX_SAFE_INTEGER: integers up to it are exact in a double.
const maxSafeInteger = 1<<53 - 1

// fieldsToJS builds a plain object with f's keys in order.
func (v *vm) fieldsToJS(f Fields) goja.Value {
	o := v.rt.NewObject()
	for _, fl := range f {
		_ = o.Set(fl.Key, v.toJS(fl.Value))
	}
	return o
}

// exportObjectJSON checks that a callback returned an object, and returns the runtime's
// JSON.stringify of it (toJSON and Dates apply, undefined and functions vanish), within the
// result budget. want says what the callback must return, for the error.
func (v *vm) exportObjectJSON(name string, val goja.Value, want string) (JSON, error) {
	if !isObject(val) || v.typeOf(val) != "object" {
		return nil, invalidResult(name, want, v.typeOf(val))
	}
	// The direct walk writes what JSON.stringify would, for plain data; anything else
	// (toJSON, Dates, class instances, cycles, lone surrogates) takes JSON.stringify.
	budget := v.gen.maxResult
	if buf, ok := v.appendPlainJSON(v.jsonBuf[:0], val, 0, &budget); ok {
		v.jsonBuf = buf[:0]
		if len(buf) > v.gen.maxResult {
			return nil, v.resultTooLarge()
		}
		return JSON(bytes.Clone(buf)), nil
	}
	s, err := v.stringify(v.jsonObj, val)
	if err != nil {
		return nil, err
	}
	if isNullish(s) {
		return nil, invalidResult(name, want, "a value whose JSON form is undefined")
	}
	str, _ := s.Export().(string)
	if len(str) > v.gen.maxResult {
		return nil, v.resultTooLarge()
	}
	if len(str) == 0 || str[0] != '{' {
		return nil, invalidResult(name, want, "a value whose JSON form is not an object")
	}
	return JSON(str), nil
}

// appendPlainJSON appends JSON.stringify(val) for plain objects, arrays and primitives,
// byte for byte: keys in Object.keys order, undefined, functions and symbols left out of
// objects and null in arrays, non-finite numbers as null, numbers as JavaScript writes
// them. It reports false where the two could differ, as exportPlain does, and for strings
// holding a lone surrogate (which JSON.stringify escapes), and the caller stringifies.
func (v *vm) appendPlainJSON(b []byte, val goja.Value, depth int, budget *int) ([]byte, bool) {
	if *budget -= 8; *budget < 0 {
		return b, false
	}
	o, ok := val.(*goja.Object)
	if !ok {
		return v.appendPrimitiveJSON(b, val, budget)
	}
	if depth >= exportPlainDepth {
		return b, false
	}
	switch v.plainShape(o) {
	case plainObject:
		b = append(b, '{')
		first := true
		for _, k := range o.Keys() {
			e := o.Get(k)
			if e == nil || goja.IsUndefined(e) || v.skipsInJSON(e) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			if *budget -= len(k); *budget < 0 {
				return b, false
			}
			if b, ok = appendJSONString(b, k); !ok {
				return b, false
			}
			b = append(b, ':')
			if b, ok = v.appendPlainJSON(b, e, depth+1, budget); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case plainArray:
		n := o.Get("length").ToInteger()
		if n > exportPlainMaxArray {
			return b, false
		}
		b = append(b, '[')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			e := o.Get(strconv.FormatInt(i, 10))
			if e == nil || goja.IsUndefined(e) || v.skipsInJSON(e) {
				b = append(b, "null"...)
				continue
			}
			if b, ok = v.appendPlainJSON(b, e, depth+1, budget); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	return b, false
}

// appendPrimitiveJSON writes a string, number, boolean or null as JSON.stringify does.
func (v *vm) appendPrimitiveJSON(b []byte, val goja.Value, budget *int) ([]byte, bool) {
	if goja.IsNull(val) {
		return append(b, "null"...), true
	}
	switch val.ExportType() {
	case typeString:
		s := val.String()
		if *budget -= len(s); *budget < 0 {
			return b, false
		}
		return appendJSONString(b, s)
	case typeBool:
		if val.ToBoolean() {
			return append(b, "true"...), true
		}
		return append(b, "false"...), true
	case typeInt:
		return strconv.AppendInt(b, val.ToInteger(), 10), true
	case typeFloat:
		f := val.ToFloat()
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return append(b, "null"...), true
		case f == 0:
			return append(b, '0'), true // -0 too
		case f == math.Trunc(f) && math.Abs(f) < 1e21:
			return strconv.AppendFloat(b, f, 'f', -1, 64), true
		}
		return append(b, val.String()...), true // JavaScript's own Number to String
	}
	return b, false // BigInt, and whatever else only JSON.stringify knows
}

var (
	typeString = reflect.TypeOf("")
	typeBool   = reflect.TypeOf(false)
	typeInt    = reflect.TypeOf(int64(0))
	typeFloat  = reflect.TypeOf(float64(0))
)

// appendJSONString quotes s as JSON.stringify does: ", \ and control characters escaped
// (\b \f \n \r \t, the rest as \u00xx), everything else as it is, U+2028 and U+2029
// included. It reports false when s holds U+FFFD, which may stand for a lone surrogate
// that JSON.stringify would write as an escape.
func appendJSONString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			if c == 0xEF && strings.HasPrefix(s[i:], "\uFFFD") {
				return b, false
			}
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}
