package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/inspect"
	"github.com/callgate/callgate/internal/testkit"
)

func getPath(t *testing.T, url, host string, hdr map[string]string) httpResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, http.DefaultClient, req)
}

func TestInspectorIsOffByDefault(t *testing.T) {
	gw := startGateway(t, gatewayOptions{})
	for _, p := range inspect.Paths {
		res := getPath(t, gw.URL+p, "", nil)
		if res.Status != http.StatusNotFound || !strings.Contains(string(res.Body), "--dev") {
			t.Errorf("GET %s with the inspector off: %d %q, want 404 saying how to turn it on", p, res.Status, res.Body)
		}
	}
}

// The inspector with --dev follows a credentials sign-in and a session read through a real
// gateway: the callbacks in order, their arguments as the script got them, what the core
// did, and never the password.
func TestInspectorFollowsASignInWithDev(t *testing.T) {
	gw := startGateway(t, gatewayOptions{Args: []string{"--dev"}})
	client := newBrowserClient(t)
	if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", res.Status, res.Body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/api/auth/session", nil)
	if res := do(t, client, req); res.Status != http.StatusOK || !strings.Contains(string(res.Body), "jatin@example.com") {
		t.Fatalf("session read: %d %s", res.Status, res.Body)
	}
	res := getPath(t, gw.URL+inspect.FlowsPath, "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", inspect.FlowsPath, res.Status, res.Body)
	}
	if strings.Contains(string(res.Body), `"secret"`) || strings.Contains(string(res.Body), "password=secret") {
		t.Fatalf("the password is in the inspector's flows:\n%s", res.Body)
	}
	var snap struct {
		Flows []inspect.Flow `json:"flows"`
	}
	if err := json.Unmarshal(res.Body, &snap); err != nil {
		t.Fatal(err)
	}
	steps := func(route string) (names []string, flow inspect.Flow) {
		for _, f := range snap.Flows {
			if f.Route != route {
				continue
			}
			for _, e := range f.Events {
				switch {
				case e.Callback != nil:
					n := e.Callback.Name
					if e.Callback.Trigger != "" {
						n += "(" + e.Callback.Trigger + ")"
					}
					names = append(names, n)
				case e.Core != nil:
					names = append(names, "core:"+e.Core.What)
				}
			}
			return names, f
		}
		t.Fatalf("no flow for %s in %+v", route, snap.Flows)
		return nil, inspect.Flow{}
	}
	signIn, f := steps("/api/auth/callback/credentials")
	if !containsInOrder(signIn, []string{"authorize", "callbacks.jwt(signIn)"}) || !containsInOrder(signIn, []string{"core:token", "core:cookie"}) {
		t.Errorf("sign-in flow %v, want authorize, jwt with trigger signIn, the token encoded and the cookie set", signIn)
	}
	if !f.Done || f.Status != http.StatusOK {
		t.Errorf("sign-in flow done %v status %d", f.Done, f.Status)
	}
	arg := string(f.Events[0].Callback.Args[0])
	if !strings.Contains(arg, `"username":"jatin"`) || !strings.Contains(arg, `"password":"[redacted]"`) {
		t.Errorf("authorize's credentials as the inspector shows them: %s", arg)
	}
	read, _ := steps("/api/auth/session")
	if !containsInOrder(read, []string{"callbacks.jwt", "callbacks.session", "core:token", "core:cookie"}) {
		t.Errorf("session read flow %v, want jwt, session, the token re-encoded and its cookie", read)
	}
}

func containsInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// Turned on by the configuration, the inspector needs its credential from anyone who is
// not on this machine, and a listener others reach without one is refused at start.
func TestInspectorAccess(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfg, []byte("inspector: {enabled: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("refused at start on a listener others reach, without a credential", func(t *testing.T) {
		for _, args := range [][]string{{"--config", cfg}, {"--dev"}} {
			var out strings.Builder
			c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(k string) string {
				if k == "AUTH_SECRET" {
					return testGatewaySecret
				}
				return ""
			}}
			err := c.run(t.Context(), append([]string{"serve", "--listen", "0.0.0.0:0", "--data", t.TempDir(), "--scripts", repoPath("scripts")}, args...))
			if err == nil || !strings.Contains(err.Error(), inspectorTokenEnv) {
				t.Errorf("serve %v on 0.0.0.0: %v, want a refusal naming %s", args, err, inspectorTokenEnv)
			}
		}
	})
	const token = "inspector-credential-0123456789"
	gw := startGateway(t, gatewayOptions{Args: []string{"--config", cfg}, ListenAll: true, Env: map[string]string{inspectorTokenEnv: token}})
	cases := []struct {
		name, host string
		hdr        map[string]string
		status     int
	}{
		{"loopback client, loopback host", "", nil, http.StatusOK},
		{"loopback client, a public host name", "auth.example.com", nil, http.StatusUnauthorized},
		{"the credential", "auth.example.com", map[string]string{"Authorization": "Bearer " + token}, http.StatusOK},
		{"a wrong credential", "auth.example.com", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", len(token))}, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		res := getPath(t, gw.URL+inspect.FlowsPath, tc.host, tc.hdr)
		if res.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, res.Status, res.Body, tc.status)
		}
	}
	// From this machine's own non-loopback address, the peer is not loopback.
	if ip := nonLoopbackIP(t); ip != "" {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(gw.URL, "http://"))
		url := "http://" + net.JoinHostPort(ip, port) + inspect.FlowsPath
		for auth, status := range map[string]int{"": http.StatusUnauthorized, "Bearer " + token: http.StatusOK} {
			hdr := map[string]string{}
			if auth != "" {
				hdr["Authorization"] = auth
			}
			if res := getPath(t, url, "localhost", hdr); res.Status != status {
				t.Errorf("from %s, Authorization %q: %d, want %d", ip, auth, res.Status, status)
			}
		}
	} else {
		t.Log("this machine has no non-loopback address; the peer rule is covered by engine/inspect's tests")
	}
}

func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// gateway trace follows a running gateway's flows in the terminal.
func TestTraceFollowsARunningGateway(t *testing.T) {
	gw := startGateway(t, gatewayOptions{Args: []string{"--dev"}})
	out := &syncBuffer{}
	c := &cli{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(string) string { return "" }}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.run(ctx, []string{"trace", "--url", gw.URL}) }()
	// The stream is open once the first request's flow shows.
	testkit.WaitFor(t, "trace prints the providers request", 30*time.Second, func() error {
		getPath(t, gw.URL+"/api/auth/providers", "", nil)
		if !strings.Contains(out.String(), "GET /api/auth/providers") {
			return fmt.Errorf("trace printed %q", out.String())
		}
		return nil
	})
	if res := signInWithCredentials(t, newBrowserClient(t), gw, "jatin", "secret"); res.Status != http.StatusOK {
		t.Fatalf("sign-in: %d", res.Status)
	}
	testkit.WaitFor(t, "trace prints the sign-in", 30*time.Second, func() error {
		s := out.String()
		for _, want := range []string{"POST /api/auth/callback/credentials", "  authorize ", "callbacks.jwt (trigger signIn)", "core token:", "answered 200"} {
			if !strings.Contains(s, want) {
				return fmt.Errorf("no %q in %q", want, s)
			}
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Errorf("trace returned %v once interrupted", err)
	}
	if strings.Contains(out.String(), "secret") {
		t.Errorf("the password is in trace's output:\n%s", out)
	}
	// Against a gateway whose inspector is off, trace says so and stops.
	off := startGateway(t, gatewayOptions{})
	err := c.run(t.Context(), []string{"trace", "--url", off.URL})
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "--dev") {
		t.Errorf("trace against an inspector that is off: %v", err)
	}
}

// Proxied requests and forward-auth checks are flows too, each with the access decision.
func TestInspectorShowsAccessDecisions(t *testing.T) {
	up := echoUpstream(t)
	gw := startGateway(t, gatewayOptions{Args: []string{"--dev", "--upstream", up.URL}})
	client := newBrowserClient(t)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	anon, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/reports/q3", nil)
	anon.Header.Set("Accept", "text/html")
	if res := do(t, client, anon); res.Status != http.StatusFound {
		t.Fatalf("anonymous proxied request: %d, want 302 to sign in", res.Status)
	}
	if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK {
		t.Fatalf("sign-in: %d", res.Status)
	}
	in, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/reports/q3", nil)
	if res := do(t, client, in); res.Status != http.StatusOK {
		t.Fatalf("signed-in proxied request: %d %s", res.Status, res.Body)
	}
	fa, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/_callgate/forward-auth", nil)
	if res := do(t, client, fa); res.Status != http.StatusOK {
		t.Fatalf("forward-auth check: %d %s", res.Status, res.Body)
	}
	res := getPath(t, gw.URL+inspect.FlowsPath, "", nil)
	var snap struct {
		Flows []inspect.Flow `json:"flows"`
	}
	if err := json.Unmarshal(res.Body, &snap); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range snap.Flows {
		if f.Kind == inspect.KindAuth {
			continue
		}
		for _, e := range f.Events {
			if e.Core != nil && e.Core.What == "decision" {
				got = append(got, fmt.Sprintf("%s %d %s", f.Kind, f.Status, e.Core.Summary))
			}
		}
	}
	want := []string{
		"proxy 302 refused: not signed in",
		"proxy 200 allowed: forwarded to " + strings.TrimPrefix(up.URL, "http://"),
		"forward-auth 200 allowed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("decisions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
