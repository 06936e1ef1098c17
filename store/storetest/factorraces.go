package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

// The factor conformance races: callers on one store, or on replicas of it, presenting the
// same code, counter or credential at once; exactly one may win.

// race starts n callers of fn at once, caller i on stores[i%len(stores)], and returns
// their errors.
func race(stores []store.Store, n int, fn func(s store.Store, i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(stores[i%len(stores)], i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// wantOneWinner checks that exactly one error is nil and every other wraps loser.
func wantOneWinner(t *testing.T, what string, errs []error, loser error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("%s: callers %d and %d both succeeded, want one", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Errorf("%s: caller %d: got %v, want nil or %v", what, i, err, loser)
		}
	}
	if winner < 0 {
		t.Errorf("%s: no caller succeeded, want one", what)
	}
	return winner
}

func testFactorRaces(t *testing.T, replicas func(t *testing.T) []store.Store) {
	ctx := context.Background()
	const racers = 24
	t.Run("SameTOTPStep", func(t *testing.T) {
		stores := replicas(t)
		if err := stores[0].SetTOTP(ctx, store.TOTPSecret{UserID: ownerA, Sealed: []byte("s")}); err != nil {
			t.Fatalf("SetTOTP: %v", err)
		}
		for round := range int64(5) {
			step := 59_000_000 + round
			errs := race(stores, racers, func(s store.Store, _ int) error { return s.UseTOTPStep(ctx, ownerA, step) })
			wantOneWinner(t, fmt.Sprintf("round %d: UseTOTPStep(%d)", round, step), errs, store.ErrConflict)
		}
	})
	t.Run("IncreasingTOTPSteps", func(t *testing.T) {
		// Callers with steps 1..n race: whatever the order, the greatest step is never
		// refused and is what stays stored. A lost update would leave a smaller one.
		stores := replicas(t)
		if err := stores[0].SetTOTP(ctx, store.TOTPSecret{UserID: ownerA, Sealed: []byte("s")}); err != nil {
			t.Fatalf("SetTOTP: %v", err)
		}
		errs := race(stores, racers, func(s store.Store, i int) error { return s.UseTOTPStep(ctx, ownerA, int64(i+1)) })
		for i, err := range errs {
			if err != nil && !errors.Is(err, store.ErrConflict) {
				t.Errorf("UseTOTPStep(%d): got %v, want nil or ErrConflict", i+1, err)
			}
		}
		if errs[racers-1] != nil {
			t.Errorf("UseTOTPStep of the greatest step: got %v, want nil", errs[racers-1])
		}
		for _, s := range stores {
			if got, err := s.TOTP(ctx, ownerA); err != nil || got.LastStep != racers {
				t.Errorf("LastStep after the race: got %d (%v), want %d", got.LastStep, err, racers)
			}
		}
	})
	t.Run("SameRecoveryCode", func(t *testing.T) {
		stores := replicas(t)
		codes := hashes(9, 4)
		if err := stores[0].SetRecoveryCodes(ctx, ownerA, codes); err != nil {
			t.Fatalf("SetRecoveryCodes: %v", err)
		}
		for i, code := range codes[:2] {
			errs := race(stores, racers, func(s store.Store, _ int) error { return s.UseRecoveryCode(ctx, ownerA, code) })
			wantOneWinner(t, fmt.Sprintf("UseRecoveryCode of code %d", i), errs, store.ErrNotFound)
		}
		wantRecoveryCount(t, stores[len(stores)-1], ownerA, 2)
	})
	t.Run("SamePasskeyCounter", func(t *testing.T) {
		stores := replicas(t)
		p := passkey(ownerA, credID(0x70, 32), time.Now())
		p.SignCount = 0
		mustCreatePasskey(t, stores[0], p)
		for round := range uint32(5) {
			count := 10 + round
			at := time.Now().Round(time.Millisecond).Add(time.Duration(round) * time.Second)
			errs := race(stores, racers, func(s store.Store, _ int) error { return s.UsePasskey(ctx, p.ID, count, at) })
			wantOneWinner(t, fmt.Sprintf("round %d: UsePasskey(%d)", round, count), errs, store.ErrConflict)
			for _, s := range stores {
				if got := mustPasskey(t, s, p.ID); got.SignCount != count || !got.LastUsedAt.Equal(at) {
					t.Errorf("round %d: after the race: got counter %d used %v, want %d used %v", round, got.SignCount, got.LastUsedAt, count, at)
				}
			}
		}
	})
	t.Run("SameCredentialID", func(t *testing.T) {
		// Two users registering one credential ID: one gets it, and only that user
		// lists it.
		stores := replicas(t)
		id := credID(0x71, 32)
		owners := make([]string, racers)
		for i := range owners {
			owners[i] = fmt.Sprintf("%024x", i+1)
		}
		errs := race(stores, racers, func(s store.Store, i int) error {
			return s.CreatePasskey(ctx, passkey(owners[i], id, time.Now()))
		})
		winner := wantOneWinner(t, "CreatePasskey of one id", errs, store.ErrDuplicate)
		if winner < 0 {
			return
		}
		if got := mustPasskey(t, stores[0], id); got.UserID != owners[winner] {
			t.Errorf("owner of the raced id: got %q, want the winner %q", got.UserID, owners[winner])
		}
		for i, owner := range owners {
			list, err := stores[len(stores)-1].ListPasskeys(ctx, owner)
			if want := map[bool]int{true: 1, false: 0}[i == winner]; err != nil || len(list) != want {
				t.Errorf("ListPasskeys of racer %d: got %d (%v), want %d", i, len(list), err, want)
			}
		}
	})
}
