package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// tracedGateway runs a gateway with the tracing scripts in front of the echo upstream,
// with env added to its environment and args to its command line.
func tracedGateway(t *testing.T, env map[string]string, args ...string) (*testGateway, string) {
	t.Helper()
	up := echoUpstream(t)
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: filepath.Join("testdata", "otel-scripts"),
		Args:       append([]string{"--upstream", up.URL}, args...),
		Env:        env,
	})
	return gw, up.URL
}

// traceparentPattern is a W3C traceparent: version, trace id, parent span id, flags.
var traceparentPattern = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$`)

// upstreamTraceparent is the traceparent the echo upstream reports it received, "" for none.
func upstreamTraceparent(t *testing.T, res httpResult) string {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("proxied request: got status %d, want 200; body %s", res.Status, res.Body)
	}
	var s seen
	if err := json.Unmarshal(res.Body, &s); err != nil {
		t.Fatalf("upstream answer %s: %v", res.Body, err)
	}
	return s.Headers["Traceparent"]
}

// waitForTraces polls Jaeger until service has a trace for each of roots (the names of
// the requests' spans) and returns them by that name, checking that every trace has one
// root span and no request has two traces. Spans are batched, so they arrive some time
// after the requests. Traces of the harness's readiness probe (GET /api/auth/providers)
// may be there too.
func waitForTraces(t *testing.T, j *testkit.Jaeger, service string, roots ...string) map[string]testkit.JaegerTrace {
	t.Helper()
	byRoot := map[string]testkit.JaegerTrace{}
	testkit.WaitFor(t, fmt.Sprintf("Jaeger holds the traces %q of %s", roots, service), 60*time.Second, func() error {
		got, err := j.Traces(t.Context(), service, 100)
		if err != nil {
			return err
		}
		byRoot = map[string]testkit.JaegerTrace{}
		for _, tr := range got {
			var names []string
			for _, s := range tr.Spans {
				if s.Parent() == "" {
					names = append(names, s.OperationName)
				}
			}
			if len(names) == 0 {
				// The request's span ends last: its children can arrive in an earlier batch.
				return fmt.Errorf("trace %s has no root span yet", tr.TraceID)
			}
			if len(names) > 1 {
				t.Fatalf("trace %s has root spans %q, want exactly one (the request)", tr.TraceID, names)
			}
			if _, dup := byRoot[names[0]]; dup && names[0] != "GET /api/auth/providers" {
				t.Fatalf("two traces with the root %q, want one per request", names[0])
			}
			byRoot[names[0]] = tr
		}
		for _, r := range roots {
			if _, ok := byRoot[r]; !ok {
				return fmt.Errorf("no trace of %q yet; have %q", r, keys(byRoot))
			}
		}
		return nil
	})
	return byRoot
}

// requireChildren checks that tr's root span is named root and has a direct child named
// each of names, and returns the root's span id.
func requireChildren(t *testing.T, tr testkit.JaegerTrace, root string, names ...string) string {
	t.Helper()
	var rootID string
	for _, s := range tr.Spans {
		if s.Parent() == "" {
			rootID = s.SpanID
			if s.OperationName != root {
				t.Fatalf("trace %s: root span %q, want %q", tr.TraceID, s.OperationName, root)
			}
		}
	}
	var children []string
	for _, s := range tr.Spans {
		if s.Parent() == rootID {
			children = append(children, s.OperationName)
		}
	}
	for _, n := range names {
		if !slices.Contains(children, n) {
			t.Errorf("trace %s (%s): the request span's children are %q, want %q among them", tr.TraceID, root, children, n)
		}
	}
	return rootID
}

func spanNamed(tr testkit.JaegerTrace, name string) (testkit.JaegerSpan, bool) {
	for _, s := range tr.Spans {
		if s.OperationName == name {
			return s, true
		}
	}
	return testkit.JaegerSpan{}, false
}

// TestTracesInJaeger exports to a real Jaeger and reads the traces back through its query
// API: one trace per request, the callbacks and store calls as children of the request
// span, the upstream call with the trace context the app received, and the trace id in
// the log line a callback wrote.
func TestTracesInJaeger(t *testing.T) {
	j := testkit.StartJaeger(t, testkit.JaegerBinary(t, repoPath()), repoPath())
	service := fmt.Sprintf("callgate-test-%d", time.Now().UnixNano())
	gw, _ := tracedGateway(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": j.OTLPHTTP,
		"OTEL_SERVICE_NAME":           service,
	})

	client := newBrowserClient(t) // request 1: GET /api/auth/csrf; 2: the sign-in
	if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK {
		t.Fatalf("sign in: got status %d, want 200; body %s", res.Status, res.Body)
	}
	if res := get(t, client, gw.URL+"/api/auth/session", nil); res.Status != http.StatusOK { // 3
		t.Fatalf("session read: got status %d, want 200; body %s", res.Status, res.Body)
	}
	// 4: proxied, with a trace context of the client's own, which the gateway must not
	// adopt: the client is no trusted proxy.
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	res := get(t, client, gw.URL+"/app/page?secret=do-not-trace", http.Header{"Traceparent": {"00-" + clientTrace + "-00f067aa0ba902b7-01"}})
	tp := upstreamTraceparent(t, res)
	m := traceparentPattern.FindStringSubmatch(tp)
	if m == nil {
		t.Fatalf("the upstream received traceparent %q, want a W3C traceparent", tp)
	}
	if m[1] == clientTrace {
		t.Fatalf("the upstream received the client's own trace id %s: an untrusted client's trace context was adopted", clientTrace)
	}

	traces := waitForTraces(t, j, service, "GET /api/auth/csrf", "POST /api/auth/callback", "GET /api/auth/session", "GET route:default")
	signIn, ok := traces["POST /api/auth/callback"]
	if !ok {
		t.Fatalf("no trace of the sign-in; roots %v", keys(traces))
	}
	requireChildren(t, signIn, "POST /api/auth/callback", "authorize", "callbacks.signIn", "callbacks.jwt", "callbacks.redirect", "events.signIn", "store.FindUser")
	if s, _ := spanNamed(signIn, "authorize"); s.Tag("callgate.outcome") != "ok" || len(s.Tag("callgate.generation")) != 12 {
		t.Errorf("authorize span: outcome %q, generation %q; want ok and a 12-digit hash", s.Tag("callgate.outcome"), s.Tag("callgate.generation"))
	}
	for _, s := range signIn.Spans {
		for _, tg := range s.Tags {
			if v := fmt.Sprint(tg.Value); strings.Contains(v, "secret") && tg.Key != "otel.scope.name" {
				t.Errorf("span %s attribute %s=%q: the password reached a span", s.OperationName, tg.Key, v)
			}
		}
	}
	requireChildren(t, traces["GET /api/auth/session"], "GET /api/auth/session", "callbacks.jwt", "callbacks.session")

	proxied, ok := traces["GET route:default"]
	if !ok {
		t.Fatalf("no trace of the proxied request; roots %v", keys(traces))
	}
	requireChildren(t, proxied, "GET route:default", "callbacks.authorized", "upstream GET")
	if proxied.TraceID != m[1] {
		t.Errorf("the upstream received trace id %s, want the proxied request's %s", m[1], proxied.TraceID)
	}
	if up, _ := spanNamed(proxied, "upstream GET"); up.SpanID != m[2] {
		t.Errorf("the upstream's traceparent names parent span %s, want the upstream call's span %s", m[2], up.SpanID)
	}
	root, _ := spanNamed(proxied, "GET route:default")
	linked := false
	for _, r := range root.References {
		linked = linked || (r.TraceID == clientTrace && r.RefType == "FOLLOWS_FROM")
	}
	if !linked {
		t.Errorf("the proxied request's span does not link the client's trace %s: references %+v", clientTrace, root.References)
	}
	for _, s := range proxied.Spans {
		for _, tg := range s.Tags {
			if strings.Contains(fmt.Sprint(tg.Value), "do-not-trace") {
				t.Errorf("span %s attribute %s holds the query string", s.OperationName, tg.Key)
			}
		}
	}

	// The line authorize logged carries the sign-in's trace id.
	var logged string
	for line := range strings.SplitSeq(gw.Logs(), "\n") {
		if strings.Contains(line, "authorize: checking a password") {
			logged = line
		}
	}
	if !strings.Contains(logged, "trace_id="+signIn.TraceID) {
		t.Errorf("authorize's log line %q does not carry the sign-in's trace id %s", logged, signIn.TraceID)
	}
}

// TestTracingOffByDefault: with no OTLP endpoint in the environment nothing is traced:
// the upstream gets no trace context of the gateway's, and no log line a trace id.
func TestTracingOffByDefault(t *testing.T) {
	gw, _ := tracedGateway(t, map[string]string{"OTEL_SERVICE_NAME": "callgate-untraced"})
	client := signedInClient(t, gw)
	if tp := upstreamTraceparent(t, get(t, client, gw.URL+"/app", nil)); tp != "" {
		t.Errorf("the upstream received traceparent %q with tracing off, want none", tp)
	}
	if logs := gw.Logs(); strings.Contains(logs, "trace_id=") || strings.Contains(logs, "tracing on") {
		t.Errorf("with tracing off the log mentions tracing:\n%s", logs)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
