package session

import (
	"time"

	"github.com/callgate/callgate/engine/script"
)

// A session has two bounds: session.maxAge of inactivity (the expiry every renewal slides
// forward), and, when session.absoluteMaxAge is set, a fixed end that far from the sign-in,
// which no renewal moves. Every strategy issues and renews through lifetime, so the cookie,
// the token's exp, the stored expiry and the session's `expires` never pass the fixed end.

// AuthTimeClaim is the jwt session token's claim holding when the user signed in (seconds
// since the epoch, as OpenID Connect's auth_time), set only when session.absoluteMaxAge is.
// It is a claim NextAuth does not set and next-auth/jwt's decode() passes through
// untouched. The core puts it back after every jwt callback, so a script cannot move it.
const AuthTimeClaim = "auth_time"

// lifetime is how long a session signed in at signedIn, issued or renewed at now, may
// last: maxAge, cut short by absoluteMaxAge after signedIn. ok is false when the session is
// past its absolute end: it must end, not be renewed.
func lifetime(o script.SessionOptions, signedIn, now time.Time) (d time.Duration, ok bool) {
	if o.AbsoluteMaxAge <= 0 || signedIn.IsZero() {
		return o.MaxAge, true
	}
	// Whole seconds, as token expiries are: the cookie and the token end together.
	left := signedIn.Add(o.AbsoluteMaxAge).Sub(now).Truncate(time.Second)
	if left <= 0 {
		return 0, false
	}
	return min(o.MaxAge, left), true
}

// authTime is when the user of a decoded jwt token signed in, for absoluteMaxAge: its
// auth_time claim, or, for a token issued before absoluteMaxAge was set, its iat (the
// session then counts from its last renewal, the earliest time the token proves). Zero when
// absoluteMaxAge is not set.
func authTime(o script.SessionOptions, token map[string]any) time.Time {
	if o.AbsoluteMaxAge <= 0 {
		return time.Time{}
	}
	if at, ok := token[AuthTimeClaim].(float64); ok {
		return time.Unix(int64(at), 0)
	}
	if iat, ok := token["iat"].(float64); ok {
		return time.Unix(int64(iat), 0)
	}
	return time.Time{}
}

// lifetimeClaims are the claims the core keeps on a jwt token for its lifetime (auth_time
// when absoluteMaxAge is set), added to extra (the refresh claim), which is not modified.
func lifetimeClaims(signedIn time.Time, extra map[string]any) map[string]any {
	if signedIn.IsZero() {
		return extra
	}
	out := make(map[string]any, len(extra)+1)
	for k, v := range extra {
		out[k] = v
	}
	out[AuthTimeClaim] = signedIn.Unix()
	return out
}

// extension is the stored expiry a database session read or renewal at now moves expires
// to, and whether it moves it: once updateAge has passed since the last extension
// (extensionDue), to now plus its lifetime, unless the absolute end already caps it there.
func extension(o script.SessionOptions, signedIn, expires, now time.Time) (time.Time, bool) {
	if !extensionDue(expires, o, now) {
		return expires, false
	}
	life, _ := lifetime(o, signedIn, now)
	next := now.Add(life)
	if !next.After(expires) {
		return expires, false
	}
	return next, true
}

// AMRClaim is the jwt session token's claim listing how the user last authenticated (RFC
// 8176 method names), set with auth_time when the sign-in or a step-up recorded it
// (SignIn.AMR). The core keeps both across renewals; a script cannot change them.
const AMRClaim = "amr"

// authenticationClaims adds amr and auth_time (at) to claims when amr is set; claims is
// not modified.
func authenticationClaims(amr []string, at time.Time, claims map[string]any) map[string]any {
	if amr == nil {
		return claims
	}
	out := make(map[string]any, len(claims)+2)
	for k, v := range claims {
		out[k] = v
	}
	out[AMRClaim] = amr
	out[AuthTimeClaim] = at.Unix()
	return out
}
