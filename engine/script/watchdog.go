package script

import (
	"context"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// cancelPoll is how often the watchdog looks at the caller's context while a call runs.
// A script is interrupted at most this long after its caller gives up; a call's own
// deadline is exact.
const cancelPoll = 5 * time.Millisecond

// watchdog interrupts a runtime's call in progress when the call's deadline passes or its
// caller's context ends. One timer per runtime, re-armed by each call: a context with a
// timeout and a context.AfterFunc per call were a large part of a short callback's cost
// (about 1 µs and 9 allocations of a 10 µs call). The caller's context is polled instead
// of watched, which is what bounds the reaction to a cancellation by cancelPoll.
//
// The timer may fire late, after its call ended or while the next call runs: it acts only
// on the call registered at that moment, and only once that call's time is up or its
// caller has gone, so it never interrupts a call for another call's reason.
type watchdog struct {
	rt *goja.Runtime

	mu    sync.Mutex
	timer *time.Timer
	call  *callState // the call being watched, nil between calls
	fired bool       // the watchdog interrupted call
}

// watch starts watching c. Call it on the runtime goroutine before running script code.
func (w *watchdog) watch(c *callState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.call, w.fired = c, false
	wait := w.nextCheck(c, time.Now())
	if w.timer == nil {
		w.timer = time.AfterFunc(wait, w.check)
		return
	}
	w.timer.Reset(wait)
}

// release stops watching and reports whether the watchdog interrupted the call; the runtime
// then holds (or is about to receive) an interrupt and must not run another call.
func (w *watchdog) release() (fired bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.call = nil
	w.timer.Stop()
	return w.fired
}

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.call
	if c == nil || w.fired {
		return
	}
	if err := c.err(); err != nil {
		w.fired = true
		w.rt.Interrupt(err)
		return
	}
	w.timer.Reset(w.nextCheck(c, time.Now()))
}

// nextCheck is when to look again: at the deadline, or sooner when the caller's context
// can end.
func (w *watchdog) nextCheck(c *callState, now time.Time) time.Duration {
	wait := c.deadline.Sub(now)
	if c.parent.Done() != nil && wait > cancelPoll {
		wait = cancelPoll
	}
	return max(wait, 0)
}

// err reports why the call must stop, as its context (see context) would: the caller's
// context ended, or the call's own deadline passed. nil while it may go on. Safe on any
// goroutine: it reads only what is fixed when the call starts.
func (c *callState) err() error {
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}
