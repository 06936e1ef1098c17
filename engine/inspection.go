package engine

import (
	"fmt"
	"strings"

	"github.com/callgate/callgate/engine/inspect"
	"github.com/callgate/callgate/engine/script"
)

// What the engine tells the inspector (engine/inspect), when one is on: a flow per auth
// request, the cookies each answer sets and the redirects the core chose. The callbacks
// join the flow by themselves (the inspector is the script host's Tracer). With the
// inspector off e.inspector is nil, no flow is made and each hook is a nil check.

// Inspector is the inspector the engine tells, or nil when it is off: the proxy in front
// tells the same one.
func (e *Engine) Inspector() *inspect.Inspector { return e.inspector }

// inspectAnswer records the cookies an answer sets (by name and size: a value never
// leaves the core) and where it sends the browser.
func inspectAnswer(f *inspect.Flow, setCookies []string, redirect string) {
	if f == nil {
		return
	}
	for _, c := range setCookies {
		name, rest, _ := strings.Cut(c, "=")
		value, attrs, _ := strings.Cut(rest, ";")
		lower := strings.ToLower(attrs)
		verb := "set"
		if value == "" || strings.Contains(lower, "max-age=0") || strings.Contains(lower, "expires=thu, 01 jan 1970") {
			verb = "cleared"
		}
		detail := map[string]any{"name": name, "bytes": len(c), "valueBytes": len(value)}
		if base, chunk, ok := chunkName(name); ok {
			detail["chunkOf"], detail["chunk"] = base, chunk
		}
		f.Core("cookie", fmt.Sprintf("cookie %s %s (%d bytes)", name, verb, len(c)), detail)
	}
	if redirect != "" {
		f.Core("redirect", "the browser is sent to "+redirect, map[string]any{"url": redirect})
	}
}

// chunkName reads NextAuth's chunked cookie names: "<name>.<n>".
func chunkName(name string) (base, chunk string, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return "", "", false
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return "", "", false
		}
	}
	return name[:i], name[i+1:], true
}

// inspectRedirect records the core's check of a URL the redirect callback chose.
func inspectRedirect(a *authRequest, asked, returned, chosen string, changed bool) {
	f := inspect.FromContext(a.r.Context())
	if f == nil {
		return
	}
	summary := "redirect callback's " + returned + " kept"
	if changed {
		summary = "redirect callback's " + returned + " replaced by " + chosen + " (the core's same-origin check)"
	}
	f.Core("redirect-check", summary, map[string]any{"asked": asked, "callbackReturned": returned, "chosen": chosen, "changedByCore": changed})
}

// inspectSecrets declares the credentials provider's password fields secret in the flow,
// whatever they are called, and what the user typed into them, wherever a script copies
// it, before authorize sees them.
func inspectSecrets(a *authRequest, p script.Provider) {
	f := inspect.FromContext(a.r.Context())
	if f == nil {
		return
	}
	for _, c := range p.Credentials {
		if strings.EqualFold(c.Type, "password") {
			f.Secret(c.Name)
			if typed, ok := stringField(a.body, c.Name); ok {
				f.SecretValues(typed)
			}
		}
	}
}
