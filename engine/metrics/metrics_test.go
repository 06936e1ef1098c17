package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
)

func TestRoute(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/api/auth/session", "/api/auth/session"},
		{"/api/auth/callback/credentials", "/api/auth/callback"},
		{"/api/auth/../../etc", "/api/auth/other"},
		{"/api/auth/x9f8s7", "/api/auth/other"},
		{"/", "/"},
		{"/healthz", "other"}, // the gateway's own /healthz is labelled by its handler
		{"/metrics", "other"},
		{"/anything/else", "other"},
	} {
		if got := Route(tc.path); got != tc.want {
			t.Errorf("Route(%q): got %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestSetRoute: a label a handler sets wins over the path's, through wrappers that unwrap.
func TestSetRoute(t *testing.T) {
	m := New(func() *script.Generation { return nil })
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(wrapped{w}, "route:app")
		w.WriteHeader(http.StatusTeapot)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/metrics", nil))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := `callgate_http_requests_total{code="418",method="GET",route="route:app"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics: want %s, got\n%s", want, rec.Body)
	}
	if strings.Contains(rec.Body.String(), `route="/metrics"`) {
		t.Errorf("metrics: a forwarded /metrics is labelled by its path:\n%s", rec.Body)
	}
	SetRoute(httptest.NewRecorder(), "x") // not wrapped by Middleware: nothing happens
}

// wrapped is a ResponseWriter wrapper of the kind handlers add between Middleware and
// SetRoute.
type wrapped struct{ http.ResponseWriter }

func (w wrapped) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestExposition: a real generation reports calls, errors and timeouts through the
// observer; the middleware counts requests by route; /metrics shows them.
func TestExposition(t *testing.T) {
	dir := t.TempDir()
	src := `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: async () => null })],
  callbacks: {
    jwt({ token }) { if (token.loop) for (;;) {} if (token.boom) throw new TypeError("boom"); return token; },
  },
};`
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var gen *script.Generation
	m := New(func() *script.Generation { return gen })
	var err error
	gen, err = script.Load(context.Background(), script.Options{Dir: dir, Observer: m, Timeouts: script.Timeouts{Default: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	for _, tok := range []map[string]any{{}, {}, {"boom": true}, {"loop": true}} {
		_, _ = gen.JWT(context.Background(), script.JWTArgs{Token: tok})
	}
	m.ReloadDone("swapped", 20*time.Millisecond)
	m.ReloadDone("failed", 5*time.Millisecond)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("/api/auth/session", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/api/auth/session")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	res, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`callgate_callback_calls_total{callback="callbacks.jwt"} 4`,
		`callgate_callback_errors_total{callback="callbacks.jwt",kind="thrown"} 1`,
		`callgate_callback_errors_total{callback="callbacks.jwt",kind="timeout"} 1`,
		`callgate_callback_timeouts_total{callback="callbacks.jwt"} 1`,
		`callgate_callback_duration_seconds_count{callback="callbacks.jwt"} 4`,
		`callgate_script_reloads_total{outcome="swapped"} 1`,
		`callgate_script_reloads_total{outcome="failed"} 1`,
		`callgate_script_generation_info{hash="` + gen.Hash() + `"} 1`,
		`callgate_http_requests_total{code="418",method="GET",route="/api/auth/session"} 1`,
		`callgate_script_pool_size `,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics: got no line %q", want)
		}
	}
}

func TestObserveCallUnknownError(t *testing.T) {
	m := New(nil)
	m.ObserveCall("callbacks.jwt", time.Millisecond, errors.New("plain"))
	m.ObserveCall(strings.Repeat("x", 100), time.Millisecond, nil)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, mf := range mfs {
		if mf.GetName() == "callgate_callback_errors_total" || mf.GetName() == "callgate_callback_calls_total" {
			for _, mt := range mf.GetMetric() {
				for _, l := range mt.GetLabel() {
					labels = append(labels, l.GetValue())
				}
			}
		}
	}
	got := strings.Join(labels, ",")
	if !strings.Contains(got, "internal") || !strings.Contains(got, "other") || strings.Contains(got, "xxxx") {
		t.Errorf("labels: got %s, want kind internal for a non-script error and \"other\" for an unknown callback", got)
	}
}
