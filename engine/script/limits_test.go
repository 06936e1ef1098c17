package script

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// writeDir writes files into a fresh directory and returns it.
func writeDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// limitsConfig is a jwt callback that misbehaves in the way token.mode asks.
const limitsConfig = `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: async () => null })],
  callbacks: {
    async jwt({ token }) {
      switch (token.mode) {
        case "loop": for (;;) {}
        case "recurse": { const f = (n) => f(n + 1) + 1; return { n: f(0) }; }
        case "alloc": { const a = []; for (;;) a.push("x".repeat((1 << 20) + a.length)); }
        case "huge": return { big: "x".repeat(1 << 20) };
        case "hugeArray": return { list: Array.from({ length: 5000 }, (_, i) => "item" + i) };
        case "fetch": {
          const r = await fetch(token.url, { headers: { "x-probe": "yes" } });
          return { status: r.status, ok: r.ok, ct: r.headers.get("content-type"), body: await r.json() };
        }
        case "fetchText": { const r = await fetch(token.url); return { status: r.status, ok: r.ok, text: await r.text() }; }
        case "fetchAll": {
          const bodies = await Promise.all(token.urls.map((u) => fetch(u).then((r) => r.text())));
          return { bodies };
        }
        case "fetchCaught": {
          try { await fetch(token.url); return { caught: false }; }
          catch (e) { return { caught: true, name: e.name, message: e.message }; }
        }
      }
      return token;
    },
  },
};
`

func TestLimits(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(30 * time.Second): // far past the deadline: only the deadline ends the call
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	slowURL, _ := url.Parse(slow.URL)
	dir := writeDir(t, map[string]string{"auth.config.js": limitsConfig})
	l := load(t, dir, func(o *Options) {
		// Long enough that only the loop and the slow fetch reach it, even under the race
		// detector on a loaded machine; the other limits must answer first.
		o.Timeouts.Default = 5 * time.Second
		o.MaxCallStackSize = 200
		o.MaxResultBytes = 16 << 10
		o.Fetch = FetchOptions{Allow: []string{slowURL.Host}}
	})
	for _, tc := range []struct {
		name     string
		token    map[string]any
		wantKind ErrorKind
		wantMsg  string
	}{
		{"infinite loop", map[string]any{"mode": "loop"}, KindTimeout, ""},
		{"deep recursion", map[string]any{"mode": "recurse"}, KindInternal, "maximum call stack size exceeded"},
		{"huge string result", map[string]any{"mode": "huge"}, KindLimit, "larger than the 16384-byte limit"},
		{"huge array result", map[string]any{"mode": "hugeArray"}, KindLimit, "larger than the 16384-byte limit"},
		{"fetch to a host not allowed", map[string]any{"mode": "fetch", "url": "http://example.invalid/x"}, KindThrown, `host "example.invalid" is not in script.fetch.allow`},
		{"fetch to a slow server past the deadline", map[string]any{"mode": "fetch", "url": slow.URL}, KindTimeout, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": tc.token})
			se := asError(t, err)
			if se.Kind != tc.wantKind {
				t.Fatalf("got kind %v (%v), want %v", se.Kind, err, tc.wantKind)
			}
			if !strings.Contains(se.Message, tc.wantMsg) {
				t.Errorf("got message %q, want it to contain %q", se.Message, tc.wantMsg)
			}
			if se.Public {
				t.Errorf("got Public, want a limit failure never shown to the end user")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v, want the limit to stop the call promptly", d)
			}
			// The generation still serves: a clean call works after every failure.
			res, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{"ok": true}})
			if err != nil || res.(map[string]any)["ok"] != true {
				t.Errorf("next call: got %v, %v, want the token back", res, err)
			}
		})
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestHeapGuardInterruptsRunawayAllocation(t *testing.T) {
	runtime.GC()
	// 8 Mi objects above the live heap: far beyond what the package's other tests allocate,
	// and reached in well under a second, so the guard (not the call's deadline, which this
	// package's TestMain caps at 6 s) stops the loop even on a loaded machine.
	guard := NewHeapGuard(heapObjects()+8<<20, 5*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); guard.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	dir := writeDir(t, map[string]string{"auth.config.js": limitsConfig})
	var logs syncBuffer
	l := load(t, dir, func(o *Options) {
		o.Timeouts.Default = 60 * time.Second
		o.HeapGuard = guard
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	start := time.Now()
	_, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{"mode": "alloc"}})
	se := asError(t, err)
	if se.Kind != KindLimit || !errors.Is(err, errHeapLimit) {
		t.Fatalf("got %v (kind %v), want KindLimit wrapping the heap limit", err, se.Kind)
	}
	// The loop is found, unless it did not stop within the grace after its interrupt (a
	// 1 MiB repeat under the race detector on a busy machine): the caller is then answered
	// at once, without the position the stopped call would have given, and the runtime
	// is abandoned, which the log says.
	if abandoned := strings.Contains(logs.String(), "SCRIPT_RUNTIME_ABANDONED"); !abandoned && (se.File != "auth.config.js" || se.Line != 9) {
		t.Errorf("got position %s:%d, want auth.config.js:9 (the allocating loop)", se.File, se.Line)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v, want the guard to stop the call long before its deadline", d)
	}
	if guard.Trips() != 1 {
		t.Errorf("got %d trips, want 1", guard.Trips())
	}
	// The next call works once the runaway's garbage is gone: a new runtime cannot start
	// while the heap is still past the ceiling, which an abandoned loop may hold a moment.
	testkit.WaitFor(t, "a call after the heap came down", 30*time.Second, func() error {
		runtime.GC()
		res, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{"ok": true}})
		if err != nil || res.(map[string]any)["ok"] != true {
			return fmt.Errorf("got %v, %v, want the token back", res, err)
		}
		return nil
	})
}

func TestFetch(t *testing.T) {
	var probe sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe.Store("x-probe", r.Header.Get("X-Probe"))
		switch r.URL.Path {
		case "/roles":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"roles":["admin","ops"]}`)
		case "/missing":
			http.Error(w, "nope", http.StatusNotFound)
		case "/big":
			fmt.Fprint(w, strings.Repeat("x", 4096))
		case "/slow":
			time.Sleep(150 * time.Millisecond)
			fmt.Fprint(w, r.URL.Query().Get("n"))
		case "/redirect":
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	dir := writeDir(t, map[string]string{"auth.config.js": limitsConfig})
	l := load(t, dir, func(o *Options) {
		o.Timeouts.Default = 2 * time.Second
		o.Fetch = FetchOptions{Allow: []string{"127.0.0.1:" + u.Port()}, MaxResponseBytes: 1024}
	})
	call := func(token map[string]any) (map[string]any, error) {
		res, err := l.gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": token})
		m, _ := res.(map[string]any)
		return m, err
	}

	got, err := call(map[string]any{"mode": "fetch", "url": srv.URL + "/roles"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": 200.0, "ok": true, "ct": "application/json", "body": map[string]any{"roles": []any{"admin", "ops"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("json: got %v, want %v", got, want)
	}
	if h, _ := probe.Load("x-probe"); h != "yes" {
		t.Errorf("request header: got %v, want yes", h)
	}

	got, err = call(map[string]any{"mode": "fetchText", "url": srv.URL + "/missing"})
	if err != nil || got["status"] != 404.0 || got["ok"] != false || got["text"] != "nope\n" {
		t.Errorf("404: got %v, %v, want status 404, ok false, text nope", got, err)
	}

	// Three fetches of 150 ms awaited together finish in about 150 ms, not 450.
	start := time.Now()
	got, err = call(map[string]any{"mode": "fetchAll", "urls": []any{srv.URL + "/slow?n=1", srv.URL + "/slow?n=2", srv.URL + "/slow?n=3"}})
	if err != nil || fmt.Sprint(got["bodies"]) != "[1 2 3]" {
		t.Errorf("concurrent: got %v, %v, want bodies [1 2 3]", got, err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("concurrent fetches took %v, want them to overlap (< 400ms)", d)
	}

	for _, tc := range []struct{ name, url, want string }{
		{"response too large", srv.URL + "/big", "larger than 1024 bytes"},
		{"redirect to a host not allowed", srv.URL + "/redirect", "not in script.fetch.allow"},
		{"other port of an allowed host", "http://127.0.0.1:1/", "not in script.fetch.allow"},
		{"not http", "file:///etc/passwd", "not an absolute http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := call(map[string]any{"mode": "fetchCaught", "url": tc.url})
			if err != nil {
				t.Fatal(err)
			}
			if got["caught"] != true || got["name"] != "TypeError" || !strings.Contains(fmt.Sprint(got["message"]), tc.want) {
				t.Errorf("got %v, want a caught TypeError containing %q", got, tc.want)
			}
		})
	}
}

func TestFetchAllowList(t *testing.T) {
	f := newFetcher(FetchOptions{Allow: []string{"api.example.com", "auth.example.com:8443", "*.corp.example"}})
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"https://api.example.com/x", true},
		{"http://API.example.com:9000/x", true},
		{"https://auth.example.com:8443/", true},
		{"https://auth.example.com/", false},
		{"https://roles.corp.example/", true},
		{"https://corp.example/", false},
		{"https://evilcorp.example/", false},
		{"https://api.example.com.evil.test/", false},
	} {
		u, _ := url.Parse(tc.url)
		if got := f.allowed(u); got != tc.want {
			t.Errorf("allowed(%s): got %v, want %v", tc.url, got, tc.want)
		}
	}
}

// TestRetiredGenerationDrains: a request pinned to a generation keeps it (and its calls
// work) after it is retired; Close returns only once the request released it.
func TestRetiredGenerationDrains(t *testing.T) {
	gen, err := Load(context.Background(), Options{Dir: filepath.Join(fixtures, "behaviours")})
	if err != nil {
		t.Fatal(err)
	}
	if !gen.Acquire() {
		t.Fatal("Acquire on a live generation: got false, want true")
	}
	closed := make(chan struct{})
	go func() { gen.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a request still held the generation")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": map[string]any{}}); err != nil {
		t.Errorf("call on a retired generation still pinned: got %v, want success", err)
	}
	gen.Release()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return after the last release")
	}
	if gen.Acquire() {
		t.Error("Acquire after Close: got true, want false")
	}
	if ps := gen.PoolStats(); ps.Live != 0 || ps.Idle != 0 {
		t.Errorf("pool after Close: got %+v, want no runtime left", ps)
	}
}
