package script

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/dop251/goja"
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

	mu      sync.Mutex
	running map[*callState]*goja.Runtime
	trips   int
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
	return &HeapGuard{limit: limit, interval: interval, logger: logger, running: map[*callState]*goja.Runtime{}}
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
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.running {
		if !c.heapHit {
			return true
		}
	}
	return false
}

func (h *HeapGuard) interruptAll() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c, rt := range h.running {
		if !c.heapHit {
			c.heapHit = true
			rt.Interrupt(errHeapLimit)
			n++
		}
	}
	h.trips += n
	return n
}

// track registers a call in progress. untrack must follow once it ends.
func (h *HeapGuard) track(c *callState, rt *goja.Runtime) {
	h.mu.Lock()
	h.running[c] = rt
	h.mu.Unlock()
}

// untrack unregisters a call and reports whether the guard interrupted it. After it returns
// the guard no longer touches the call's runtime.
func (h *HeapGuard) untrack(c *callState) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.running, c)
	return c.heapHit
}
