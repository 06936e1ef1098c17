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

func newSendLimits(st store.RateLimits, o Options, log *slog.Logger, now func() time.Time) *Limits {
	window := o.EmailSendWindow
	if window <= 0 {
		window = time.Hour
	}
	return &Limits{prefix: "email-sends", st: st, log: log, now: now,
		perAccount: int64(max(o.EmailSendsPerAddress, 0)), perAddress: int64(max(o.EmailSendsPerClient, 0)), window: window}
}
