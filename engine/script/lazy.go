package script

import (
	"slices"
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
	// Keys lists the properties in the order the script sees them (Object.keys, JSON):
	// NextAuth's order for the typed arguments, sorted for a Shared map.
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

// Keys implements Object: a map has no order, so the keys are sorted, and Object.keys is
// the same from call to call.
func (m Shared) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// presentKeys lists those of names that o has, in the order given: a typed argument's
// keys, in NextAuth's order.
func presentKeys(o Object, names ...string) []string {
	keys := make([]string, 0, len(names))
	for _, k := range names {
		if _, ok := o.Get(k); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// ordered is a Shared map whose keys the script sees in a given order (an event's
// argument, as NextAuth builds it); keys not in the order follow, sorted.
type ordered struct {
	Shared
	order []string
}

// Keys implements Object.
func (o ordered) Keys() []string {
	keys := make([]string, 0, len(o.Shared))
	for _, k := range o.order {
		if _, ok := o.Shared[k]; ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == len(o.Shared) {
		return keys
	}
	var rest []string
	for k := range o.Shared {
		if !slices.Contains(o.order, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// lazyObject is the JS face of an Object: conversion on first read, writes kept here.
type lazyObject struct {
	// c is the call the object was made for (c.v its runtime): the host's Object is read
	// only during it. Not a field of its own beside a *vm: that would push the struct, one
	// per argument object of every call, into the next size class.
	c       *callState
	src     Object
	got     lazyValues // converted on read (objects only), or written by the script
	deleted map[string]bool
	// order is the object's keys once the script has added or deleted one: src's, then
	// the added ones in insertion order, as a JS object keeps them. nil until then.
	order []string
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

func (o *lazyObject) Get(key string) goja.Value {
	if o.deleted[key] {
		return nil
	}
	if val, ok := o.got.get(key); ok {
		return val
	}
	x, ok := o.srcGet(key)
	if !ok {
		return nil
	}
	val := o.c.v.toJS(x)
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
	if !o.Has(key) {
		o.order = append(o.keys(), key)
	}
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
	_, ok := o.srcGet(key)
	return ok
}

// srcGet reads the host's object while its call runs. Once the call has ended (a script
// may keep the argument in module state and read it in a later call) or was abandoned
// (watchdog.abandon), its caller has returned and may change or reuse what it passed: a
// typed call's argument struct is the runtime's own slot, refilled by the next call.
func (o *lazyObject) srcGet(key string) (any, bool) {
	if !o.live() {
		return nil, false
	}
	return o.src.Get(key)
}

func (o *lazyObject) live() bool {
	v := o.c.v
	return (v.call == o.c || o.c == &v.noCall) && !v.detached.Load()
}

func (o *lazyObject) Delete(key string) bool {
	if o.Has(key) {
		o.order = slices.DeleteFunc(o.keys(), func(k string) bool { return k == key })
	}
	if o.deleted == nil {
		o.deleted = map[string]bool{}
	}
	o.deleted[key] = true
	o.got.delete(key)
	return true
}

// Keys are the host object's in its order, then the ones the script added, in the order
// it added them, as a JS object lists its keys.
func (o *lazyObject) Keys() []string {
	return slices.Clone(o.keys())
}

// keys is Keys without the copy: order once the script has changed the key set, else the
// host object's keys.
func (o *lazyObject) keys() []string {
	if !o.live() {
		// The call has ended: only what the object made or was given is left.
		var left []string
		for _, k := range o.order {
			if _, ok := o.got.get(k); ok {
				left = append(left, k)
			}
		}
		o.order = left
		return left
	}
	if o.order != nil {
		return o.order
	}
	if keys := o.src.Keys(); keys != nil {
		return keys
	}
	return []string{}
}
