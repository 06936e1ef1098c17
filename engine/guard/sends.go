package guard

import (
	"log/slog"
	"time"

	"github.com/callgate/callgate/store"
)

// The e-mail sending limits are the sign-in limits' counters with another prefix: a slot
// per e-mail address (its account form, hashed, as an account name is) and per client
// address, reserved before the message is sent. A send past a limit is not made; the
// engine answers it exactly as a sent one, so the limit tells a client nothing about the
// address. A made send keeps its slots (Reservation.Failed: nothing to give back), a send
// refused before it was tried gives them back (Refused). Like the sign-in limits, they
// fail open when the store is down: an outage must not stop every sign-in by e-mail.

const (
	defaultSendsPerAddress = 5
	defaultSendsPerClient  = 20
	defaultSendWindow      = time.Hour
)

func newSendLimits(st store.RateLimits, o Options, log *slog.Logger, now func() time.Time) *Limits {
	limit := func(n int, def int64) int64 {
		switch {
		case n == 0:
			return def
		case n < 0:
			return 0
		}
		return int64(n)
	}
	window := o.EmailSendWindow
	if window <= 0 {
		window = defaultSendWindow
	}
	return &Limits{prefix: "email-sends", st: st, log: log, now: now,
		perAccount: limit(o.EmailSendsPerAddress, defaultSendsPerAddress),
		perAddress: limit(o.EmailSendsPerClient, defaultSendsPerClient), window: window}
}
