package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/urlpolicy"
)

// The attack suite: requests an attacker would send to reach a protected upstream without a
// session, through the gateway's own listener and through real nginx running the documented
// auth_request block. The property checked is the one that matters, whatever the gateway
// answers: the app receives no request without a session that any common way of reading a
// path (Node's URL parser, a case-insensitive router, Tomcat's ";" parameters, IIS's
// trailing dots and backslashes) places on a protected path.

// recordingUpstream is an app that remembers every request target it was sent, raw, with
// the headers.
type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	target string
	host   string
	header http.Header
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{target: r.RequestURI, host: r.Host, header: r.Header.Clone()})
		u.mu.Unlock()
		fmt.Fprint(w, "app")
	}))
	t.Cleanup(u.Close)
	return u
}

// take returns and forgets what the app received since the last call.
func (u *recordingUpstream) take() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.reqs
	u.reqs = nil
	return out
}

// appReadings are the paths different apps read from a request target: decoded and
// dot-resolved as Node's URL parser and most frameworks do, plus the readings of servers
// that also treat "\" as "/", drop ";params" from segments, or drop trailing dots.
func appReadings(target string) []string {
	p, _, _ := strings.Cut(target, "?")
	variants := []string{p, strings.ReplaceAll(p, "\\", "/"), strings.ReplaceAll(p, "%5C", "/"), strings.ReplaceAll(p, "%5c", "/")}
	var out []string
	for _, v := range variants {
		dec, err := url.PathUnescape(strings.ReplaceAll(strings.ReplaceAll(v, "%2F", "/"), "%2f", "/"))
		if err != nil {
			dec = v
		}
		dec = strings.ReplaceAll(dec, "\\", "/")
		out = append(out, path.Clean("/"+dec))
		// Tomcat and Spring: ";params" dropped from every segment.
		segs := strings.Split(dec, "/")
		for i, s := range segs {
			s, _, _ = strings.Cut(s, ";")
			segs[i] = strings.TrimRight(s, ". ") // IIS: trailing dots and spaces dropped
		}
		out = append(out, path.Clean("/"+strings.Join(segs, "/")))
	}
	return out
}

// underPrefix is a segment-wise prefix check, case-folded when fold is set.
func underPrefix(p, prefix string, fold bool) bool {
	if fold {
		p, prefix = strings.ToLower(p), strings.ToLower(prefix)
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// rawRequest sends one request with the target exactly as given (Go's client would
// normalise it) and returns the response.
func rawRequest(t *testing.T, addr, method, target, host string, header http.Header) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	for name, vals := range header {
		for _, v := range vals {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("write request: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: read response: %v", method, target, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// Targets that try to leave a public prefix for a protected path (shape "public inside
// protected": / protected, /public public).
var escapePublic = []string{
	"/public/../secret", "/public/%2e%2e/secret", "/public/%2E%2E/secret", "/public/.%2e/secret",
	"/public/%2e./secret", "/public/..%2fsecret", "/public/..%2Fsecret", "/public/%2e%2e%2fsecret",
	"/public/..%5csecret", "/public/..\\secret", "/public\\..\\secret", "/public/..;/secret",
	"/public;/../secret", "/public/..;x=1/secret", "/public/%c0%ae%c0%ae/secret", "/public/%e0%80%ae%e0%80%ae/secret",
	"/public/..%00/secret", "/public/%2e%2e%00/secret", "/PUBLIC/x", "/Public/../secret", "//public/../secret",
	"/public/./../secret", "/public//../../secret", "/public/.../secret", "/public/..%09/secret",
	"/public/x/../../secret", "/public%2f../secret", "/public%2F%2E%2E%2Fsecret", "/public/%252e%252e/secret",
	"/public/..../secret", "/public/..%20/secret", "/public/%2e%2e;/secret", "/%70ublic/../secret",
}

// Targets that try to reach a protected prefix from a public app (shape "protected inside
// public": / public, /admin protected).
var reachAdmin = []string{
	"/admin", "/ADMIN", "/Admin/x", "/%61dmin", "/%41DMIN", "/admin.", "/admin./x", "/admin;x", "/admin;jsessionid=1/x",
	"/admin%3b", "/admin%3Bx/y", "/x/../admin", "/x/%2e%2e/admin", "//admin", "///admin/x", "/./admin", "/%2e/admin",
	"/admin/", "/admin%2f", "/admin%2fx", "/admin%00", "/admin\\x", "/admin%5cx", "/admin%20", "/admin%09", "/admin..",
	"/adm%69n", "/admin%2e", "/admin%2e%2e", "/x/..%2fadmin", "/.%2e/admin", "/%2e%2e/admin", "/a/b/../../admin",
	"/admin%c0%af", "/%c0%ae/admin", "/admin ", "/admin/.", "/admin/..;/admin",
}

// attackGateway starts a gateway whose routes have the given shape, in front of app.
// The test client and nginx share 127.0.0.1, which the gateway trusts as a proxy unless
// the routes are prefixed with untrusted.
func attackGateway(t *testing.T, app *recordingUpstream, routes string, extra ...string) *testGateway {
	t.Helper()
	trusted := "[127.0.0.1]"
	if r, ok := strings.CutPrefix(routes, untrusted); ok {
		routes, trusted = r, "[10.0.0.0/8]"
	}
	yaml := "proxy:\n  trusted_proxies: " + trusted + "\nroutes:\n" + strings.ReplaceAll(routes, "UPSTREAM", app.URL)
	args := []string{"--config", writeConfig(t, yaml)}
	return startGateway(t, gatewayOptions{ScriptsDir: filepath.Join("testdata", "proxy-scripts"), Args: append(args, extra...)})
}

const (
	untrusted         = "untrusted\n"
	shapePublicInside = `  - {name: app, path: /, upstream: UPSTREAM}
  - {name: pub, path: /public, upstream: UPSTREAM, public: true}
`
	shapeProtectedInside = `  - {name: site, path: /, upstream: UPSTREAM, public: true}
  - {name: admin, path: /admin, upstream: UPSTREAM}
`
	shapeHosts = `  - {name: wiki, host: wiki.test, path: /, upstream: UPSTREAM}
  - {name: site, path: /, upstream: UPSTREAM, public: true}
`
)

// checkNoProtectedRead fails when the app received a request some app would read as
// protected: outside /public (shape public-inside), or under /admin (protected-inside).
func checkNoProtectedRead(t *testing.T, via, target string, got []recorded, protected func(string) bool) {
	t.Helper()
	for _, r := range got {
		p, _, _ := strings.Cut(r.target, "?")
		if canon, err := urlpolicy.CanonicalPath(p); via == "proxy" && (err != nil || canon != p) {
			t.Errorf("%s: %q reached the app as %q, which is not canonical (%q, %v)", via, target, r.target, canon, err)
		}
		for _, reading := range appReadings(r.target) {
			if protected(reading) {
				t.Errorf("%s: %q reached the app without a session as %q, which an app reads as %q", via, target, r.target, reading)
				break
			}
		}
	}
}

func notPublic(p string) bool  { return !underPrefix(p, "/public", false) }
func underAdmin(p string) bool { return underPrefix(p, "/admin", true) }

// routeShapes are the two ways a gateway mixes public and protected paths, each with the
// targets that attack it and what counts as protected.
var routeShapes = []struct {
	name, routes string
	targets      []string
	protected    func(string) bool
}{
	{"public prefix inside a protected app", shapePublicInside, escapePublic, notPublic},
	{"protected prefix inside a public app", shapeProtectedInside, reachAdmin, underAdmin},
}

// checkNoForgedHeader fails when the one request the app received carries a header the
// client forged, under its name or spelt with underscores, with the client's value.
func checkNoForgedHeader(t *testing.T, via string, forged http.Header, got []recorded) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%s: the public page reached the app %d times, want 1", via, len(got))
	}
	for name, vals := range forged {
		for recvName, recv := range got[0].header {
			if strings.EqualFold(strings.ReplaceAll(recvName, "_", "-"), strings.ReplaceAll(name, "_", "-")) && strings.Join(recv, ",") == vals[0] {
				t.Errorf("%s: the app received the client's %s: %q", via, name, recv)
			}
		}
	}
}

func TestAttackPaths(t *testing.T) {
	html := http.Header{"Accept": {"text/html"}}
	for _, shape := range routeShapes {
		t.Run(shape.name, func(t *testing.T) {
			app := newRecordingUpstream(t)
			gw := attackGateway(t, app, shape.routes)
			addr := strings.TrimPrefix(gw.URL, "http://")
			t.Run("reverse proxy", func(t *testing.T) {
				for _, target := range shape.targets {
					res := rawRequest(t, addr, http.MethodGet, target, addr, html)
					checkNoProtectedRead(t, "proxy", target, app.take(), shape.protected)
					if res.StatusCode >= 500 {
						t.Errorf("proxy: %q answered %d, want a refusal the client caused (4xx) or a redirect", target, res.StatusCode)
					}
				}
			})
			t.Run("forward-auth from a trusted proxy", func(t *testing.T) {
				for _, target := range shape.targets {
					h := http.Header{"Accept": {"text/html"}, "X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {addr}, "X-Forwarded-Uri": {target}}
					res := rawRequest(t, addr, http.MethodGet, "/_callgate/forward-auth", addr, h)
					if res.StatusCode != http.StatusOK {
						continue
					}
					// 200: the proxy in front would forward target as it is.
					for _, reading := range appReadings(target) {
						if shape.protected(reading) {
							t.Errorf("forward-auth allowed %q without a session; an app reads it as %q", target, reading)
							break
						}
					}
				}
			})
		})
	}
}

func TestAttackHosts(t *testing.T) {
	app := newRecordingUpstream(t)
	gw := attackGateway(t, app, shapeHosts)
	addr := strings.TrimPrefix(gw.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	for _, host := range []string{"wiki.test", "wiki.test.", "WIKI.TEST", "Wiki.Test.", "wiki.test:" + port, "wiki.test.:" + port} {
		res := rawRequest(t, addr, http.MethodGet, "/page", host, http.Header{"Accept": {"text/html"}})
		if got := app.take(); len(got) > 0 {
			t.Errorf("Host %q: the protected wiki route's app was reached without a session (%d)", host, res.StatusCode)
		}
		if res.StatusCode != http.StatusFound {
			t.Errorf("Host %q: got %d, want 302 to sign in", host, res.StatusCode)
		}
	}
	for _, host := range []string{"wiki..test", "wiki.test:0", "wiki test", "wiki.test:99999"} {
		if res := rawRequest(t, addr, http.MethodGet, "/page", host, nil); res.StatusCode != http.StatusBadRequest {
			t.Errorf("Host %q: got %d, want 400", host, res.StatusCode)
		}
		app.take()
	}
}

// TestAttackForwardAuthHeaders: a client that adds its own description of the request
// beside the trusted proxy's.
func TestAttackForwardAuthHeaders(t *testing.T) {
	app := newRecordingUpstream(t)
	gw := attackGateway(t, app, shapePublicInside)
	addr := strings.TrimPrefix(gw.URL, "http://")
	base := func(kv ...string) http.Header {
		h := http.Header{"Accept": {"text/html"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {addr}}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"X-Original-URI beside a client's X-Forwarded-Uri", base("X-Original-URI", "/secret", "X-Forwarded-Uri", "/public/x"), 400},
		{"X-Forwarded-Uri beside a client's X-Original-URI", base("X-Forwarded-Uri", "/secret", "X-Original-URI", "/public/x"), 400},
		{"X-Forwarded-Uri twice", base("X-Forwarded-Uri", "/public/x", "X-Forwarded-Uri", "/secret"), 400},
		{"X-Forwarded-Host twice", base("X-Forwarded-Uri", "/public/x", "X-Forwarded-Host", "evil.test"), 400},
		{"methods disagree", base("X-Forwarded-Uri", "/public/x", "X-Forwarded-Method", "GET", "X-Original-Method", "POST"), 400},
		{"no URI at all", base(), 400},
		{"a non-canonical URI goes to its canonical form", base("X-Forwarded-Uri", "/public/../secret"), 302},
		{"Forwarded is not read", base("X-Forwarded-Uri", "/secret", "Forwarded", "host=x;proto=https;for=1.2.3.4"), 302},
		{"both agree", base("X-Forwarded-Uri", "/public/x", "X-Original-URI", "/public/x"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := rawRequest(t, addr, http.MethodGet, "/_callgate/forward-auth", addr, tc.header)
			if res.StatusCode != tc.want {
				t.Errorf("got %d, want %d", res.StatusCode, tc.want)
			}
			if tc.want == 302 && strings.Contains(res.Header.Get("Location"), "/public") {
				t.Errorf("Location %q: sent to the public path", res.Header.Get("Location"))
			}
		})
	}
}

// TestAttackRedirects: URLs an authorized callback may return that a browser would follow
// off-site. The test script returns request.query.to on /go.
func TestAttackRedirects(t *testing.T) {
	app := newRecordingUpstream(t)
	gw := attackGateway(t, app, shapePublicInside)
	addr := strings.TrimPrefix(gw.URL, "http://")
	trusted := func(uri string) http.Header {
		return http.Header{"Accept": {"text/html"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {addr}, "X-Forwarded-Uri": {uri}}
	}
	for _, to := range []string{"/\t/evil.com", "/\n/evil.com", "/\r\n/evil.com", "//evil.com", "/\\evil.com", "\\/evil.com",
		"https://evil.com", "https:evil.com", "http://" + addr + "@evil.com/", " //evil.com", "/\x00/evil.com", "/%09/evil.com", "javascript:alert(1)"} {
		target := "/go?to=" + url.QueryEscape(to)
		for _, mode := range []struct {
			name, path string
			header     http.Header
			location   string
		}{
			{"proxy", target, http.Header{"Accept": {"text/html"}}, "Location"},
			{"nginx endpoint", "/_callgate/auth", trusted(target), "X-Callgate-Location"},
			{"traefik endpoint", "/_callgate/forward-auth", trusted(target), "Location"},
		} {
			res := rawRequest(t, addr, http.MethodGet, mode.path, addr, mode.header)
			loc := res.Header.Get(mode.location)
			if loc == "" {
				continue
			}
			u, err := url.Parse(gw.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			// Resolve as a browser would, after dropping what browsers drop.
			cleaned := strings.Map(func(r rune) rune {
				if r == '\t' || r == '\n' || r == '\r' {
					return -1
				}
				if r == '\\' {
					return '/'
				}
				return r
			}, strings.TrimSpace(loc))
			dest, err := u.Parse(cleaned)
			if err != nil || !strings.EqualFold(dest.Host, addr) && dest.Host != "" {
				t.Errorf("%s: authorized returned %q and the gateway sent %s %q (leads to %v)", mode.name, to, mode.location, loc, dest)
			}
		}
		app.take()
	}
}

// TestAttackIdentityHeaders: headers a client forges to be someone else, or to make the app
// read another URL, never reach the app as sent.
func TestAttackIdentityHeaders(t *testing.T) {
	app := newRecordingUpstream(t)
	gw := attackGateway(t, app, untrusted+shapePublicInside)
	addr := strings.TrimPrefix(gw.URL, "http://")
	forged := http.Header{
		"X-Callgate-User": {"admin"}, "X-Callgate-Name": {"Admin"}, "X-Callgate-Email": {"admin@example.com"},
		"X-Callgate-Role": {"admin"}, "X_Callgate_User": {"admin"}, "X-Callgate-Assertion": {"forged"},
		"Remote-User": {"admin"}, "X-Forwarded-User": {"admin"}, "X-Auth-Request-User": {"admin"},
		"X-Original-Url": {"/secret"}, "X-Rewrite-Url": {"/secret"}, "X-Original-Uri": {"/secret"}, "X-Forwarded-Uri": {"/secret"},
		"X-Forwarded-Prefix": {"/secret"}, "X-Real-Ip": {"6.6.6.6"}, "X-Forwarded-Method": {"DELETE"},
	}
	// A header name the authorized callback returns (X-Role, on /extra) that no strip
	// prefix covers: once returned, a client's copy never reaches the app either.
	if res := get(t, signedInClient(t, gw), gw.URL+"/extra", nil); res.Status != http.StatusOK {
		t.Fatalf("signed-in GET /extra: got %d", res.Status)
	}
	if got := app.take(); len(got) != 1 || got[0].header.Get("X-Role") == "" {
		t.Fatalf("signed-in GET /extra: the app got %d requests, want one with X-Role", len(got))
	}
	forged["X-Role"] = []string{"superuser"}
	forged["X_Role"] = []string{"superuser"}
	rawRequest(t, addr, http.MethodGet, "/public/page", addr, forged)
	checkNoForgedHeader(t, "proxy", forged, app.take())
}

// TestAttackThroughNginx runs the path and header attacks through real nginx with the
// documented auth_request block, for both route shapes.
func TestAttackThroughNginx(t *testing.T) {
	requireTool(t, "nginx", "/usr/sbin/nginx")
	for _, shape := range routeShapes {
		t.Run(shape.name, func(t *testing.T) {
			app := newRecordingUpstream(t)
			nginxAddr := freeLoopbackAddr(t)
			gw := attackGateway(t, app, shape.routes, "--url", "http://"+nginxAddr)
			startNginx(t, nginxAddr, strings.TrimPrefix(gw.URL, "http://"), strings.TrimPrefix(app.URL, "http://"))
			for _, target := range shape.targets {
				for _, extra := range []http.Header{
					{"Accept": {"text/html"}},
					// A client's own description of the request, beside the block's.
					{"Accept": {"text/html"}, "X-Original-URI": {"/public/x"}, "X-Forwarded-Uri": {"/public/x"}, "X-Original-Method": {"GET"}},
				} {
					rawRequest(t, nginxAddr, http.MethodGet, target, nginxAddr, extra)
					checkNoProtectedRead(t, "nginx", target, app.take(), shape.protected)
				}
			}
		})
	}
	t.Run("forged identity headers", func(t *testing.T) {
		app := newRecordingUpstream(t)
		nginxAddr := freeLoopbackAddr(t)
		gw := attackGateway(t, app, shapePublicInside, "--url", "http://"+nginxAddr)
		startNginx(t, nginxAddr, strings.TrimPrefix(gw.URL, "http://"), strings.TrimPrefix(app.URL, "http://"))
		forged := http.Header{
			"X-Callgate-User": {"admin"}, "X-Callgate-Name": {"Admin"}, "X-Callgate-Email": {"admin@example.com"},
			"X-Callgate-Assertion": {"forged"}, "X_Callgate_User": {"admin"},
			"X-Original-Url": {"/secret"}, "X-Rewrite-Url": {"/secret"}, "X-Original-Uri": {"/secret"}, "X-Forwarded-Uri": {"/secret"},
			"X-Forwarded-Prefix": {"/secret"}, "X-Real-Ip": {"6.6.6.6"},
		}
		rawRequest(t, nginxAddr, http.MethodGet, "/public/page", nginxAddr, forged)
		checkNoForgedHeader(t, "nginx", forged, app.take())
	})
}
