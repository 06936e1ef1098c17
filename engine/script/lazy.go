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
	got     map[string]goja.Value // converted on read, or written by the script
	deleted map[string]bool
}

func (o *lazyObject) Get(key string) goja.Value {
	if o.deleted[key] {
		return nil
	}
	if val, ok := o.got[key]; ok {
		return val
	}
	x, ok := o.src[key]
	if !ok {
		return nil
	}
	val := o.v.toJS(x)
	if o.got == nil {
		o.got = make(map[string]goja.Value, len(o.src))
	}
	// Kept so that a nested object read twice is the same object, writes included.
	o.got[key] = val
	return val
}

func (o *lazyObject) Set(key string, val goja.Value) bool {
	if o.got == nil {
		o.got = make(map[string]goja.Value, len(o.src))
	}
	o.got[key] = val
	delete(o.deleted, key)
	return true
}

func (o *lazyObject) Has(key string) bool {
	if o.deleted[key] {
		return false
	}
	if _, ok := o.got[key]; ok {
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
	delete(o.got, key)
	return true
}

// Keys are sorted, as toJS sets a plain object's keys, so Object.keys is stable.
func (o *lazyObject) Keys() []string {
	keys := make([]string, 0, len(o.src)+len(o.got))
	for k := range o.src {
		if !o.deleted[k] {
			keys = append(keys, k)
		}
	}
	for k := range o.got {
		if _, inSrc := o.src[k]; !inSrc {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
