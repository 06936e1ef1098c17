package script

import (
	"context"
	"slices"
	"time"

	"github.com/dop251/goja"
)

// ReadArgs is a session read of the jwt strategy (GET and POST /api/auth/session): jwt's
// argument, and the default session that session() gets with jwt's result as its token.
type ReadArgs struct {
	// JWT is jwt's argument; its Token is the decoded token (JSON keeps the payload's order).
	JWT JWTArgs
	// Session is NextAuth's default session, {user: {name, email, image}, expires}.
	Session Fields
	// Claims are set on jwt's result before session() sees it (the OAuth refresh claim),
	// as an assignment in JS would: in place, or appended.
	Claims map[string]any
	// Removed are claims deleted from jwt's result: the core's own (amr, auth_time, ...)
	// that the token does not hold, which a script may not add either.
	Removed []string
}

// ReadResult is what a session read made.
type ReadResult struct {
	// Token is the token to encode, as JSON.stringify writes it after session() ran; nil
	// when jwt returned null or undefined: the script ended the session.
	Token JSON
	// Session is the /session body: session()'s result, or the default session.
	Session JSON
}

// readState is a session read's values between its two calls, kept in the runtime
// (vm.staged.read) so neither goes through Go: the token object jwt returned is the very
// object session() receives, and the one encoded after it, as in NextAuth.
type readState struct {
	claims     map[string]any
	removed    []string
	hasSession bool       // the script defines session; if not, the body is defaults
	defaults   Fields     // the default session
	token      goja.Value // jwt's result (or the decoded token); nil until made
	ended      bool       // jwt returned null or undefined
	tokenJSON  JSON
	body       JSON
}

// ReadSession runs NextAuth's session read on one runtime: jwt({token, session}) (or the
// token as it is, when the script has no jwt), then session({session, token}) with the
// object jwt returned (or the default session, when the script has no session), and
// returns the token and the body as JSON. One runtime for both calls is one handover
// instead of two, and the token never leaves the runtime between them. Each callback runs
// under its own deadline, as two calls would.
func (g *Generation) ReadSession(ctx context.Context, a ReadArgs) (res ReadResult, err error) {
	defer recoverInto(CallbackJWT.String(), &err)
	hasJWT, hasSession := g.Defines(CallbackJWT), g.Defines(CallbackSession)
	var st readState
	err = g.onRuntime(ctx, laneRequest, CallbackJWT.String(), time.Now(), func(v *vm, got time.Time) (abandoned bool, err error) {
		v.staged.read = readState{claims: a.Claims, removed: a.Removed, hasSession: hasSession, defaults: a.Session}
		v.staged.jwt = a.JWT
		run := func(name string, began time.Time, j job) (abandoned bool, err error) {
			if g.observer != nil {
				defer func() { g.observer.ObserveCall(name, time.Since(began), err) }()
			}
			j.ctx, j.name, j.start, j.timeout = ctx, name, began, g.timeout(name)
			return v.exec(j)
		}
		switch {
		case hasJWT:
			abandoned, err = run(CallbackJWT.String(), got, job{fnName: CallbackJWT.String(), arg: &v.staged.jwt, args: objectArgs, result: readJWTResult})
			if err == nil && !abandoned && !v.staged.read.ended && hasSession {
				abandoned, err = run(CallbackSession.String(), time.Now(), job{fnName: CallbackSession.String(), args: readSessionArgs, result: readSessionResult})
			}
		case hasSession:
			abandoned, err = run(CallbackSession.String(), got, job{fnName: CallbackSession.String(), args: readSessionArgs, result: readSessionResult})
		default:
			// Neither callback: nothing of the script runs, the runtime only writes the JSON.
			abandoned, err = run(CallbackJWT.String(), got, job{f: func() (goja.Value, error) { return goja.Undefined(), nil }, use: func(goja.Value) error { return v.finishRead() }})
		}
		if !abandoned { // an abandoned runtime's goroutine may still write it
			st = v.staged.read
		}
		return abandoned, err
	})
	if err != nil || st.ended {
		return ReadResult{}, err
	}
	return ReadResult{Token: st.tokenJSON, Session: st.body}, nil
}

// readJWTResult keeps what jwt returned in the runtime: an object (the token, with the
// core's claims set on it), or null or undefined, which ends the session.
func readJWTResult(v *vm, name string, val goja.Value) (any, error) {
	st := &v.staged.read
	if isNullish(val) {
		st.ended = true
		return nil, nil
	}
	o, ok := val.(*goja.Object)
	if !ok || v.typeOf(val) != "object" {
		return nil, invalidResult(name, "an object, null or undefined", v.typeOf(val))
	}
	keys := make([]string, 0, len(st.claims))
	for k := range st.claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := o.Set(k, v.toJS(st.claims[k])); err != nil {
			return nil, err
		}
	}
	for _, k := range st.removed {
		if err := o.Delete(k); err != nil {
			return nil, err
		}
	}
	st.token = o
	if !st.hasSession {
		return nil, v.finishRead()
	}
	return nil, nil
}

// readSessionArgs is session({session, token}), token being the object jwt returned, or
// the decoded token when the script has no jwt.
func readSessionArgs(v *vm, _ Object) []goja.Value {
	st := &v.staged.read
	if st.token == nil {
		st.token = v.toJS(v.staged.jwt.Token)
	}
	v.staged.session = SessionArgs{Session: st.defaults, Token: st.token}
	return []goja.Value{v.toJS(&v.staged.session)}
}

// readSessionResult writes session()'s result and then the token as JSON: the token after
// session(), which may have changed it, as NextAuth encodes it.
func readSessionResult(v *vm, name string, val goja.Value) (any, error) {
	body, err := v.exportObjectJSON(name, val, "an object")
	if err != nil {
		return nil, err
	}
	v.staged.read.body = body
	return nil, v.finishRead()
}

// finishRead writes the read's token as JSON, and the default session as the body when
// session() did not make one.
func (v *vm) finishRead() error {
	st := &v.staged.read
	if st.token == nil {
		st.token = v.toJS(v.staged.jwt.Token)
	}
	tok, err := v.exportObjectJSON(CallbackJWT.String(), st.token, "an object, null or undefined")
	if err != nil {
		return err
	}
	st.tokenJSON = tok
	if st.body == nil {
		if st.body, err = st.defaults.MarshalJSON(); err != nil {
			return err
		}
	}
	return nil
}
