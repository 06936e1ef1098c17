package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MongoDB Extended JSON, as mongoexport writes it in its relaxed and canonical forms: the
// values users import decodes ($oid, $date, $numberInt, $numberLong, $numberDouble).

// decodeObjectID accepts {"$oid": "65a1…"} and "65a1…" and returns the lower-cased hex.
func decodeObjectID(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		var oid map[string]json.RawMessage
		if err := json.Unmarshal(v, &oid); err != nil || len(oid) != 1 || oid["$oid"] == nil {
			return "", errors.New(`want {"$oid": "…"} or a string of 24 hex characters`)
		}
		if err := json.Unmarshal(oid["$oid"], &s); err != nil {
			return "", errors.New(`$oid: want a string of 24 hex characters`)
		}
	}
	id := strings.ToLower(s)
	if !IsUserID(id) {
		return "", fmt.Errorf("%q: want 24 hex characters", s)
	}
	return id, nil
}

// decodeDate reads a date: {"$date": …} in either form, or an ISO 8601 string as
// JSON.stringify writes a JavaScript Date. null is no date.
func decodeDate(v json.RawMessage) (time.Time, error) {
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return parseISODate(s)
	}
	var w map[string]json.RawMessage
	if err := json.Unmarshal(v, &w); err != nil || len(w) != 1 || w["$date"] == nil {
		return time.Time{}, errors.New(`want {"$date": …} or an ISO 8601 string`)
	}
	var date any
	if err := unmarshalNumbers(w["$date"], &date); err != nil {
		return time.Time{}, err
	}
	return dateValue(date)
}

// decodeExtendedJSON decodes one field's value and turns the Extended JSON in it into
// plain JSON values (see ParseUserImport). path names the field in errors.
func decodeExtendedJSON(raw json.RawMessage, path string) (any, error) {
	var v any
	if err := unmarshalNumbers(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fromExtendedJSON(v, path)
}

// unmarshalNumbers decodes raw keeping numbers as json.Number, so that none is rounded
// before it is checked.
func unmarshalNumbers(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

func fromExtendedJSON(v any, path string) (any, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := exactNumber(string(x))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return f, nil
	case []any:
		for i := range x {
			e, err := fromExtendedJSON(x[i], fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			x[i] = e
		}
		return x, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.HasPrefix(k, "$") {
				return fromWrapper(x, k, path)
			}
		}
		for _, k := range keys {
			e, err := fromExtendedJSON(x[k], path+"."+k)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
		return x, nil
	default: // string, bool, nil
		return v, nil
	}
}

// fromWrapper turns one Extended JSON value ({"$type": value}) into plain JSON.
func fromWrapper(x map[string]any, key, path string) (any, error) {
	if len(x) != 1 {
		return nil, fmt.Errorf("%s: {%q: …} with other fields beside it: not MongoDB Extended JSON", path, key)
	}
	str := func() (string, error) {
		s, ok := x[key].(string)
		if !ok {
			return "", fmt.Errorf("%s: %s: want a string", path, key)
		}
		return s, nil
	}
	switch key {
	case "$oid":
		s, err := str()
		if err != nil {
			return nil, err
		}
		if id := strings.ToLower(s); IsUserID(id) {
			return id, nil
		}
		return nil, fmt.Errorf("%s: $oid %q: want 24 hex characters", path, s)
	case "$date":
		t, err := dateValue(x[key])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return t.UTC().Format(isoMillis), nil
	case "$numberInt":
		s, err := str()
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: $numberInt %q: not a 32-bit integer", path, s)
		}
		return float64(n), nil
	case "$numberLong":
		s, err := str()
		if err != nil {
			return nil, err
		}
		n, err := exactInteger(s)
		if err != nil {
			return nil, fmt.Errorf("%s: $numberLong: %w", path, err)
		}
		return float64(n), nil
	case "$numberDouble":
		s, err := str()
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%s: $numberDouble %q: want a finite number (JSON has no NaN or Infinity)", path, s)
		}
		return f, nil
	default:
		return nil, fmt.Errorf("%s: Extended JSON type %s is not supported (only $oid, $date, $numberInt, $numberLong and $numberDouble are)", path, key)
	}
}

// dateValue reads the value inside {"$date": …}: an ISO 8601 string (relaxed form),
// {"$numberLong": "<ms since the epoch>"} (canonical form, and relaxed outside years
// 1970-9999), or a plain number of milliseconds (older mongoexport versions).
func dateValue(v any) (time.Time, error) {
	var ms int64
	switch x := v.(type) {
	case string:
		return parseISODate(x)
	case json.Number:
		n, err := exactInteger(string(x))
		if err != nil {
			return time.Time{}, fmt.Errorf("$date: %w", err)
		}
		ms = n
	case map[string]any:
		s, ok := x["$numberLong"].(string)
		if len(x) != 1 || !ok {
			return time.Time{}, errors.New(`$date: want an ISO 8601 string or {"$numberLong": "<milliseconds>"}`)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("$date: $numberLong %q: not a 64-bit integer", s)
		}
		ms = n
	default:
		return time.Time{}, errors.New(`$date: want an ISO 8601 string or {"$numberLong": "<milliseconds>"}`)
	}
	return checkYear(time.UnixMilli(ms).UTC())
}

func parseISODate(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: not an ISO 8601 date and time (want 2024-01-02T03:04:05.000Z)", s)
	}
	return checkYear(t.UTC())
}

// checkYear refuses dates JSON cannot carry as ISO strings (time.Time's own encoding stops
// at year 9999), so that a stored user always encodes.
func checkYear(t time.Time) (time.Time, error) {
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("date in year %d: want years 1 to 9999", y)
	}
	return t, nil
}

// exactInteger parses a decimal integer a JSON number holds exactly.
func exactInteger(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: not a 64-bit integer", s)
	}
	if n > maxExactInteger || n < -maxExactInteger {
		return 0, fmt.Errorf("%s: beyond ±2^53, a JSON number cannot hold it exactly (store it as a string)", s)
	}
	return n, nil
}

// exactNumber converts a plain JSON number, refusing an integer it would round.
func exactNumber(s string) (float64, error) {
	if !strings.ContainsAny(s, ".eE") {
		n, err := exactInteger(s)
		return float64(n), err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not a finite double", s)
	}
	return f, nil
}
