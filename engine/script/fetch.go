package script

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/dop251/goja"
)

// FetchOptions configure the fetch global.
type FetchOptions struct {
	// Allow lists the hosts fetch may reach: "api.example.com" (any port),
	// "api.example.com:8443" (that port only) or "*.example.com" (any subdomain). Empty:
	// every fetch is refused. Redirects are followed only to allowed hosts.
	Allow []string
	// Timeout bounds one fetch, from the request to the last byte of the body; the
	// callback's own deadline bounds it too. 0 means 5 seconds.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; a larger body fails the fetch. 0 means 1 MiB.
	MaxResponseBytes int64
	// Transport sends the requests; nil means a dedicated http.Transport with the usual
	// timeouts (never http.DefaultTransport, whose settings other code may change).
	Transport http.RoundTripper
}

const (
	defaultFetchTimeout  = 5 * time.Second
	defaultFetchMaxBytes = 1 << 20
	fetchMaxRedirects    = 5
	fetchMaxRequestBytes = 1 << 20
)

// fetcher is the Go side of fetch, shared by every runtime of a generation.
type fetcher struct {
	allow    []string
	timeout  time.Duration
	maxBytes int64
	client   *http.Client
}

func newFetcher(o FetchOptions) *fetcher {
	f := &fetcher{timeout: o.Timeout, maxBytes: o.MaxResponseBytes}
	for _, h := range o.Allow {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			f.allow = append(f.allow, h)
		}
	}
	if f.timeout <= 0 {
		f.timeout = defaultFetchTimeout
	}
	if f.maxBytes <= 0 {
		f.maxBytes = defaultFetchMaxBytes
	}
	tr := o.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}
	}
	f.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= fetchMaxRedirects {
				return fmt.Errorf("more than %d redirects", fetchMaxRedirects)
			}
			if !f.allowed(req.URL) {
				return fmt.Errorf("redirect to host %q, which is not in script.fetch.allow", req.URL.Host)
			}
			return nil
		},
	}
	return f
}

// allowed matches a URL's host (and port) against the allow-list.
func (f *fetcher) allowed(u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, a := range f.allow {
		ah, ap := a, ""
		if h, p, err := net.SplitHostPort(a); err == nil {
			ah, ap = h, p
		}
		if ap != "" && ap != port {
			continue
		}
		if ah == host || (strings.HasPrefix(ah, "*.") && strings.HasSuffix(host, ah[1:])) {
			return true
		}
	}
	return false
}

// fetchResult is what the request goroutine hands back to the runtime goroutine.
type fetchResult struct {
	status     int
	statusText string
	url        string
	header     http.Header
	body       []byte
}

// fetch implements the global fetch(input, init): a promise of a Response. The request
// runs on its own goroutine; the runtime waits on the call's event loop, so several
// fetches in one callback run at the same time.
func (v *vm) fetch(fc goja.FunctionCall) goja.Value {
	c := v.call
	if c == nil {
		v.throw("Error", "fetch can only run inside a callback")
	}
	f := v.gen.fetch
	p, resolve, reject := v.rt.NewPromise()
	req, err := v.fetchRequest(fc.Argument(0), fc.Argument(1))
	if err == nil && !f.allowed(req.URL) {
		err = fmt.Errorf("fetch: host %q is not in script.fetch.allow", req.URL.Host)
	}
	if err != nil {
		_ = reject(v.newError("TypeError", err.Error()))
		return v.rt.ToValue(p)
	}
	settle := c.async().start()
	ctx := c.context()
	go func() {
		res, err := f.do(ctx, req)
		settle(func() {
			if err != nil {
				_ = reject(v.newError("TypeError", err.Error()))
				return
			}
			_ = resolve(v.newResponse(res))
		})
	}()
	return v.rt.ToValue(p)
}

// fetchRequest reads fetch's arguments: a URL string and {method, headers, body}.
func (v *vm) fetchRequest(input, init goja.Value) (*http.Request, error) {
	if isNullish(input) {
		return nil, errors.New("fetch: a URL is required")
	}
	raw := input.String()
	if o, ok := input.(*goja.Object); ok && !isNullish(o.Get("url")) {
		raw = o.Get("url").String() // a Request-like or URL-like object
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fetch: %q is not an absolute http(s) URL", raw)
	}
	method := http.MethodGet
	header := http.Header{}
	var body string
	if o, ok := init.(*goja.Object); ok {
		if m := stringProp(o, "method"); m != "" {
			method = strings.ToUpper(m)
		}
		if h, ok := o.Get("headers").(*goja.Object); ok {
			for _, k := range h.Keys() {
				header.Set(k, h.Get(k).String())
			}
		}
		if b := o.Get("body"); !isNullish(b) {
			body = b.String()
			if len(body) > fetchMaxRequestBytes {
				return nil, fmt.Errorf("fetch: the request body is larger than %d bytes", fetchMaxRequestBytes)
			}
		}
	}
	req, err := http.NewRequest(method, u.String(), strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	req.Header = header
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	return req, nil
}

// do sends the request under the fetch timeout (inside the callback's deadline) and reads
// the body up to the size cap.
func (f *fetcher) do(ctx context.Context, req *http.Request) (*fetchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resp, err := f.client.Do(req.WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetch %s: timed out: %w", req.URL.Redacted(), ctx.Err())
		}
		return nil, fmt.Errorf("fetch %s: %w", req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: read body: %w", req.URL.Redacted(), err)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, fmt.Errorf("fetch %s: the response body is larger than %d bytes (script.fetch.max_response_bytes)", req.URL.Redacted(), f.maxBytes)
	}
	return &fetchResult{
		status: resp.StatusCode, statusText: strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode))),
		url: resp.Request.URL.String(), header: resp.Header, body: body,
	}, nil
}

// newResponse builds the Response object: status, statusText, ok, url, headers, and
// text()/json() returning promises as the web API does (the body is already read).
func (v *vm) newResponse(res *fetchResult) *goja.Object {
	rt := v.rt
	o := rt.NewObject()
	_ = o.Set("status", res.status)
	_ = o.Set("statusText", res.statusText)
	_ = o.Set("ok", res.status >= 200 && res.status < 300)
	_ = o.Set("url", res.url)
	_ = o.Set("headers", v.newHeaders(res.header))
	used := false
	take := func() (string, bool) {
		if used {
			return "", false
		}
		used = true
		return string(res.body), true
	}
	_ = o.Set("text", func() goja.Value {
		p, resolve, reject := rt.NewPromise()
		if s, ok := take(); ok {
			_ = resolve(rt.ToValue(s))
		} else {
			_ = reject(v.newError("TypeError", "body has already been read"))
		}
		return rt.ToValue(p)
	})
	_ = o.Set("json", func() goja.Value {
		p, resolve, reject := rt.NewPromise()
		s, ok := take()
		if !ok {
			_ = reject(v.newError("TypeError", "body has already been read"))
			return rt.ToValue(p)
		}
		parse, _ := goja.AssertFunction(v.jsonObj.ToObject(rt).Get("parse"))
		val, err := parse(v.jsonObj, rt.ToValue(s))
		if err != nil {
			var ex *goja.Exception
			if errors.As(err, &ex) {
				_ = reject(ex.Value())
			} else {
				_ = reject(v.newError("SyntaxError", err.Error()))
			}
			return rt.ToValue(p)
		}
		_ = resolve(val)
		return rt.ToValue(p)
	})
	_ = o.DefineAccessorProperty("bodyUsed", rt.ToValue(func() bool { return used }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	return o
}

// newHeaders is a read-only Headers: get, has, forEach, keys, entries (names lower-cased,
// repeated values joined with ", ").
func (v *vm) newHeaders(h http.Header) *goja.Object {
	rt := v.rt
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, strings.ToLower(k))
	}
	sort.Strings(names)
	o := rt.NewObject()
	_ = o.Set("get", func(name string) goja.Value {
		if vals := h.Values(name); len(vals) > 0 {
			return rt.ToValue(strings.Join(vals, ", "))
		}
		return goja.Null()
	})
	_ = o.Set("has", func(name string) bool { return len(h.Values(name)) > 0 })
	_ = o.Set("forEach", func(fc goja.FunctionCall) goja.Value {
		fn, ok := goja.AssertFunction(fc.Argument(0))
		if !ok {
			v.throw("TypeError", "headers.forEach: the argument must be a function")
		}
		for _, n := range names {
			if _, err := fn(fc.Argument(1), rt.ToValue(strings.Join(h.Values(n), ", ")), rt.ToValue(n), o); err != nil {
				panic(err)
			}
		}
		return goja.Undefined()
	})
	_ = o.Set("keys", func() []any {
		out := make([]any, len(names))
		for i, n := range names {
			out[i] = n
		}
		return out
	})
	_ = o.Set("entries", func() []any {
		out := make([]any, len(names))
		for i, n := range names {
			out[i] = rt.NewArray(n, strings.Join(h.Values(n), ", "))
		}
		return out
	})
	return o
}
