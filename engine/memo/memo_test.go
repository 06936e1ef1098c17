package memo

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestRemember: a remembered value is reused until its expiry and then derived
// again, at most MaxEntries keys are kept (others are derived every time), and
// concurrent callers, under the race detector, see only values some call derived.
func TestRemember(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Memo{}
	calls := 0
	derive := func(v string, until time.Time) func() (any, time.Time, error) {
		return func() (any, time.Time, error) { calls++; return v, until, nil }
	}
	for _, tt := range []struct {
		at        time.Duration
		value     string
		want      string
		wantCalls int
	}{
		{0, "first", "first", 1},
		{time.Minute, "second", "first", 1}, // still valid
		{2 * time.Minute, "third", "third", 2},
	} {
		got, err := s.Remember("k", now.Add(tt.at), derive(tt.value, now.Add(tt.at+90*time.Second)))
		if err != nil || got != tt.want || calls != tt.wantCalls {
			t.Errorf("at +%v: got %v, %v after %d derivations, want %s after %d", tt.at, got, err, calls, tt.want, tt.wantCalls)
		}
	}
	for i := range MaxEntries + 4 {
		_, _ = s.Remember(fmt.Sprint("key", i), now, derive("v", now.Add(time.Hour)))
	}
	if n := len(*s.entries.Load()); n != MaxEntries {
		t.Errorf("%d keys remembered, want the cap of %d", n, MaxEntries)
	}

	shared := &Memo{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprint("k", i%20)
				v, err := shared.Remember(key, now, func() (any, time.Time, error) { return key, now.Add(time.Hour), nil })
				if err != nil || v != key {
					t.Errorf("worker %d: Remember(%s) = %v, %v", w, key, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
