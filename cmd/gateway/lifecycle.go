package main

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// component is one part of serve that lives in the background: the revocation watch, the
// assertion key rotation, the heap guard, the reloader, the SIGHUP loop, the admin listener
// and the main server. Any of the three hooks may be nil.
//
// Start acquires what the component needs and fails fast (a port that is taken, a store
// that refuses the subscription); it must not block for long. Run does the work until its
// context ends, then returns; an error from Run before that stops every other component and
// becomes serve's error. Close releases what Start acquired, after Run has returned.
type component struct {
	name  string
	start func(ctx context.Context) error
	run   func(ctx context.Context) error
	close func()
}

// lifecycle runs components under one errgroup. Every Start runs, in order, before any Run
// begins, so a gateway that fails to bind its admin port never served a request on its main
// one. They stop in reverse order of start, each stopped (its Run returned, its Close done)
// before the one started before it is told to stop: the server drains its requests while
// the reloader, the heap guard and the revocation watch still work, and nothing is still
// running when the caller closes the store.
//
// Each component has a context of its own, not the errgroup's: that one ends for everyone
// at once, and the order would be lost.
type lifecycle struct {
	components []component
}

func (l *lifecycle) add(c ...component) { l.components = append(l.components, c...) }

// run starts every component, waits until ctx ends or one of them fails, stops them all in
// reverse order, and returns the first error (nil when ctx ended and every Run returned nil).
func (l *lifecycle) run(ctx context.Context) error {
	type running struct {
		component
		cancel context.CancelFunc
		ctx    context.Context
		done   chan struct{} // closed when Run has returned; nil without Run
	}
	started := make([]*running, 0, len(l.components))
	stopAll := func() {
		for i := len(started) - 1; i >= 0; i-- {
			s := started[i]
			s.cancel()
			if s.done != nil {
				<-s.done
			}
			if s.close != nil {
				s.close()
			}
		}
	}
	// The components' contexts keep ctx's values, not its end: stopAll ends them one by one.
	base := context.WithoutCancel(ctx)
	for _, c := range l.components {
		cctx, cancel := context.WithCancel(base)
		if c.start != nil {
			if err := c.start(cctx); err != nil {
				cancel()
				stopAll()
				return err // components name themselves in their errors
			}
		}
		started = append(started, &running{component: c, cancel: cancel, ctx: cctx})
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range started {
		if s.run == nil {
			continue
		}
		s.done = make(chan struct{})
		g.Go(func() error {
			defer close(s.done)
			return s.run(s.ctx)
		})
	}
	<-gctx.Done() // ctx ended, or a Run failed
	stopAll()
	return g.Wait()
}
