package guard

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

const address = "203.0.113.7"

// count is the value of a counter.
func count(t *testing.T, st store.RateLimits, key string) int64 {
	t.Helper()
	n, _, err := st.Count(context.Background(), key)
	if err != nil {
		t.Fatalf("count %s: %v", key, err)
	}
	return n
}

func TestLimitsRefusePastTheLimit(t *testing.T) {
	st := boltStore(t)
	clk := newClock()
	log, _ := testLogger()
	l := New(st, Options{MaxFailuresPerUsername: 2, FailureWindow: time.Minute}, log, clk.Now).Limits
	ctx := context.Background()
	for i := range 2 {
		r, until, err := l.Reserve(ctx, []string{"jatin"}, address)
		if err != nil || !until.IsZero() {
			t.Fatalf("attempt %d: got refused until %v, err %v; want a reservation", i+1, until, err)
		}
		r.Failed(ctx)
	}
	start := time.Now()
	_, until, err := l.Reserve(ctx, []string{"jatin"}, address)
	if err != nil || until.IsZero() {
		t.Fatalf("third attempt: got refused until %v, err %v; want refused", until, err)
	}
	if until.Before(start) || until.After(start.Add(time.Minute+time.Second)) {
		t.Errorf("refused until %v, want the window's end, within a minute of %v", until, start)
	}
	// Retry-After follows the guard's clock: whole seconds, rounded up, at least one.
	clk.Set(until.Add(-90 * time.Second / 2))
	if got := l.RetryAfter(until); got != 45*time.Second {
		t.Errorf("RetryAfter 45s before the end: got %v", got)
	}
	clk.Add(44*time.Second + time.Millisecond)
	if got := l.RetryAfter(until); got != time.Second {
		t.Errorf("RetryAfter just under a second before the end: got %v, want 1s", got)
	}
	clk.Add(time.Hour)
	if got := l.RetryAfter(until); got != time.Second {
		t.Errorf("RetryAfter after the end: got %v, want at least 1s", got)
	}
	// A different account is not refused.
	if _, until, _ := l.Reserve(ctx, []string{"mallory"}, address); !until.IsZero() {
		t.Errorf("another account: refused until %v", until)
	}
}

// TestLimitsCountTheAccount: identifiers are counted in their account form, blank ones name
// no account, and one attempt naming an account twice takes one slot.
func TestLimitsCountTheAccount(t *testing.T) {
	st := boltStore(t)
	l := New(st, Options{MaxFailuresPerUsername: 5}, nil, nil).Limits
	ctx := context.Background()
	for _, ids := range [][]string{{"jatin"}, {" Jatin"}, {"ｊａｔｉｎ", "JATIN"}, {"", " ", "jatin"}} {
		r, _, err := l.Reserve(ctx, ids, address)
		if err != nil {
			t.Fatal(err)
		}
		r.Failed(ctx)
	}
	if got := count(t, st, accountKey("jatin")); got != 4 {
		t.Errorf("jatin's counter: got %d, want 4 (one per attempt)", got)
	}
	if got := count(t, st, accountKey(" ")); got != 0 {
		t.Errorf("blank identifiers' counter: got %d, want 0", got)
	}
	if accountKey("jatin") == accountKey("mallory") || len(accountKey(string(make([]byte, 4096)))) != len(accountKey("a")) {
		t.Errorf("account keys must differ per account and have a fixed length")
	}
}

// TestLimitsRefusalGivesBackOtherSlots: a refused attempt gives back the slots it took on
// counters within their limit.
func TestLimitsRefusalGivesBackOtherSlots(t *testing.T) {
	st := boltStore(t)
	l := New(st, Options{MaxFailuresPerUsername: 1, MaxFailuresPerAddress: 5, FailureWindow: time.Minute}, nil, nil).Limits
	ctx := context.Background()
	r, _, _ := l.Reserve(ctx, []string{"jatin"}, address)
	r.Failed(ctx)
	for range 3 {
		if _, until, _ := l.Reserve(ctx, []string{"jatin"}, address); until.IsZero() {
			t.Fatal("a locked account was not refused")
		}
	}
	if got := count(t, st, "signin-failures:addr:"+address); got != 1 {
		t.Errorf("address counter after 1 failure and 3 refusals: got %d, want 1", got)
	}
	if got := count(t, st, accountKey("jatin")); got != 4 {
		t.Errorf("account counter past its limit: got %d, want 4 (refusals keep their slot there)", got)
	}
	// Refused gives back every slot an attempt holds.
	r, _, _ = l.Reserve(ctx, []string{"mallory"}, address)
	r.Refused(ctx)
	if got := count(t, st, "signin-failures:addr:"+address); got != 1 {
		t.Errorf("address counter after a reservation refused by its caller: got %d, want 1", got)
	}
	if got := count(t, st, accountKey("mallory")); got != 0 {
		t.Errorf("mallory's counter after a reservation refused by its caller: got %d, want 0", got)
	}
}

// TestLimitsSuccess: a success gives back the address's slot and resets the account's
// counter, but only gives back the slots of an attempt naming several accounts.
func TestLimitsSuccess(t *testing.T) {
	st := boltStore(t)
	l := New(st, Options{MaxFailuresPerUsername: 5, MaxFailuresPerAddress: 5, FailureWindow: time.Minute}, nil, nil).Limits
	ctx := context.Background()
	for range 2 {
		r, _, _ := l.Reserve(ctx, []string{"jatin"}, address)
		r.Failed(ctx)
	}
	r, _, _ := l.Reserve(ctx, []string{"mallory"}, address)
	r.Failed(ctx)
	// mallory signs in, naming jatin too: jatin keeps his 2 failures.
	r, _, _ = l.Reserve(ctx, []string{"mallory", "jatin"}, address)
	r.Succeeded(ctx)
	if got := count(t, st, accountKey("jatin")); got != 2 {
		t.Errorf("jatin after a success naming two accounts: got %d, want 2", got)
	}
	if got := count(t, st, accountKey("mallory")); got != 1 {
		t.Errorf("mallory after a success naming two accounts: got %d, want 1", got)
	}
	// jatin signs in alone: his counter is reset.
	r, _, _ = l.Reserve(ctx, []string{"jatin"}, address)
	r.Succeeded(ctx)
	if got := count(t, st, accountKey("jatin")); got != 0 {
		t.Errorf("jatin after his own success: got %d, want 0", got)
	}
	if got := count(t, st, "signin-failures:addr:"+address); got != 3 {
		t.Errorf("address after 3 failures and 2 successes: got %d, want 3", got)
	}
	// Settling twice does nothing more.
	r.Succeeded(ctx)
	r.Refused(ctx)
	if got := count(t, st, "signin-failures:addr:"+address); got != 3 {
		t.Errorf("address after settling twice: got %d, want 3", got)
	}
}

// TestLimitsFailOpen: a counter the store cannot reserve is reported, not refused on, and
// the attempt's other counters still apply.
func TestLimitsFailOpen(t *testing.T) {
	fs := &failingStore{Store: boltStore(t), down: true}
	l := New(fs, Options{MaxFailuresPerUsername: 1, MaxFailuresPerAddress: 1}, nil, nil).Limits
	ctx := context.Background()
	for i := range 3 {
		r, until, err := l.Reserve(ctx, []string{"jatin"}, address)
		if !until.IsZero() || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("attempt %d with the store down: got refused until %v, err %v; want no refusal and ErrUnavailable", i+1, until, err)
		}
		r.Failed(ctx)
	}
	fs.setDown(false)
	r, _, err := l.Reserve(ctx, []string{"jatin"}, address)
	if err != nil {
		t.Fatal(err)
	}
	r.Failed(ctx)
	if _, until, _ := l.Reserve(ctx, []string{"jatin"}, address); until.IsZero() {
		t.Error("with the store back, the limit does not apply")
	}
}

// TestLimitsWithoutStore: a guard without a store limits nothing.
func TestLimitsWithoutStore(t *testing.T) {
	g := New(nil, Options{MaxFailuresPerUsername: 1}, nil, nil)
	if g.Limits != nil || g.Limits.CountsAccounts() {
		t.Fatal("a guard without a store has limits")
	}
	ctx := context.Background()
	for range 3 {
		r, until, err := g.Limits.Reserve(ctx, []string{"jatin"}, address)
		if err != nil || !until.IsZero() {
			t.Fatalf("got refused until %v, err %v", until, err)
		}
		r.Failed(ctx)
		r.Succeeded(ctx)
	}
}
