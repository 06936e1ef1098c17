package proxy

import (
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/callgate/callgate/engine/script"
)

// view is the request as the authorized callback sees it: for a proxied request the request
// itself, for forward-auth the original request the proxy in front describes.
//
// The original URL and the client's address are worked out only when something reads them
// (the script, or a refusal that sends the browser to sign in): most requests are allowed
// by a callback that looks at the path and the token alone.
type view struct {
	method, path, rawQuery string
	header                 http.Header
	route                  string
	auth                   *authInfo // how the request authenticated; nil when it did not

	url, ip string // when set, or else
	r       *http.Request
	rt      *route // with r: the proxied request's URL on this route
	p       *Proxy // with r: the client address and the URL
}

// requestURL is the absolute URL the user asked for.
func (v *view) requestURL() string {
	if v.url == "" && v.r != nil {
		v.url = v.p.requestURL(v.r, v.rt)
	}
	return v.url
}

// clientIP is the client's address, behind trusted proxies the one they name.
func (v *view) clientIP() string {
	if v.ip == "" && v.r != nil {
		v.ip = v.p.addrs.ClientIP(v.r)
	}
	return v.ip
}

// Get makes v the callback's read-only `request` object (a script.Object): each property is
// built when the script reads it, so a callback that looks at the path alone never pays
// for the headers or the query.
func (v *view) Get(key string) (any, bool) {
	switch key {
	case "method":
		return v.method, true
	case "url":
		return v.requestURL(), true
	case "path":
		return v.path, true
	case "ip":
		return v.clientIP(), true
	case "route":
		return v.route, true
	case "auth":
		return v.auth.object(), true
	case "headers":
		return headerObject(v.header), true
	case "query":
		// Values as strings, the first when a name repeats.
		query := map[string]any{}
		if v.rawQuery != "" {
			if q, err := url.ParseQuery(v.rawQuery); err == nil {
				for k, vals := range q {
					query[k] = vals[0]
				}
			}
		}
		return query, true
	}
	return nil, false
}

// Keys implements script.Object.
func (v *view) Keys() []string {
	return []string{"auth", "headers", "ip", "method", "path", "query", "route", "url"}
}

// headerObject is request.headers: names lower-cased as Node gives them, repeated fields
// joined with ", ". A read looks up one header; nothing is copied until the script lists them.
type headerObject http.Header

func (h headerObject) Get(name string) (any, bool) {
	if name != strings.ToLower(name) {
		// Node's headers object has lower-case names only: headers["Accept"] is undefined.
		return nil, false
	}
	vals, ok := h[textproto.CanonicalMIMEHeaderKey(name)]
	if !ok {
		return nil, false
	}
	if len(vals) == 1 {
		return vals[0], true
	}
	return strings.Join(vals, ", "), true
}

// Keys lists the header names sorted: a Go header map keeps no arrival order, and the
// script's Object.keys must be the same from call to call.
func (h headerObject) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, strings.ToLower(k))
	}
	slices.Sort(keys)
	return keys
}

// authorizedArg is the authorized callback's argument, { token, auth, request }.
type authorizedArg struct {
	token, auth script.Object // nil when not signed in
	// request is a copy: a pointer to the caller's view would move every request's view
	// to the heap, called or not.
	request view
}

func (a *authorizedArg) Get(key string) (any, bool) {
	switch key {
	case "token":
		return objectOrNull(a.token), true
	case "auth":
		return objectOrNull(a.auth), true
	case "request":
		return &a.request, true
	}
	return nil, false
}

func (a *authorizedArg) Keys() []string { return []string{"auth", "request", "token"} }

// objectOrNull keeps a missing object null in the script, not an Object holding nil.
func objectOrNull(o script.Object) any {
	if o == nil {
		return nil
	}
	return o
}
