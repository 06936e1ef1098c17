package script

import (
	"context"

	"github.com/dop251/goja"
)

// Authorized runs callbacks.authorized, the proxy's access decision, on the request lane.
// arg is the caller's own Object ({request, auth, token}: engine/proxy builds it), read
// lazily, so a decision that looks at one claim converts one claim. The result is JSON-
// shaped as the script returned it (nil for null or undefined): true or false, a URL to
// redirect to, or an object of upstream headers and claims; the proxy decides what each
// means. The claims of a plain object come back as JSON, in the order the script wrote
// them: they become the assertion's claims, which the app reads.
func (g *Generation) Authorized(ctx context.Context, arg Object) (result any, err error) {
	name := CallbackAuthorized.String()
	defer recoverInto(name, &err)
	if !g.Defines(CallbackAuthorized) {
		return nil, notDefined(name)
	}
	return g.invoke(ctx, callbackInfo[CallbackAuthorized].lane, name, name, arg, nil, objectArgs, authorizedResult)
}

func authorizedResult(v *vm, name string, val goja.Value) (any, error) {
	res, err := anyResult(v, name, val)
	m, isMap := res.(map[string]any)
	if err != nil || !isMap {
		return res, err
	}
	if _, ok := m["claims"].(map[string]any); !ok {
		return res, nil
	}
	// A toJSON or a class instance made m from something other than val's own claims
	// property; the map stays, and its order is encoding/json's.
	if o, ok := val.(*goja.Object); !ok || v.plainShape(o) != plainObject {
		return res, nil
	}
	claims, err := v.exportObjectJSON(name+" claims", val.(*goja.Object).Get("claims"), "an object")
	if err != nil {
		return nil, err
	}
	m["claims"] = claims
	return m, nil
}
