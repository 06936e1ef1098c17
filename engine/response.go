package engine

import (
	"bytes"
	"encoding/json"
	"github.com/callgate/callgate/engine/inspect"
	"net/http"
)

// response is NextAuth's ResponseInternal: what a route decided, before it becomes HTTP.
type response struct {
	status      int // 0 means 200
	redirect    string
	contentType string
	body        []byte
	// noCache adds the headers NextAuth sends on GET /csrf and GET /session.
	noCache bool
	// withoutInitCookies drops the init cookies (GET /providers sends none).
	withoutInitCookies bool
	// cookies are route cookies, written after the init cookies.
	cookies []string
	// header holds extra response headers (Retry-After on 429 and 503).
	header map[string]string
	// scripted is an HTML page that runs the gateway's own script (the factor pages,
	// which drive the browser's WebAuthn API): its CSP allows script and fetch from self.
	scripted bool
}

func jsonResponse(status int, v any) response {
	b, err := marshalJSON(v)
	if err != nil {
		// Only values built by the engine reach here; they always marshal.
		b = []byte(`{}`)
	}
	return response{status: status, contentType: "application/json", body: b}
}

// marshalJSON is JSON.stringify: like json.Marshal, but "&", "<" and ">" stay as they are
// (NextAuth's {"url":"…?error=X&provider=Y"} must read the same byte for byte).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func rawJSONResponse(status int, b []byte) response {
	return response{status: status, contentType: "application/json", body: b}
}

func textResponse(status int, text string) response {
	return response{status: status, contentType: "text/plain; charset=utf-8", body: []byte(text)}
}

func htmlResponse(status int, html []byte) response {
	return response{status: status, contentType: "text/html; charset=utf-8", body: html}
}

func redirectTo(status int, url string) response {
	return response{status: status, redirect: url}
}

// configErrorBody is what NextAuth answers when its configuration assertion fails.
var configErrorBody = map[string]string{"message": "There is a problem with the server configuration. Check the server logs for more information."}

// write turns the internal response into HTTP with NextAuth v4's rules (docs/wire.md §1.4): a redirect
// becomes {"url"} JSON when the body asked with json=true (keeping an internal status such
// as 401), else a 302 that discards the internal status.
func (a *authRequest) write(w http.ResponseWriter, res response) {
	h := w.Header()
	if !res.withoutInitCookies {
		for _, c := range a.setCookies {
			h.Add("Set-Cookie", c)
		}
	}
	for _, c := range res.cookies {
		h.Add("Set-Cookie", c)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	for k, v := range res.header {
		h.Set(k, v)
	}
	if f := inspect.FromContext(a.r.Context()); f != nil {
		inspectAnswer(f, h.Values("Set-Cookie"), res.redirect)
	}
	if res.redirect != "" {
		if a.wantsJSON() {
			b, _ := marshalJSON(map[string]string{"url": res.redirect})
			res = response{status: res.status, contentType: "application/json", body: b}
		} else {
			h.Set("Location", res.redirect)
			w.WriteHeader(http.StatusFound)
			return
		}
	}
	if res.noCache {
		h.Set("Cache-Control", "private, no-cache, no-store")
		h.Set("Pragma", "no-cache")
		h.Set("Expires", "0")
	}
	if res.contentType != "" {
		h.Set("Content-Type", res.contentType)
	}
	if res.contentType == "text/html; charset=utf-8" {
		// No form-action directive: browsers apply it to the redirects that follow a form
		// post, and a sign-in legitimately ends on another route host or at an identity
		// provider. img-src allows the theme's logo.
		csp := "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'"
		if res.scripted {
			csp = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'"
		}
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
	}
	status := res.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(res.body)
}

// jsonString encodes s as a JSON string.
func jsonString(s string) string {
	b, _ := marshalJSON(s)
	return string(b)
}
