package engine

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Brute-force protection for credentials sign-in: failed attempts are counted per
// username and per client address in the store, so every replica sees the same counts.
// Past a limit, attempts are refused until the window ends with 429 and Retry-After.
//
// The refusal is NextAuth-shaped so next-auth/react understands it: a redirect to the error
// page with error=TooManyRequests, which with json=true becomes 429 {"url": …}, and
// signIn("credentials", {redirect: false}) returns
// {error: "TooManyRequests", status: 429, ok: false, url: null}.
//
// A store failure while counting never blocks a sign-in: the limits fail open and the
// failure is logged. Counting is not transactional with the check, so a burst of parallel
// attempts may overshoot a limit by the burst's size, never by more.

// limitCounter is one counter an attempt is charged to.
type limitCounter struct {
	key     string
	limit   int64
	perUser bool
}

// limitCounters are the counters of this attempt: its username (or e-mail) and its
// client address, each when its limit is on.
func (e *Engine) limitCounters(a *authRequest) []limitCounter {
	o := e.stored.opts
	var cs []limitCounter
	if o.MaxFailuresPerUsername > 0 {
		name, _ := a.body["username"].(string)
		if name == "" {
			name, _ = a.body["email"].(string)
		}
		if name != "" {
			cs = append(cs, limitCounter{"signin-failures:user:" + name, int64(o.MaxFailuresPerUsername), true})
		}
	}
	if o.MaxFailuresPerAddress > 0 {
		cs = append(cs, limitCounter{"signin-failures:addr:" + e.stored.clientAddress(a.r), int64(o.MaxFailuresPerAddress), false})
	}
	return cs
}

// signInRefused checks the counters before authorize runs.
func (e *Engine) signInRefused(a *authRequest) (response, bool) {
	if e.stored.st == nil {
		return response{}, false
	}
	ctx := a.r.Context()
	var until time.Time
	for _, c := range e.limitCounters(a) {
		n, resetAt, err := e.stored.st.Count(ctx, c.key)
		if err != nil {
			e.log.WarnContext(ctx, "sign-in limit not checked: store unavailable", "code", "STORE_UNAVAILABLE", "error", err.Error())
			return response{}, false
		}
		if n >= c.limit && resetAt.After(until) {
			until = resetAt
		}
	}
	if until.IsZero() {
		return response{}, false
	}
	wait := max(1, int(math.Ceil(time.Until(until).Seconds())))
	e.log.WarnContext(ctx, "credentials sign-in refused: too many failed attempts", "code", "SIGNIN_RATE_LIMITED",
		"address", e.stored.clientAddress(a.r), "retry_after_s", wait)
	res := redirectTo(http.StatusTooManyRequests, e.errorURL("error=TooManyRequests"))
	res.header = map[string]string{"Retry-After": strconv.Itoa(wait)}
	return res, true
}

// signInFailed charges a failed attempt to its counters.
func (e *Engine) signInFailed(a *authRequest) {
	if e.stored.st == nil {
		return
	}
	// The count must land even if the client hangs up at once.
	ctx := context.WithoutCancel(a.r.Context())
	for _, c := range e.limitCounters(a) {
		if _, _, err := e.stored.st.Increment(ctx, c.key, e.stored.opts.FailureWindow); err != nil {
			e.log.WarnContext(ctx, "failed sign-in not counted: store unavailable", "code", "STORE_UNAVAILABLE", "error", err.Error())
			return
		}
	}
}

// signInSucceeded clears the username's counter; the address's keeps counting, so one
// good account does not unlock guessing at the others.
func (e *Engine) signInSucceeded(a *authRequest) {
	if e.stored.st == nil {
		return
	}
	for _, c := range e.limitCounters(a) {
		if !c.perUser {
			continue
		}
		if err := e.stored.st.ResetCount(a.r.Context(), c.key); err != nil {
			e.log.WarnContext(a.r.Context(), "sign-in counter not reset", "code", "STORE_UNAVAILABLE", "error", err.Error())
		}
	}
}
