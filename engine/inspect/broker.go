package inspect

import (
	"errors"

	"github.com/callgate/callgate/engine/script"
)

// subscriber is one follower of the live events.
type subscriber struct {
	ch      chan Event
	dropped bool
}

// Subscription is a live follower's end: Events delivers new events until Close, or until
// the follower fell too far behind (then Events is closed and Lagged reports true).
type Subscription struct {
	in  *Inspector
	sub *subscriber
	// Backlog are the recent events after the id the follower asked from, oldest first.
	Backlog []Event
}

// Events is the channel of live events.
func (s *Subscription) Events() <-chan Event { return s.sub.ch }

// Lagged reports whether the subscription was ended because its reader fell behind.
func (s *Subscription) Lagged() bool {
	s.in.mu.Lock()
	defer s.in.mu.Unlock()
	return s.sub.dropped
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.in.mu.Lock()
	defer s.in.mu.Unlock()
	if _, ok := s.in.subs[s.sub]; ok {
		delete(s.in.subs, s.sub)
		close(s.sub.ch)
	}
}

// Subscribe follows new events; the backlog holds the kept events with an id above since
// (0: every kept event), so a follower that reconnects with its Last-Event-ID misses
// nothing the ring still has.
func (in *Inspector) Subscribe(since uint64) *Subscription {
	sub := &subscriber{ch: make(chan Event, subscriberBuffer)}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		close(sub.ch)
		return &Subscription{in: in, sub: sub}
	}
	in.subs[sub] = struct{}{}
	return &Subscription{in: in, sub: sub, Backlog: in.recentLocked(since)}
}

// Close ends every subscription, and every later one at once: a gateway shutting down
// must not wait for event streams that never end by themselves.
func (in *Inspector) Close() {
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	for s := range in.subs {
		delete(in.subs, s)
		close(s.ch)
	}
}

// publishLocked stamps e and hands it to every subscriber; one whose buffer is full is
// dropped, never waited for.
func (in *Inspector) publishLocked(e Event) Event {
	e.ID = in.seq.Add(1)
	e.Time = in.now()
	in.log = append(in.log, e)
	if len(in.log) > in.logCap() {
		// Keep the newest; copy down so the backing array does not grow without bound.
		n := copy(in.log, in.log[len(in.log)-in.logCap()/2:])
		in.log = in.log[:n]
	}
	for s := range in.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped = true
			delete(in.subs, s)
			close(s.ch)
		}
	}
	return e
}

func (in *Inspector) logCap() int { return in.opts.Flows * 8 }

func (in *Inspector) recentLocked(since uint64) []Event {
	var out []Event
	for _, e := range in.log {
		if e.ID > since {
			out = append(out, e)
		}
	}
	return out
}

// Snapshot is the kept flows, oldest first, each a copy.
func (in *Inspector) Snapshot() []Flow {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []Flow
	add := func(f *Flow) {
		if f == nil {
			return
		}
		c := *f
		c.in, c.secrets, c.secretValues = nil, nil, nil
		c.Events = append([]Event(nil), f.Events...)
		out = append(out, c)
	}
	if in.full {
		for _, f := range in.ring[in.next:] {
			add(f)
		}
	}
	for _, f := range in.ring[:in.next] {
		add(f)
	}
	return out
}

func asScriptError(err error, se **script.Error) bool { return errors.As(err, se) }
