package proxy

import (
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/urlpolicy"
)

// newFuzzProxy is a Proxy as New builds it, trusting loopback, with no routes: enough for
// originalRequest, which reads only the options and the headers.
func newFuzzProxy(f *testing.F) *Proxy {
	f.Helper()
	var cfg config.Config
	cfg.Proxy.TrustedProxies = []string{"127.0.0.1"}
	cfg.ApplyDefaults()
	p, err := New(Options{
		Origin:     "https://gw.test",
		SignInURL:  "https://gw.test/api/auth/signin",
		Sessions:   func(*http.Request) (Session, []string, error) { return nil, nil, nil },
		Generation: func() *script.Generation { return nil },
		Gateway:    http.NotFoundHandler(),
		Proxy:      cfg.Proxy, Identity: cfg.Identity,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	return p
}

// FuzzOriginalRequest: whatever a trusted proxy's forward-auth headers say, originalRequest
// never panics, and what it accepts is one canonical request: a canonical path (what routes
// match and what the app is redirected to), a canonical host, http or https, and never the
// reading of one of two URI headers that disagree (one of them came from the client).
//
// The seed corpus is in testdata/fuzz/FuzzOriginalRequest/ and runs with every go test.
func FuzzOriginalRequest(f *testing.F) {
	for _, s := range [][5]string{
		// X-Forwarded-Uri, X-Original-URI, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Method
		{"/app/x?y=1", "", "wiki.test", "https", "GET"},
		{"", "/app/x", "", "", ""},
		{"/public", "/admin", "wiki.test", "https", "GET"},
		{"/admin", "/admin", "Wiki.Test.", "http", "POST"},
		{"/public/%2e%2e/admin", "", "wiki.test:8443", "https", "HEAD"},
		{"/public/..;/admin", "", "wiki.test", "https", "GET"},
		{"/a%2Fb", "", "wiki.test", "https", "GET"},
		{"//admin//x", "", "wiki.test", "https", "GET"},
		{"/admin/x//../../public", "", "wiki.test", "https", "GET"},
		{"/a?x=\n", "", "wiki.test", "https", "GET"},
		{"/a#frag", "", "wiki.test", "https", "GET"},
		{"http://evil.test/admin", "", "wiki.test", "https", "GET"},
		{"/x", "", "wiki.test..", "https", "GET"},
		{"/x", "", "[::1]:3000", "ftp", "GET"},
		{"/x", "", "evil.test/x", "HTTPS", "get"},
		{"/x", "", "", "", "GET\r\nX: y"},
		{"/caf%c3%a9", "", "wiki.test:0", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	p := newFuzzProxy(f)
	fuzzURL := &url.URL{Path: NginxAuthPath}
	fuzzHeaders := [...]string{"X-Forwarded-Uri", "X-Original-Uri", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Method"}
	f.Fuzz(func(t *testing.T, fwdURI, origURI, fwdHost, fwdProto, fwdMethod string) {
		// The auth subrequest as net/http hands it over (built by hand: parsing a URL per
		// run would only slow the fuzzer). Only the headers vary; an empty string is an
		// absent header.
		r := &http.Request{Method: http.MethodGet, URL: fuzzURL, Host: "gw.test", RemoteAddr: "127.0.0.1:40000",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: make(http.Header, 5)}
		for i, v := range [...]string{fwdURI, origURI, fwdHost, fwdProto, fwdMethod} {
			if v != "" {
				r.Header[fuzzHeaders[i]] = []string{v}
			}
		}
		o, err := p.originalRequest(r)
		if err != nil {
			return
		}
		if fwdURI != "" && origURI != "" && fwdURI != origURI {
			t.Fatalf("X-Forwarded-Uri %q and X-Original-URI %q disagree, but originalRequest read %+v", fwdURI, origURI, o)
		}
		if canon, err := urlpolicy.CanonicalPath(o.path); err != nil || canon != o.path {
			t.Fatalf("path %q is not canonical: CanonicalPath gives %q, %v (request %+v)", o.path, canon, err, o)
		}
		if h, err := urlpolicy.CanonicalHost(o.host.String()); err != nil || h != o.host {
			t.Fatalf("host %q is not canonical: CanonicalHost gives %q, %v (X-Forwarded-Host %q)", o.host, h, err, fwdHost)
		}
		if o.scheme != "http" && o.scheme != "https" {
			t.Fatalf("scheme %q (X-Forwarded-Proto %q)", o.scheme, fwdProto)
		}
		if o.method == "" {
			t.Fatalf("empty method (X-Forwarded-Method %q)", fwdMethod)
		}
		uri := fwdURI
		if uri == "" {
			uri = origURI
		}
		if path, q, err := urlpolicy.SplitTarget(uri); err != nil || path != o.path || q != o.rawQuery {
			t.Fatalf("URI %q: originalRequest read path %q query %q, SplitTarget gives %q %q %v", uri, o.path, o.rawQuery, path, q, err)
		}
	})
}
