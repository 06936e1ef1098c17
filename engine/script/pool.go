package script

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// A lane is a set of callbacks with runtimes of their own, so that one kind of work cannot
// take every runtime from the other: a burst of sign-ins (authorize with bcrypt, slow on
// purpose) must not stall the callbacks that run on every proxied request or session read.
type lane int

const (
	// laneRequest serves what runs on the request path: authorized, session, jwt on
	// session reads, updates and refreshes, redirect, events.session.
	laneRequest lane = iota
	// laneSignIn serves the sign-in flows: authorize, an OAuth provider's profile, signIn,
	// jwt when it makes the token (trigger signIn or signUp) and the events but
	// events.session.
	laneSignIn
	laneCount
)

func (l lane) String() string {
	if l == laneSignIn {
		return "signin"
	}
	return "request"
}

// laneOf picks the lane of a call of the raw API by name, from the tables the typed calls
// use (hooks.go). jwt runs in both flows: it is told apart by its trigger, which the engine
// sets to "signIn" or "signUp" only when a sign-in makes the token.
func laneOf(name string, arg Object) lane {
	switch name {
	case NameAuthorize, NameProfile:
		return laneSignIn
	case CallbackJWT.String():
		if arg != nil {
			if t, ok := arg.Get("trigger"); ok && (t == "signIn" || t == "signUp") {
				return laneSignIn
			}
		}
		return laneRequest
	}
	for _, c := range callbackInfo {
		if c.name == name {
			return c.lane
		}
	}
	for _, e := range eventInfo {
		if e.name == name {
			return e.lane
		}
	}
	if strings.HasPrefix(name, "events.") {
		return laneSignIn
	}
	return laneRequest
}

// abandonGrace is how long a call may take to stop once interrupted (an interrupt stops
// the script at its next instruction, and the host's bindings give up with the call's
// context) before its caller is answered and its runtime abandoned. Only a call stuck in
// Go code that does not look at the interrupt (a regexp2 match) takes longer.
const abandonGrace = 200 * time.Millisecond

// pool bounds the runtimes of one lane of a generation. slots holds one token per runtime
// that exists (idle, in use, or abandoned but still counted); idle holds the runtimes not
// in use. A call takes an idle runtime, or creates one when a slot is free, or waits.
//
// A runtime whose call did not stop is abandoned: its caller gets the deadline error and
// the runtime is never used again. Its slot is given back at once, so the lane keeps its
// capacity, for up to cap(slots) abandoned runtimes at a time; past that an abandoned
// runtime keeps its slot until it stops. Each abandoned runtime keeps a goroutine busy
// until it stops (regexp.go bounds that), so without this bound a stream of requests that
// each trip a runaway match would pile up goroutines without end.
type pool struct {
	lane  lane
	idle  chan *vm
	slots chan struct{}

	mu     sync.Mutex
	closed bool
	freed  int // abandoned runtimes still running whose slot was given back
	held   int // abandoned runtimes still running that keep their slot
	// created counts the runtimes acquire has started (PoolStats.Created).
	created int
}

func newPool(l lane, size int) *pool {
	return &pool{lane: l, idle: make(chan *vm, size), slots: make(chan struct{}, size)}
}

var errClosed = errors.New("generation closed")

// acquire takes an idle runtime, or starts or waits for one. When it did not find one at
// hand, got is when it had one; otherwise got is zero.
func (p *pool) acquire(ctx context.Context, g *Generation) (v *vm, got time.Time, err error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, time.Time{}, &Error{Kind: KindInternal, Message: "no runtime", Err: errClosed}
	}
	select {
	case v := <-p.idle:
		return v, time.Time{}, nil
	default:
	}
	waitStart := time.Now()
	defer func() {
		got = time.Now()
		if g.observer != nil {
			g.observer.ObservePoolWait(got.Sub(waitStart))
		}
	}()
	select {
	case v := <-p.idle:
		return v, got, nil
	case p.slots <- struct{}{}:
		v, abandoned, err := g.newVM(ctx, p, (*vm).bind)
		if err != nil {
			if !abandoned { // an abandoned runtime's slot is accounted for by abandon
				<-p.slots
			}
			var se *Error
			if errors.As(err, &se) {
				se.Kind = KindInternal
				se.Message = "start a runtime: " + se.Message
				return nil, got, se
			}
			return nil, got, &Error{Kind: KindInternal, Message: "start a runtime", Err: err}
		}
		p.mu.Lock()
		p.created++
		p.mu.Unlock()
		return v, got, nil
	case <-ctx.Done():
		return nil, got, &Error{Kind: KindInternal, Message: "no runtime became free", Err: ctx.Err()}
	}
}

// release returns a runtime after a clean call, or discards it and frees its slot.
func (p *pool) release(v *vm, clean bool) {
	p.mu.Lock()
	if clean && !p.closed {
		p.idle <- v
		p.mu.Unlock()
		return
	}
	<-p.slots
	p.mu.Unlock()
	v.stop() // outside p.mu: abandon locks a watchdog, then p.mu
}

// abandon gives up on v, whose call did not stop: the slot is given back at once while
// fewer than cap(slots) abandoned runtimes hold none, and otherwise when v stops
// (stopped). Called with v's watchdog locked, before v's caller is answered.
func (p *pool) abandon(v *vm) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.freed < cap(p.slots) {
		p.freed++
		v.slotHeld = false
		<-p.slots
		return
	}
	p.held++
	v.slotHeld = true
}

// stopped is told by an abandoned runtime's goroutine that its call has ended at last.
func (p *pool) stopped(v *vm) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v.slotHeld {
		p.held--
		<-p.slots
		return
	}
	p.freed--
}

func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var idle []*vm
	for len(p.idle) > 0 {
		idle = append(idle, <-p.idle)
		<-p.slots
	}
	p.mu.Unlock()
	for _, v := range idle {
		v.stop()
	}
}

// stats adds the lane's occupancy to s.
func (p *pool) stats(s *PoolStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.Size += cap(p.slots)
	s.Live += len(p.slots)
	s.Idle += len(p.idle)
	s.Abandoned += p.freed + p.held
	s.Created += p.created
}
