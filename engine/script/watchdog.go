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
// caller's context ends, or when the HeapGuard asks it to. One timer per runtime: a context with a timeout and a
// context.AfterFunc per call were a large part of a short callback's cost (about 1 µs and
// 9 allocations of a 10 µs call). The caller's context is polled instead of watched, which
// is what bounds the reaction to a cancellation by cancelPoll.
//
// The timer is not re-armed by every call either (resetting a timer costs a lock and a heap
// update in the runtime's timer code, twice a call): a call leaves it armed when it is due
// no later than the call needs a look, and the timer re-arms itself only while a call runs.
// An idle runtime's timer fires at most once more, then stays quiet.
//
// The timer may fire late, after its call ended or while the next call runs: it acts only
// on the call registered at that moment, and only once that call's time is up or its
// caller has gone, so it never interrupts a call for another call's reason.
//
// An interrupt stops the script at its next instruction. A call still running abandonGrace
// after it is stuck in Go code that never looks (a regexp2 match, regexp.go): the watchdog
// then abandons it, answering its caller with the error the interrupt would have given.
type watchdog struct {
	rt *goja.Runtime
	v  *vm

	mu        sync.Mutex
	timer     *time.Timer
	due       time.Time   // when the armed timer fires; zero when it is not armed
	call      *callState  // the call being watched, nil between calls
	fired     bool        // the watchdog interrupted call
	reason    error       // what call was interrupted with
	grace     *time.Timer // abandons call abandonGrace after the interrupt, unless it ends
	abandoned bool        // the watchdog gave up on call (abandon)
}

// watch starts watching c, which starts now. Call it on the runtime goroutine before
// running script code.
func (w *watchdog) watch(c *callState, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.call, w.fired = c, false
	wait := w.nextCheck(c, now)
	if !w.due.IsZero() && !w.due.After(now.Add(wait)) {
		return // armed soon enough: it looks at c when it fires
	}
	w.arm(now, wait)
}

func (w *watchdog) arm(now time.Time, wait time.Duration) {
	w.due = now.Add(wait)
	if w.timer == nil {
		w.timer = time.AfterFunc(wait, w.check)
		return
	}
	w.timer.Reset(wait)
}

// release stops watching and reports whether the watchdog interrupted the call (the runtime
// then holds, or is about to receive, an interrupt and must not run another call) and
// whether it abandoned it (the caller has had its answer).
func (w *watchdog) release() (fired, abandoned bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.call = nil
	if w.grace != nil {
		// Its closure holds the runtime: a discarded runtime (and what its script
		// allocated) must not stay reachable until the timer fires.
		w.grace.Stop()
		w.grace = nil
	}
	return w.fired, w.abandoned
}

// stop disarms the deadline timer of a runtime that will not run again, for the same
// reason: the timer's function holds the watchdog, and with it the runtime.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.due = time.Time{}
}

// running reports whether a call is in progress that the watchdog has not interrupted.
func (w *watchdog) running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.call != nil && !w.fired
}

// interrupt stops the call in progress, if there is one not interrupted yet, with reason;
// the runtime is then discarded when the call ends. It reports whether it interrupted.
func (w *watchdog) interrupt(reason error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.call == nil || w.fired {
		return false
	}
	w.fireLocked(reason)
	return true
}

// fireLocked interrupts the call in progress with reason, and arranges to abandon it if it
// has not ended abandonGrace later. One timer per interrupt, which ends the call anyway.
func (w *watchdog) fireLocked(reason error) {
	w.fired, w.reason = true, reason
	w.rt.Interrupt(reason)
	c := w.call
	w.grace = time.AfterFunc(abandonGrace, func() { w.abandon(c) })
}

// abandon gives up on c if it is still running: its runtime is never used again, its pool
// slot is given back (pool.abandon), and its caller gets the error the interrupt stands
// for at once. The runtime's goroutine goes on until the call ends, then exits.
func (w *watchdog) abandon(c *callState) {
	w.mu.Lock()
	if w.call != c || w.abandoned {
		w.mu.Unlock()
		return // it ended in time
	}
	w.abandoned = true
	v := w.v
	v.detached.Store(true)
	if v.pool != nil {
		// Under the lock: the runtime's goroutine reports the call's end (pool.stopped)
		// only after release, which waits for it.
		v.pool.abandon(v)
	}
	reason := w.reason
	w.mu.Unlock()

	// The runtime's goroutine sends nothing for an abandoned call (release tells it), so
	// done is empty and this does not block.
	v.done <- jobDone{err: v.interruptedError(c, reason, nil), abandoned: true}
	lane := ""
	if v.pool != nil {
		lane = v.pool.lane.String()
	}
	v.gen.logger.Warn("callback did not stop when interrupted; its runtime is abandoned",
		"code", "SCRIPT_RUNTIME_ABANDONED", "callback", c.name, "lane", lane, "generation", v.gen.shortHash(),
		"reason", reason.Error(), "grace", abandonGrace.String())
}

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.due = time.Time{}
	c := w.call
	if c == nil || w.fired {
		return
	}
	if err := c.err(); err != nil {
		w.fireLocked(err)
		return
	}
	now := time.Now()
	w.arm(now, w.nextCheck(c, now))
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
