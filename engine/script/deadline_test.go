package script

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestCallStops: a call ends when its own deadline passes or when the caller's context
// ends, whichever comes first, with a message saying which; and the generation serves the
// next call normally.
func TestCallStops(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	slowURL, _ := url.Parse(slow.URL)
	dir := writeDir(t, map[string]string{"auth.config.js": limitsConfig})
	l := load(t, dir, func(o *Options) {
		o.PoolSize = 1
		o.Timeouts.Default = 150 * time.Millisecond
		o.Fetch = FetchOptions{Allow: []string{slowURL.Host}}
	})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		mode    string
		wantMsg string
	}{
		{"own deadline", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
			"loop", "callbacks.jwt did not finish within 150ms"},
		{"caller canceled during the call", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(30*time.Millisecond, cancel)
			return ctx, cancel
		}, "loop", "callbacks.jwt was canceled"},
		{"caller canceled before the call", func() (context.Context, context.CancelFunc) { return canceled, func() {} },
			"none", "callbacks.jwt was canceled"},
		{"caller's deadline before the callback's", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 30*time.Millisecond)
		}, "loop", "callbacks.jwt did not finish within"},
		{"caller canceled while async work runs", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(30*time.Millisecond, cancel)
			return ctx, cancel
		}, "fetch", "callbacks.jwt was canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			token := map[string]any{"mode": tc.mode, "url": slow.URL}
			start := time.Now()
			_, err := l.gen.Call(ctx, "callbacks.jwt", map[string]any{"token": token})
			se := asError(t, err)
			if se.Kind != KindTimeout {
				t.Fatalf("got kind %v (%v), want %v", se.Kind, err, KindTimeout)
			}
			if !strings.Contains(se.Message, tc.wantMsg) {
				t.Errorf("got message %q, want it to contain %q", se.Message, tc.wantMsg)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v, want the call stopped promptly", d)
			}
			res, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{"ok": true}})
			if err != nil || res.(map[string]any)["ok"] != true {
				t.Errorf("next call: got %v, %v, want the token back", res, err)
			}
		})
	}
}

// TestDeadlineNotCarriedOver: one runtime serves short calls in a row for three times the
// length of its deadline; no call is interrupted by the deadline of an earlier one, with a
// caller context that can end and with one that cannot. (Each call takes microseconds; the
// deadline, 400 ms, is long enough that only a timer left running, not a slow machine
// under the race detector, trips it.)
func TestDeadlineNotCarriedOver(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": limitsConfig})
	l := load(t, dir, func(o *Options) {
		o.PoolSize = 1
		o.Timeouts.Default = 400 * time.Millisecond
	})
	withCancel, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ctx := range []context.Context{context.Background(), withCancel} {
		calls := 0
		for end := time.Now().Add(1200 * time.Millisecond); time.Now().Before(end); calls++ {
			res, err := l.gen.Call(ctx, "callbacks.jwt", map[string]any{"token": map[string]any{"n": float64(calls)}})
			if err != nil {
				t.Fatalf("call %d: got %v, want no error", calls, err)
			}
			if got := res.(map[string]any)["n"]; got != float64(calls) {
				t.Fatalf("call %d: got n=%v, want %d", calls, got, calls)
			}
		}
		if st := l.gen.PoolStats(); st.Live != 1 {
			t.Errorf("after %d clean calls: got %d live runtimes, want the one runtime kept", calls, st.Live)
		}
	}
}

// TestStoppedCallLeavesHeapGuard: a call stopped by its deadline or its caller is no longer
// seen by the HeapGuard, which does not keep the discarded runtime reachable either.
func TestStoppedCallLeavesHeapGuard(t *testing.T) {
	guard := NewHeapGuard(1<<40, time.Hour, nil)
	dir := writeDir(t, map[string]string{"auth.config.js": limitsConfig})
	l := load(t, dir, func(o *Options) {
		o.Timeouts.Default = 50 * time.Millisecond
		o.HeapGuard = guard
	})
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
		{"caller canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A runtime at hand, so that the caller's cancellation lands in the call and
			// not in starting a runtime (the previous case discarded its own).
			if _, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{}}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tc.ctx()
			defer cancel()
			_, err := l.gen.Call(ctx, "callbacks.jwt", map[string]any{"token": map[string]any{"mode": "loop"}})
			if se := asError(t, err); se.Kind != KindTimeout {
				t.Fatalf("got %v, want a timeout", err)
			}
			if guard.anyToInterrupt() {
				t.Error("the heap guard still sees a call running")
			}
			// The discarded runtime is not kept alive by the guard: once collected, the
			// guard knows only the runtimes the pool still has.
			live, registered := 0, 0
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				runtime.GC()
				live, registered = l.gen.PoolStats().Live, guard.registered()
				if registered == live {
					break
				}
			}
			if registered != live {
				t.Errorf("the heap guard knows %d runtimes, want the pool's %d", registered, live)
			}
		})
	}
}
