package testkit

import (
	"testing"
	"time"
)

// WaitFor polls cond until it returns nil, and fails the test with cond's last error once
// timeout has passed. It polls after 1 ms, then backs off to every 20 ms: a condition that
// comes true at once is seen at once (tests that time a reload rely on it), and a long wait
// costs little CPU. It is for conditions nothing can be awaited on (a process
// that comes up, a list another goroutine fills); where an event exists, wait on the event.
// The timeout is a bound on a failure, never the wait a passing test relies on.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	every := time.Millisecond
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		timer.Reset(every)
		<-timer.C
		every = min(2*every, 20*time.Millisecond)
	}
}
