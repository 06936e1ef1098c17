package script

import (
	"sort"

	"github.com/dop251/goja"
)

// Object is a value the host passes to a callback without converting it up front: the
// callback sees an ordinary object, each property is computed and converted to a fresh JS
// value the first time the script reads it, and the script's writes and deletions stay in
// its own object, never in the host's. A callback that reads two properties of a large
// object pays for two. Get may return JSON-shaped values, Shared maps or other Objects.
//
// An Object is read on the runtime's goroutine during the call only, and must not change
// while a call that received it runs.
type Object interface {
	// Get returns the property key, or false when there is none.
	Get(key string) (any, bool)
	// Keys lists the properties, in any order: the script sees them sorted.
	Keys() []string
}

// Shared is a JSON-shaped map that other goroutines read at the same time (a cached
// session's token, say), passed to a callback as an Object: without copying it up front,
// and without the script's writes reaching it.
//
// The map must not change while a call that received it runs.
type Shared map[string]any

// Get implements Object.
func (m Shared) Get(key string) (any, bool) {
	x, ok := m[key]
	return x, ok
}

// Keys implements Object.
func (m Shared) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// lazyObject is the JS face of an Object: conversion on first read, writes kept here.
type lazyObject struct {
	v       *vm
	src     Object
	got     lazyValues // converted on read (objects only), or written by the script
	deleted map[string]bool
}

// lazyValues holds the values a lazyObject has made or been given. A callback usually reads
// one or two nested objects of an argument, so the first few live in the struct itself and
// a map is made only past them.
type lazyValues struct {
	few  [4]lazyEntry
	nFew int
	more map[string]goja.Value
}

type lazyEntry struct {
	key string
	val goja.Value
}

func (m *lazyValues) get(key string) (goja.Value, bool) {
	for i := range m.nFew {
		if m.few[i].key == key {
			return m.few[i].val, true
		}
	}
	val, ok := m.more[key]
	return val, ok
}

func (m *lazyValues) set(key string, val goja.Value) {
	for i := range m.nFew {
		if m.few[i].key == key {
			m.few[i].val = val
			return
		}
	}
	if _, ok := m.more[key]; ok || m.nFew == len(m.few) {
		if m.more == nil {
			m.more = make(map[string]goja.Value)
		}
		m.more[key] = val
		return
	}
	m.few[m.nFew] = lazyEntry{key, val}
	m.nFew++
}

func (m *lazyValues) delete(key string) {
	for i := range m.nFew {
		if m.few[i].key == key {
			m.nFew--
			m.few[i] = m.few[m.nFew]
			m.few[m.nFew] = lazyEntry{}
			return
		}
	}
	delete(m.more, key)
}

func (m *lazyValues) keys(yield func(string)) {
	for i := range m.nFew {
		yield(m.few[i].key)
	}
	for k := range m.more {
		yield(k)
	}
}

func (o *lazyObject) Get(key string) goja.Value {
	if o.deleted[key] {
		return nil
	}
	if val, ok := o.got.get(key); ok {
		return val
	}
	x, ok := o.src.Get(key)
	if !ok {
		return nil
	}
	val := o.v.toJS(x)
	if _, isObject := val.(*goja.Object); !isObject {
		// A primitive has no identity: converting it again on the next read is
		// indistinguishable from keeping it, and the usual read (a string or a boolean
		// claim) then stores nothing.
		return val
	}
	// Kept so that a nested object read twice is the same object, writes included.
	o.got.set(key, val)
	return val
}

func (o *lazyObject) Set(key string, val goja.Value) bool {
	o.got.set(key, val)
	delete(o.deleted, key)
	return true
}

func (o *lazyObject) Has(key string) bool {
	if o.deleted[key] {
		return false
	}
	if _, ok := o.got.get(key); ok {
		return true
	}
	_, ok := o.src.Get(key)
	return ok
}

func (o *lazyObject) Delete(key string) bool {
	if o.deleted == nil {
		o.deleted = map[string]bool{}
	}
	o.deleted[key] = true
	o.got.delete(key)
	return true
}

// Keys are sorted, as toJS sets a plain object's keys, so Object.keys is stable.
func (o *lazyObject) Keys() []string {
	src := o.src.Keys()
	keys := make([]string, 0, len(src)+o.got.nFew+len(o.got.more))
	for _, k := range src {
		if !o.deleted[k] {
			keys = append(keys, k)
		}
	}
	o.got.keys(func(k string) {
		if _, inSrc := o.src.Get(k); !inSrc {
			keys = append(keys, k)
		}
	})
	sort.Strings(keys)
	return keys
}
