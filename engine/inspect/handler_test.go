package inspect

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
)

const testToken = "an-admin-credential-long-enough"

func get(t *testing.T, srv *httptest.Server, path, host string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestAccess(t *testing.T) {
	var off *Inspector
	on := New(Options{})
	cases := []struct {
		name   string
		in     *Inspector
		acc    Access
		path   string
		host   string
		hdr    map[string]string
		status int
	}{
		{"off", off, Access{}, PagePath, "localhost", nil, http.StatusNotFound},
		{"off, even with a credential", off, Access{Token: testToken}, FlowsPath, "localhost", map[string]string{"Authorization": "Bearer " + testToken}, http.StatusNotFound},
		{"loopback client asking for localhost", on, Access{}, PagePath, "localhost:3000", nil, http.StatusOK},
		{"loopback client asking for 127.0.0.1", on, Access{}, FlowsPath, "127.0.0.1:3000", nil, http.StatusOK},
		{"loopback client asking for a public name (a proxy in front, DNS rebinding)", on, Access{}, PagePath, "auth.example.com", nil, http.StatusUnauthorized},
		{"the credential, any host", on, Access{Token: testToken}, FlowsPath, "auth.example.com", map[string]string{"Authorization": "Bearer " + testToken}, http.StatusOK},
		{"a wrong credential", on, Access{Token: testToken}, FlowsPath, "auth.example.com", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"the credential's cookie", on, Access{Token: testToken}, AppJSPath, "auth.example.com", map[string]string{"Cookie": cookieName + "=" + testToken}, http.StatusOK},
		{"the admin listener", on, Access{Admin: true}, FlowsPath, "auth.example.com", nil, http.StatusOK},
		{"an unknown path under the inspector", on, Access{}, PagePath + "/nope", "localhost", nil, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.in.Handler(tc.acc))
			defer srv.Close()
			res := get(t, srv, tc.path, tc.host, tc.hdr)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("GET %s (Host %s): %d %s, want %d", tc.path, tc.host, res.StatusCode, body, tc.status)
			}
			if tc.status == http.StatusUnauthorized && !strings.Contains(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Error("a refusal without a Bearer challenge")
			}
			if tc.in == nil && !strings.Contains(string(body), "--dev") {
				t.Errorf("the off answer %q does not say how to turn the inspector on", body)
			}
		})
	}
}

// A client that is not on this machine needs the credential whatever Host it sends. The
// peer address is what the listener saw, so this one is made by hand.
func TestNonLoopbackPeerNeedsTheCredential(t *testing.T) {
	h := New(Options{}).Handler(Access{Token: testToken})
	for _, tc := range []struct {
		auth   string
		status int
	}{{"", http.StatusUnauthorized}, {"Bearer " + testToken, http.StatusOK}} {
		req := httptest.NewRequest("GET", "http://localhost"+FlowsPath, nil)
		req.RemoteAddr = "203.0.113.7:41000"
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("peer 203.0.113.7, Host localhost, Authorization %q: %d, want %d", tc.auth, rec.Code, tc.status)
		}
	}
}

func TestTokenInTheAddressBecomesACookie(t *testing.T) {
	srv := httptest.NewServer(New(Options{}).Handler(Access{Token: testToken, SecureCookie: true}))
	defer srv.Close()
	res := get(t, srv, PagePath+"?token="+testToken, "auth.example.com", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != PagePath {
		t.Fatalf("opening the page with its token: %d to %q, want 303 to %s", res.StatusCode, res.Header.Get("Location"), PagePath)
	}
	c := res.Header.Get("Set-Cookie")
	for _, attr := range []string{cookieName + "=", "Path=" + PagePath, "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(c, attr) {
			t.Errorf("credential cookie %q lacks %s", c, attr)
		}
	}
	if res := get(t, srv, PagePath+"?token=wrong", "auth.example.com", nil); res.StatusCode != http.StatusUnauthorized || res.Header.Get("Set-Cookie") != "" {
		t.Errorf("a wrong token in the address: %d, cookie %q", res.StatusCode, res.Header.Get("Set-Cookie"))
	}
}

func TestPageIsLockedDown(t *testing.T) {
	srv := httptest.NewServer(New(Options{}).Handler(Access{}))
	defer srv.Close()
	res := get(t, srv, PagePath, "localhost", nil)
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("page headers: CSP %q, X-Frame-Options %q", csp, res.Header.Get("X-Frame-Options"))
	}
	js, _ := assets.ReadFile("assets/inspector.js")
	if strings.Contains(string(js), "innerHTML") {
		t.Error("the page's script writes HTML from data")
	}
}

func TestEventStreamReplaysThenFollows(t *testing.T) {
	in := New(Options{})
	ctx, f := in.Start(context.Background(), KindAuth, "GET", "/api/auth/session", "localhost")
	srv := httptest.NewServer(in.Handler(Access{}))
	defer srv.Close()
	res := get(t, srv, EventsPath, "localhost", nil)
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := make(chan Event, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e Event
				if json.Unmarshal([]byte(data), &e) == nil {
					events <- e
				}
			}
		}
	}()
	next := func() Event {
		select {
		case e := <-events:
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("no event within 30 s")
			return Event{}
		}
	}
	if e := next(); e.Type != "flow" || e.Start.Route != "/api/auth/session" {
		t.Fatalf("first event %+v, want the kept flow start", e)
	}
	in.TraceCall(ctx, script.TracedCall{Callback: "callbacks.session", Args: []json.RawMessage{json.RawMessage(`{"session":{},"token":{"access_token":"secret-value"}}`)}})
	e := next()
	if e.Type != "callback" || e.Callback.Name != "callbacks.session" || strings.Contains(string(e.Callback.Args[0]), "secret-value") {
		t.Fatalf("live event %+v", e)
	}
	f.End(200)
	if e := next(); e.Type != "end" {
		t.Fatalf("event %+v, want the end", e)
	}
	// Close ends the stream: a gateway shutting down does not wait for it.
	in.Close()
	if _, ok := <-events; ok {
		for range events {
		}
	}
}
