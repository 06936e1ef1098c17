package script

import (
	"context"

	"github.com/dop251/goja"
)

// SessionArgs is the session callback's argument: {session, token} with the jwt strategy,
// {session, user, newSession} with the database strategy (and trigger: "update" on an
// update), as NextAuth v4 passes them.
type SessionArgs struct {
	// Session is the default session body ({user, expires}): a map, or Fields or JSON to
	// keep NextAuth's key order.
	Session any
	// Token is the token jwt returned (jwt strategy), a map or JSON; nil leaves the key out.
	Token any
	// User is the adapter's user (database strategy); when set, newSession is passed too.
	User map[string]any
	// NewSession is the update's data (database strategy); nil passes undefined.
	NewSession any
	// Trigger is "update" on an update (database strategy); empty leaves the key out.
	Trigger string
}

// Get implements Object.
func (a *SessionArgs) Get(key string) (any, bool) {
	switch key {
	case "session":
		return a.Session, true
	case "token":
		return a.Token, a.Token != nil
	case "user":
		return a.User, a.User != nil
	case "newSession":
		if a.NewSession == nil {
			return Undefined, a.User != nil
		}
		return a.NewSession, a.User != nil
	case "trigger":
		return a.Trigger, a.Trigger != ""
	}
	return nil, false
}

// Keys implements Object.
func (a *SessionArgs) Keys() []string {
	return presentKeys(a, "session", "token", "user", "newSession", "trigger")
}

// Session runs callbacks.session on the request lane and returns the session body the
// browser will see, which must be an object, as the runtime's JSON.stringify wrote it: the
// /session answer, in the key order the script built.
func (g *Generation) Session(ctx context.Context, a SessionArgs) (session JSON, err error) {
	name := CallbackSession.String()
	defer recoverInto(name, &err)
	if !g.Defines(CallbackSession) {
		return nil, notDefined(name)
	}
	res, err := g.invoke(ctx, callbackInfo[CallbackSession].lane, name, name, nil, func(v *vm) Object {
		v.staged.session = a
		return &v.staged.session
	}, objectArgs, sessionResult)
	if err != nil {
		return nil, err
	}
	return res.(JSON), nil
}

// sessionResult checks what session returned: an object.
func sessionResult(v *vm, name string, val goja.Value) (any, error) {
	return v.exportObjectJSON(name, val, "an object")
}
