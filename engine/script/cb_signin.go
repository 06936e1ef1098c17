package script

import (
	"context"

	"github.com/dop251/goja"
)

// SignInArgs is the signIn callback's argument: {user, account, credentials} for a
// credentials sign-in, {user, account, profile} for OAuth, as NextAuth v4 passes them.
// A nil field leaves its key out.
type SignInArgs struct {
	User        map[string]any
	Account     map[string]any
	Profile     any // OAuth: the provider's profile
	Credentials any // credentials: the submitted form
	Email       any // e-mail: {verificationRequest: true} when the link is asked for
}

// Get implements Object.
func (a *SignInArgs) Get(key string) (any, bool) {
	switch key {
	case "user":
		return a.User, a.User != nil
	case "account":
		return a.Account, a.Account != nil
	case "profile":
		return a.Profile, a.Profile != nil
	case "credentials":
		return a.Credentials, a.Credentials != nil
	case "email":
		return a.Email, a.Email != nil
	}
	return nil, false
}

// Keys implements Object.
func (a *SignInArgs) Keys() []string {
	return presentKeys(a, "user", "account", "profile", "credentials", "email")
}

// SignIn runs callbacks.signIn on the sign-in lane. Its result is JSON-shaped as the
// script returned it (nil for null or undefined): NextAuth reads a non-empty string as
// where to redirect instead, and any other value by its truthiness (allowed or denied),
// which the engine decides.
func (g *Generation) SignIn(ctx context.Context, a SignInArgs) (result any, err error) {
	name := CallbackSignIn.String()
	defer recoverInto(name, &err)
	if !g.Defines(CallbackSignIn) {
		return nil, notDefined(name)
	}
	return g.invoke(ctx, callbackInfo[CallbackSignIn].lane, name, name, nil, func(v *vm) Object {
		v.staged.signIn = a
		return &v.staged.signIn
	}, objectArgs, anyResult)
}

// anyResult is the result of signIn and authorized, which may return any JSON value.
func anyResult(v *vm, _ string, val goja.Value) (any, error) {
	if isNullish(val) {
		return nil, nil
	}
	return v.exportJSON(val)
}
