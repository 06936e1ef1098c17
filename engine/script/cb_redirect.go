package script

import (
	"context"

	"github.com/dop251/goja"
)

// RedirectArgs is the redirect callback's argument, {url, baseUrl}.
type RedirectArgs struct {
	URL     string // where the browser asked to go
	BaseURL string // the gateway's origin
}

// Get implements Object.
func (a *RedirectArgs) Get(key string) (any, bool) {
	switch key {
	case "url":
		return a.URL, true
	case "baseUrl":
		return a.BaseURL, true
	}
	return nil, false
}

// Keys implements Object.
func (a *RedirectArgs) Keys() []string { return []string{"baseUrl", "url"} }

// Redirect runs callbacks.redirect on the request lane and returns the URL it chose, which
// must be a string. The engine still makes the final same-origin check.
func (g *Generation) Redirect(ctx context.Context, a RedirectArgs) (url string, err error) {
	name := CallbackRedirect.String()
	defer recoverInto(name, &err)
	if !g.Defines(CallbackRedirect) {
		return "", notDefined(name)
	}
	res, err := g.invoke(ctx, callbackInfo[CallbackRedirect].lane, name, name, nil, func(v *vm) Object {
		v.staged.redirect = a
		return &v.staged.redirect
	}, objectArgs, redirectResult)
	if err != nil {
		return "", err
	}
	return res.(string), nil
}

// redirectResult checks what redirect returned: a string.
func redirectResult(v *vm, name string, val goja.Value) (any, error) {
	if s, ok := val.Export().(string); ok && !isObject(val) {
		return s, nil
	}
	return nil, invalidResult(name, "a string", v.typeOf(val))
}
