package script

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

// concurrencyProbe wraps the real store and records how many lookups run at once. A lookup
// runs inside a call that holds a runtime, so the peak bounds the runtimes in use.
type concurrencyProbe struct {
	store.Users
	cur, peak atomic.Int32
}

func (p *concurrencyProbe) FindUser(ctx context.Context, q store.UserQuery) (store.User, error) {
	n := p.cur.Add(1)
	defer p.cur.Add(-1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(10 * time.Millisecond)
	return p.Users.FindUser(ctx, q)
}

func TestPoolBound(t *testing.T) {
	const size = 3
	probe := &concurrencyProbe{Users: openStore(t)}
	l := load(t, filepath.Join(fixtures, "behaviours"), func(o *Options) {
		o.PoolSize = size
		o.SignInPoolSize = size // authorize runs on the sign-in lane
		o.Users = probe
	})
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := l.gen.Authorize(context.Background(), "credentials", map[string]any{"mode": "async", "username": "alice"}, nil)
			if err == nil && got["name"] != "Alice" {
				err = errors.New("wrong user")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
	if got := probe.peak.Load(); got != size {
		t.Errorf("peak concurrent calls: got %d, want exactly the pool size %d", got, size)
	}

	// With every runtime taken, a call whose context ends first gets no runtime.
	for range size {
		v, _, err := l.gen.pools[laneRequest].acquire(context.Background(), l.gen)
		if err != nil {
			t.Fatal(err)
		}
		defer l.gen.pools[laneRequest].release(v, true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := l.gen.Call(ctx, "callbacks.jwt", map[string]any{"token": map[string]any{}})
	if se := asError(t, err); se.Kind != KindInternal || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("saturated pool: got %v, want KindInternal wrapping the deadline", err)
	}
}

func TestClose(t *testing.T) {
	gen, err := Load(context.Background(), Options{Dir: filepath.Join(fixtures, "behaviours")})
	if err != nil {
		t.Fatal(err)
	}
	gen.Close()
	if _, err := gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{}}); err == nil {
		t.Error("call after Close succeeded, want an error")
	}
}
