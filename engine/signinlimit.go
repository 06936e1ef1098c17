package engine

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/engine/guard"
)

// Brute-force protection for credentials sign-in is the guard's (engine/guard/limits.go:
// what is counted, reserve-before-authorize, what a success or a refusal gives back). This
// file is the engine's side of it: which fields of the body name the account, which
// address the attempt comes from, and the refusal's shape on the wire.
//
// The refusal is NextAuth-shaped so next-auth/react understands it: a redirect to the error
// page with error=TooManyRequests, which with json=true becomes 429 {"url": …}, and
// signIn("credentials", {redirect: false}) returns
// {error: "TooManyRequests", status: 429, ok: false, url: null}, with Retry-After.
//
// A body with a field given twice never gets here (parseBody refuses it), and an
// identifier that is not a string is refused with 400, since a script might still turn
// ["demo"] into "demo".

// identifierFields are the body fields that name the account: the conventional
// credentials fields authorize reads. Other declared fields are not counted: a text field
// such as a tenant or a one-time code is shared by many accounts or changes every time, and
// counting it as an account would lock out a whole tenant, or stop a success from resetting
// the account's counter. A script that names accounts by another field is still limited per
// address.
var identifierFields = [...]string{"username", "email"}

// signInIdentifiers are the identifiers the attempt's body names, in identifierFields
// order. It fails when an identifier field is present but not a string.
func signInIdentifiers(body map[string]any) ([]string, error) {
	var ids []string
	for _, field := range identifierFields {
		v, present := body[field]
		if !present {
			continue
		}
		name, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("the credentials field %q must be a string", field)
		}
		ids = append(ids, name)
	}
	return ids, nil
}

// signInLimiter is the engine's side of the sign-in limits: it owns the guard's counters
// (nil: no store, nothing limited), the resolver of a sign-in's client address, and the
// NextAuth-shaped refusal.
type signInLimiter struct {
	limits *guard.Limits
	addrs  *clientaddr.Resolver
	log    *slog.Logger
	urls   *callbackURLs
}

// refused reserves the attempt's slots before authorize runs (into a.limits), and
// refuses it when one is past its limit.
func (l *signInLimiter) refused(a *authRequest) (response, bool) {
	limits := l.limits
	if limits == nil {
		return response{}, false
	}
	var ids []string
	if limits.CountsAccounts() {
		var err error
		if ids, err = signInIdentifiers(a.body); err != nil {
			return textResponse(http.StatusBadRequest, "Bad Request: "+err.Error()), true
		}
	}
	ctx := a.r.Context()
	// The address the attempt is counted against: the TCP peer, or, when the peer is one of
	// the trusted proxies, the client it names in X-Forwarded-For, by the same rules as the
	// reverse proxy's request.ip. Without trusted proxies, every client behind a load
	// balancer shares its address.
	address := l.addrs.ClientIP(a.r)
	held, refusedUntil, err := limits.Reserve(ctx, ids, address)
	if err != nil {
		l.log.WarnContext(ctx, "sign-in limit not applied: store unavailable", "code", "STORE_UNAVAILABLE", "error", err.Error())
	}
	if refusedUntil.IsZero() {
		a.limits = held
		return response{}, false
	}
	wait := int(limits.RetryAfter(refusedUntil).Seconds())
	l.log.WarnContext(ctx, "credentials sign-in refused: too many failed attempts", "code", "SIGNIN_RATE_LIMITED",
		"address", address, "retry_after_s", wait)
	res := redirectTo(http.StatusTooManyRequests, l.urls.errorURL("error=TooManyRequests"))
	res.header = map[string]string{"Retry-After": strconv.Itoa(wait)}
	return res, true
}
