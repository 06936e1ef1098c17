package script

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
	"weak"
)

// errHeapLimit is the value a HeapGuard interrupts runtimes with.
var errHeapLimit = errors.New("the process heap passed script.max_heap_bytes")

// heapMetric is the bytes held by heap objects, live or not yet swept: it grows as soon as
// a script allocates, without waiting for a collection.
const heapMetric = "/memory/classes/heap/objects:bytes"

// HeapGuard interrupts the callbacks running while the process's heap is past a ceiling.
//
// goja has no memory limit per runtime, and all runtimes share the Go heap, so the guard
// cannot tell which callback allocated: it samples the heap, and when a sample is past the
// ceiling it forces a collection to tell garbage from live data, and if the heap is still
// past the ceiling it interrupts every callback running at that moment. Each of them fails
// with KindLimit and its runtime is discarded, which frees what it held. Callbacks are
// trusted code; the guard keeps a mistake (a runaway loop that allocates) from taking the
// process down, it does not contain a hostile script.
type HeapGuard struct {
	limit    uint64
	interval time.Duration
	logger   *slog.Logger

	// runtimes are every runtime created under the guard, registered once, when made. A
	// call is found through its runtime's watchdog, so starting and ending a call costs the
	// guard nothing. Weak pointers: a runtime the pool has discarded is not kept alive here,
	// and the sweep forgets it once it is collected.
	mu       sync.Mutex
	runtimes []weak.Pointer[vm]
	trips    int
}

// NewHeapGuard returns a guard for a heap ceiling in bytes, sampled every interval (0 means
// every 20 ms). Start it with Run.
func NewHeapGuard(limit uint64, interval time.Duration, logger *slog.Logger) *HeapGuard {
	if interval <= 0 {
		interval = 20 * time.Millisecond
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &HeapGuard{limit: limit, interval: interval, logger: logger}
}

// Run samples the heap until ctx ends.
func (h *HeapGuard) Run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	sample := []metrics.Sample{{Name: heapMetric}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !h.anyToInterrupt() {
			continue
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 || sample[0].Value.Uint64() <= h.limit {
			continue
		}
		// Past the ceiling: collect, and only act when the live heap is still too big.
		runtime.GC()
		metrics.Read(sample)
		if heap := sample[0].Value.Uint64(); heap > h.limit {
			n := h.interruptAll()
			h.logger.ErrorContext(ctx, "heap ceiling passed: interrupted the running callbacks",
				"code", "SCRIPT_HEAP_LIMIT", "heap_bytes", heap, "limit_bytes", h.limit, "interrupted", n)
		}
	}
}

// Trips reports how many calls the guard has interrupted.
func (h *HeapGuard) Trips() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trips
}

// anyToInterrupt reports whether a call is running that the guard has not interrupted yet
// (an interrupted call may take a moment to unwind, and its heap is freed only after).
func (h *HeapGuard) anyToInterrupt() bool {
	found := false
	h.each(func(v *vm) bool {
		found = v.watchdog.running()
		return !found
	})
	return found
}

// interruptAll interrupts every call in progress and returns how many it interrupted.
func (h *HeapGuard) interruptAll() int {
	n := 0
	h.each(func(v *vm) bool {
		if v.watchdog.interrupt(errHeapLimit) {
			n++
		}
		return true
	})
	h.mu.Lock()
	h.trips += n
	h.mu.Unlock()
	return n
}

// register adds a new runtime. Call it once per runtime, before it runs any script.
func (h *HeapGuard) register(v *vm) {
	h.mu.Lock()
	h.runtimes = append(h.runtimes, weak.Make(v))
	h.mu.Unlock()
}

// each calls f with every runtime still alive until f returns false, and forgets the
// runtimes that have been collected.
func (h *HeapGuard) each(f func(*vm) bool) {
	h.mu.Lock()
	alive := h.runtimes[:0]
	var live []*vm
	for _, p := range h.runtimes {
		if v := p.Value(); v != nil {
			alive = append(alive, p)
			live = append(live, v)
		}
	}
	clear(h.runtimes[len(alive):])
	h.runtimes = alive
	h.mu.Unlock()
	for _, v := range live {
		if !f(v) {
			return
		}
	}
}

// registered is how many runtimes the guard still knows, for tests.
func (h *HeapGuard) registered() int {
	n := 0
	h.each(func(*vm) bool { n++; return true })
	return n
}
