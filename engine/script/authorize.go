package script

import (
	"context"
	"fmt"

	"github.com/dop251/goja"
)

// Authorize runs the authorize function of the credentials provider providerID on the
// sign-in lane, with (credentials, req) as NextAuth v4 passes them. It returns nil, nil
// when authorize returned null, undefined or false.
func (g *Generation) Authorize(ctx context.Context, providerID string, credentials, req map[string]any) (user map[string]any, err error) {
	const name = NameAuthorize
	defer recoverInto(name, &err)
	fnName := "authorize:" + providerID
	if !g.has[fnName] {
		return nil, &Error{Callback: name, Kind: KindInternal, Message: fmt.Sprintf("no credentials provider %q with an authorize function", providerID)}
	}
	res, err := g.invoke(ctx, laneSignIn, name, fnName, nil, nil, func(v *vm, _ Object) []goja.Value {
		return []goja.Value{v.toJS(credentials), v.toJS(req)}
	}, authorizeResult)
	if err != nil || res == nil {
		return nil, err
	}
	return res.(map[string]any), nil
}

// authorizeResult checks what authorize returned: a user object, or null, undefined or
// false (no such user).
func authorizeResult(v *vm, name string, val goja.Value) (any, error) {
	if isNullish(val) || val.StrictEquals(v.rt.ToValue(false)) {
		return nil, nil
	}
	out, err := v.exportJSON(val)
	if err != nil {
		return nil, err
	}
	if _, ok := out.(map[string]any); !ok {
		return nil, invalidResult(name, "an object, null or false", v.typeOf(val))
	}
	return out, nil
}
