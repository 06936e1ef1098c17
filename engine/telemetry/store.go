package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/callgate/callgate/store"
)

// Store wraps st so that every call made during a traced request is a child span of it,
// named after the method ("store.FindUser") with the backend's name (system: "bolt",
// "redis"). A missing record is an answer, not a failure; any other error marks the span
// failed with its kind (unavailable or error), never its text, which can quote a key. Calls
// outside a traced request (the revocation watch, a lock renewal in the background) go
// straight through, as does SubscribeRevocations, which lasts as long as the gateway.
// st when t is nil.
func (t *Telemetry) Store(st store.Store, system string) store.Store {
	if t == nil {
		return st
	}
	return &tracedStore{t: t, next: st, system: attribute.String("db.system.name", system)}
}

type tracedStore struct {
	t      *Telemetry
	next   store.Store
	system attribute.KeyValue
}

func noEnd(err error) error { return err }

// start begins a call's span, when ctx is a traced request's; end finishes it with the
// call's error and returns that error.
func (ts *tracedStore) start(ctx context.Context, method string) (context.Context, func(error) error) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noEnd
	}
	ctx, span := ts.t.tracer.Start(ctx, "store."+method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(ts.system, attribute.String("db.operation.name", method)))
	return ctx, func(err error) error {
		switch {
		case err == nil, errors.Is(err, store.ErrNotFound):
		case errors.Is(err, store.ErrUnavailable):
			span.SetStatus(codes.Error, "store unavailable")
		case errors.Is(err, store.ErrDuplicate):
			// A taken username is the caller's answer, not the store's failure.
			span.SetAttributes(attribute.String("callgate.store.result", "duplicate"))
		default:
			span.SetStatus(codes.Error, "store error")
		}
		span.End()
		return err
	}
}

func (ts *tracedStore) Close() error { return ts.next.Close() }

// The methods below are store.Store's, each one span around the same call.

func (ts *tracedStore) LinkAccount(ctx context.Context, a store.Account) error {
	ctx, end := ts.start(ctx, "LinkAccount")
	return end(ts.next.LinkAccount(ctx, a))
}

func (ts *tracedStore) FindAccount(ctx context.Context, provider, providerAccountID string) (store.Account, error) {
	ctx, end := ts.start(ctx, "FindAccount")
	a, err := ts.next.FindAccount(ctx, provider, providerAccountID)
	return a, end(err)
}

func (ts *tracedStore) UnlinkAccount(ctx context.Context, provider, providerAccountID string) error {
	ctx, end := ts.start(ctx, "UnlinkAccount")
	return end(ts.next.UnlinkAccount(ctx, provider, providerAccountID))
}

func (ts *tracedStore) CreateVerificationToken(ctx context.Context, t store.VerificationToken) error {
	ctx, end := ts.start(ctx, "CreateVerificationToken")
	return end(ts.next.CreateVerificationToken(ctx, t))
}

func (ts *tracedStore) UseVerificationToken(ctx context.Context, identifier, token string) (store.VerificationToken, error) {
	ctx, end := ts.start(ctx, "UseVerificationToken")
	a, err := ts.next.UseVerificationToken(ctx, identifier, token)
	return a, end(err)
}

func (ts *tracedStore) CreatePasskey(ctx context.Context, p store.Passkey) error {
	ctx, end := ts.start(ctx, "CreatePasskey")
	return end(ts.next.CreatePasskey(ctx, p))
}

func (ts *tracedStore) Passkey(ctx context.Context, credentialID []byte) (store.Passkey, error) {
	ctx, end := ts.start(ctx, "Passkey")
	a, err := ts.next.Passkey(ctx, credentialID)
	return a, end(err)
}

func (ts *tracedStore) ListPasskeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	ctx, end := ts.start(ctx, "ListPasskeys")
	a, err := ts.next.ListPasskeys(ctx, userID)
	return a, end(err)
}

func (ts *tracedStore) UsePasskey(ctx context.Context, credentialID []byte, signCount uint32, at time.Time) error {
	ctx, end := ts.start(ctx, "UsePasskey")
	return end(ts.next.UsePasskey(ctx, credentialID, signCount, at))
}

func (ts *tracedStore) RenamePasskey(ctx context.Context, userID string, credentialID []byte, name string) error {
	ctx, end := ts.start(ctx, "RenamePasskey")
	return end(ts.next.RenamePasskey(ctx, userID, credentialID, name))
}

func (ts *tracedStore) DeletePasskey(ctx context.Context, userID string, credentialID []byte) error {
	ctx, end := ts.start(ctx, "DeletePasskey")
	return end(ts.next.DeletePasskey(ctx, userID, credentialID))
}

func (ts *tracedStore) SetTOTP(ctx context.Context, t store.TOTPSecret) error {
	ctx, end := ts.start(ctx, "SetTOTP")
	return end(ts.next.SetTOTP(ctx, t))
}

func (ts *tracedStore) TOTP(ctx context.Context, userID string) (store.TOTPSecret, error) {
	ctx, end := ts.start(ctx, "TOTP")
	a, err := ts.next.TOTP(ctx, userID)
	return a, end(err)
}

func (ts *tracedStore) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	ctx, end := ts.start(ctx, "UseTOTPStep")
	return end(ts.next.UseTOTPStep(ctx, userID, step))
}

func (ts *tracedStore) DeleteTOTP(ctx context.Context, userID string) error {
	ctx, end := ts.start(ctx, "DeleteTOTP")
	return end(ts.next.DeleteTOTP(ctx, userID))
}

func (ts *tracedStore) SetRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	ctx, end := ts.start(ctx, "SetRecoveryCodes")
	return end(ts.next.SetRecoveryCodes(ctx, userID, hashes))
}

func (ts *tracedStore) UseRecoveryCode(ctx context.Context, userID string, hash []byte) error {
	ctx, end := ts.start(ctx, "UseRecoveryCode")
	return end(ts.next.UseRecoveryCode(ctx, userID, hash))
}

func (ts *tracedStore) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	ctx, end := ts.start(ctx, "CountRecoveryCodes")
	a, err := ts.next.CountRecoveryCodes(ctx, userID)
	return a, end(err)
}

func (ts *tracedStore) DeleteFactors(ctx context.Context, userID string) error {
	ctx, end := ts.start(ctx, "DeleteFactors")
	return end(ts.next.DeleteFactors(ctx, userID))
}

func (ts *tracedStore) Revoke(ctx context.Context, r store.Revocation) error {
	ctx, end := ts.start(ctx, "Revoke")
	return end(ts.next.Revoke(ctx, r))
}

func (ts *tracedStore) RevocationState(ctx context.Context, userID, tokenID string) (store.RevocationState, error) {
	ctx, end := ts.start(ctx, "RevocationState")
	a, err := ts.next.RevocationState(ctx, userID, tokenID)
	return a, end(err)
}

func (ts *tracedStore) ListRevocations(ctx context.Context) ([]store.Revocation, error) {
	ctx, end := ts.start(ctx, "ListRevocations")
	a, err := ts.next.ListRevocations(ctx)
	return a, end(err)
}

func (ts *tracedStore) Increment(ctx context.Context, key string, window time.Duration) (count int64, resetAt time.Time, err error) {
	ctx, end := ts.start(ctx, "Increment")
	a, b, err := ts.next.Increment(ctx, key, window)
	return a, b, end(err)
}

func (ts *tracedStore) Release(ctx context.Context, key string, resetAt time.Time) error {
	ctx, end := ts.start(ctx, "Release")
	return end(ts.next.Release(ctx, key, resetAt))
}

func (ts *tracedStore) Count(ctx context.Context, key string) (count int64, resetAt time.Time, err error) {
	ctx, end := ts.start(ctx, "Count")
	a, b, err := ts.next.Count(ctx, key)
	return a, b, end(err)
}

func (ts *tracedStore) ResetCount(ctx context.Context, key string) error {
	ctx, end := ts.start(ctx, "ResetCount")
	return end(ts.next.ResetCount(ctx, key))
}

func (ts *tracedStore) AcquireLock(ctx context.Context, name string, ttl time.Duration) (token string, ok bool, err error) {
	ctx, end := ts.start(ctx, "AcquireLock")
	a, b, err := ts.next.AcquireLock(ctx, name, ttl)
	return a, b, end(err)
}

func (ts *tracedStore) RenewLock(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	ctx, end := ts.start(ctx, "RenewLock")
	a, err := ts.next.RenewLock(ctx, name, token, ttl)
	return a, end(err)
}

func (ts *tracedStore) ReleaseLock(ctx context.Context, name, token string) error {
	ctx, end := ts.start(ctx, "ReleaseLock")
	return end(ts.next.ReleaseLock(ctx, name, token))
}

func (ts *tracedStore) CreateSession(ctx context.Context, s store.Session) error {
	ctx, end := ts.start(ctx, "CreateSession")
	return end(ts.next.CreateSession(ctx, s))
}

func (ts *tracedStore) GetSessionAndUser(ctx context.Context, id string) (store.Session, store.User, error) {
	ctx, end := ts.start(ctx, "GetSessionAndUser")
	a, b, err := ts.next.GetSessionAndUser(ctx, id)
	return a, b, end(err)
}

func (ts *tracedStore) ExtendSession(ctx context.Context, id string, expires time.Time) error {
	ctx, end := ts.start(ctx, "ExtendSession")
	return end(ts.next.ExtendSession(ctx, id, expires))
}

func (ts *tracedStore) DeleteSession(ctx context.Context, id string) (store.Session, error) {
	ctx, end := ts.start(ctx, "DeleteSession")
	a, err := ts.next.DeleteSession(ctx, id)
	return a, end(err)
}

func (ts *tracedStore) ListSessions(ctx context.Context, userID string) ([]store.Session, error) {
	ctx, end := ts.start(ctx, "ListSessions")
	a, err := ts.next.ListSessions(ctx, userID)
	return a, end(err)
}

func (ts *tracedStore) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	ctx, end := ts.start(ctx, "DeleteUserSessions")
	a, err := ts.next.DeleteUserSessions(ctx, userID)
	return a, end(err)
}

func (ts *tracedStore) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	ctx, end := ts.start(ctx, "CreateUser")
	a, err := ts.next.CreateUser(ctx, u)
	return a, end(err)
}

func (ts *tracedStore) ImportUsers(ctx context.Context, users []store.User) error {
	ctx, end := ts.start(ctx, "ImportUsers")
	return end(ts.next.ImportUsers(ctx, users))
}

func (ts *tracedStore) UpdateUser(ctx context.Context, id string, patch store.UserPatch) (store.User, error) {
	ctx, end := ts.start(ctx, "UpdateUser")
	a, err := ts.next.UpdateUser(ctx, id, patch)
	return a, end(err)
}

func (ts *tracedStore) FindUser(ctx context.Context, q store.UserQuery) (store.User, error) {
	ctx, end := ts.start(ctx, "FindUser")
	a, err := ts.next.FindUser(ctx, q)
	return a, end(err)
}

func (ts *tracedStore) ListUsers(ctx context.Context) ([]store.User, error) {
	ctx, end := ts.start(ctx, "ListUsers")
	a, err := ts.next.ListUsers(ctx)
	return a, end(err)
}

func (ts *tracedStore) DeleteUser(ctx context.Context, q store.UserQuery) error {
	ctx, end := ts.start(ctx, "DeleteUser")
	return end(ts.next.DeleteUser(ctx, q))
}

func (ts *tracedStore) CountUsers(ctx context.Context) (int, error) {
	ctx, end := ts.start(ctx, "CountUsers")
	a, err := ts.next.CountUsers(ctx)
	return a, end(err)
}

func (ts *tracedStore) Ping(ctx context.Context) error {
	ctx, end := ts.start(ctx, "Ping")
	return end(ts.next.Ping(ctx))
}

func (ts *tracedStore) SubscribeRevocations(ctx context.Context, fn func(store.Revocation)) error {
	return ts.next.SubscribeRevocations(ctx, fn)
}
