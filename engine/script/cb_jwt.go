package script

import (
	"context"

	"github.com/dop251/goja"
)

// JWTArgs is the jwt callback's argument, keyed as NextAuth v4 passes it in each flow:
//
//	sign-in (credentials) {token, user, account, isNewUser: false, trigger: "signIn"}
//	sign-in (OAuth)       {token, user, account, profile, isNewUser, trigger: "signIn" | "signUp"}
//	session read          {token, session: undefined}
//	update                {token, trigger: "update", session}
//	token refresh         {token, account, trigger: "refresh"}
//
// A nil field is a key the script does not see, so each flow gets exactly its key set
// (scripts may test `"user" in arg`).
type JWTArgs struct {
	// Token is always present: a map, or JSON or Fields when its key order matters (the
	// decoded token's payload, the new token of a sign-in).
	Token   any
	User    map[string]any
	Account map[string]any
	Profile any // OAuth sign-ins: the provider's profile
	// Trigger is "signIn", "signUp", "update" or "refresh"; empty on a session read (no key).
	Trigger string
	// IsNewUser is passed on sign-ins (Trigger "signIn" or "signUp") only.
	IsNewUser bool
	// Session is the update's data; Undefined on a session read (the key, undefined); nil
	// leaves the key out.
	Session any
}

// signingIn reports the sign-in flows, which make the token and run on the sign-in lane.
func (a *JWTArgs) signingIn() bool { return a.Trigger == "signIn" || a.Trigger == "signUp" }

// Get implements Object.
func (a *JWTArgs) Get(key string) (any, bool) {
	switch key {
	case "token":
		return a.Token, true
	case "user":
		return a.User, a.User != nil
	case "account":
		return a.Account, a.Account != nil
	case "profile":
		return a.Profile, a.Profile != nil
	case "trigger":
		return a.Trigger, a.Trigger != ""
	case "isNewUser":
		return a.IsNewUser, a.signingIn()
	case "session":
		return a.Session, a.Session != nil
	}
	return nil, false
}

// Keys implements Object.
func (a *JWTArgs) Keys() []string {
	// NextAuth's order: {token, user, account, profile, isNewUser, trigger} at sign-in,
	// {token, trigger, session} on update.
	return presentKeys(a, "token", "user", "account", "profile", "isNewUser", "trigger", "session")
}

// JWT runs callbacks.jwt and returns the token it made as the runtime's JSON.stringify
// wrote it (the key order the script built), or nil when it returned null or undefined:
// the script ends the session (or refuses the sign-in). Sign-ins run on the sign-in lane,
// every other trigger on the request lane.
func (g *Generation) JWT(ctx context.Context, a JWTArgs) (token JSON, err error) {
	name := CallbackJWT.String()
	defer recoverInto(name, &err)
	if !g.Defines(CallbackJWT) {
		return nil, notDefined(name)
	}
	l := laneRequest
	if a.signingIn() {
		l = laneSignIn
	}
	res, err := g.invoke(ctx, l, name, name, nil, func(v *vm) Object {
		v.staged.jwt = a
		return &v.staged.jwt
	}, objectArgs, jwtResult)
	if err != nil || res == nil {
		return nil, err
	}
	return res.(JSON), nil
}

// jwtResult checks what jwt returned: an object (the token), or null or undefined.
func jwtResult(v *vm, name string, val goja.Value) (any, error) {
	if isNullish(val) {
		return nil, nil
	}
	return v.exportObjectJSON(name, val, "an object, null or undefined")
}
