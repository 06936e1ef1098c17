package script

import (
	"sort"

	"github.com/dop251/goja"
)

// Shared is a JSON-shaped map that other goroutines read at the same time (a cached
// session's token, say), passed to a callback without copying it up front. The callback
// sees an ordinary object: each property is converted to a fresh JS value the first time
// the script reads it, and the script's writes and deletions stay in its own object,
// never in the map. A callback that reads two fields of a large object pays for two.
//
// The map must not change while a call that received it runs.
type Shared map[string]any

// lazyObject is the JS face of a Shared map: conversion on first read, writes kept here.
type lazyObject struct {
	v       *vm
	src     map[string]any
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
	x, ok := o.src[key]
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
	_, ok := o.src[key]
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
	keys := make([]string, 0, len(o.src)+o.got.nFew+len(o.got.more))
	for k := range o.src {
		if !o.deleted[k] {
			keys = append(keys, k)
		}
	}
	o.got.keys(func(k string) {
		if _, inSrc := o.src[k]; !inSrc {
			keys = append(keys, k)
		}
	})
	sort.Strings(keys)
	return keys
}
