package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

// recorder notes what the components of a lifecycle do, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// recordedComponent is a component that notes its start, run, stop and close. failStart makes Start
// fail; runErr, when not nil, is what Run returns as soon as it runs.
func recordedComponent(r *recorder, name string, failStart bool, runErr error) component {
	return component{
		name: name,
		start: func(context.Context) error {
			r.note("start %s", name)
			if failStart {
				return errors.New(name + " refused to start")
			}
			return nil
		},
		run: func(ctx context.Context) error {
			r.note("run %s", name)
			if runErr != nil {
				return runErr
			}
			<-ctx.Done()
			r.note("stopped %s", name)
			return nil
		},
		close: func() { r.note("close %s", name) },
	}
}

// TestLifecycleStopsInReverseOrder: every Start runs before any Run, and once ctx ends each
// component is stopped and closed before the one started before it is told to stop.
func TestLifecycleStopsInReverseOrder(t *testing.T) {
	var r recorder
	var lc lifecycle
	lc.add(recordedComponent(&r, "a", false, nil), recordedComponent(&r, "b", false, nil), recordedComponent(&r, "c", false, nil))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- lc.run(ctx) }()
	waitFor(t, "every component runs", func() bool { return len(r.list()) == 6 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v, want nil once ctx ends", err)
	}
	ev := r.list()
	if got, want := ev[:3], []string{"start a", "start b", "start c"}; !slices.Equal(got, want) {
		t.Errorf("first events %q, want every Start before any Run: %q", got, want)
	}
	want := []string{"stopped c", "close c", "stopped b", "close b", "stopped a", "close a"}
	if got := ev[6:]; !slices.Equal(got, want) {
		t.Errorf("stop events %q, want %q", got, want)
	}
}

// TestLifecycleStartFailure: a component that fails to start closes those started before
// it, in reverse order, runs nothing, and its error is run's.
func TestLifecycleStartFailure(t *testing.T) {
	var r recorder
	var lc lifecycle
	lc.add(recordedComponent(&r, "a", false, nil), recordedComponent(&r, "b", false, nil), recordedComponent(&r, "c", true, nil), recordedComponent(&r, "d", false, nil))
	err := lc.run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "c refused to start") {
		t.Fatalf("run: %v, want c's start error", err)
	}
	want := []string{"start a", "start b", "start c", "close b", "close a"}
	if got := r.list(); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestLifecycleRunFailure: a Run that fails stops every other component, and its error is
// run's, though ctx never ended.
func TestLifecycleRunFailure(t *testing.T) {
	var r recorder
	var lc lifecycle
	boom := errors.New("listener broke")
	lc.add(recordedComponent(&r, "a", false, nil), recordedComponent(&r, "b", false, boom), recordedComponent(&r, "c", false, nil))
	done := make(chan error, 1)
	go func() { done <- lc.run(t.Context()) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Fatalf("run: %v, want %v", err, boom)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after a component failed")
	}
	ev := r.list()
	for _, name := range []string{"a", "c"} {
		if !slices.Contains(ev, "stopped "+name) || !slices.Contains(ev, "close "+name) {
			t.Errorf("events %q: want %s stopped and closed", ev, name)
		}
	}
	if i, j := slices.Index(ev, "close c"), slices.Index(ev, "stopped a"); i > j {
		t.Errorf("events %q: want c closed before a is stopped", ev)
	}
}

// componentFrames name a function on the stack of each background component of serve: the
// assertion key rotation, the reloader, the heap guard, the revocation loop, the SIGHUP
// loop and the HTTP servers.
var componentFrames = []string{
	"assertion.(*Keys).Run",
	"reload.(*Reloader).Run",
	"script.(*HeapGuard).Run",
	"guard.(*Revocations).loop",
	"main.(*scriptHost).reloadOnSIGHUP",
	"main.(*httpServer).run",
	"net/http.(*Server).Serve",
}

// liveComponents returns the stacks of the goroutines labelled label=value (pprof labels
// pass to every goroutine a labelled one starts) that are running a component of serve.
func liveComponents(t *testing.T, label, value string) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatalf("goroutine profile: %v", err)
	}
	mark := fmt.Sprintf("# labels: {%q:%q}", label, value)
	var live []string
	for _, block := range strings.Split(buf.String(), "\n\n") {
		if !strings.Contains(block, mark) {
			continue
		}
		for _, f := range componentFrames {
			if strings.Contains(block, f) {
				live = append(live, block)
				break
			}
		}
	}
	return live
}

// closeWatch is the store of a serve under test: when serve closes it, it checks that no
// component of that serve is still running.
type closeWatch struct {
	store.Store
	check func()
}

func (s *closeWatch) Close() error {
	s.check()
	return s.Store.Close()
}

// TestServeStopsEveryComponentBeforeTheStore runs serve with every background component on
// (admin listener, heap guard, file watcher, revocation watch, key rotation): when serve
// closes the store every one of them has stopped, and none outlives serve.
func TestServeStopsEveryComponentBeforeTheStore(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "callgate.yaml")
	admin := freeLoopbackAddr(t)
	yaml := fmt.Sprintf("server:\n  admin_listen: %s\nscript:\n  max_heap_bytes: 268435456\n  watch: true\n", admin)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	const label = "lifecycle-test"
	value := t.Name()
	out := &syncBuffer{}
	closed := make(chan []string, 1)
	c := &cli{
		stdin: strings.NewReader(""), stdout: out, stderr: out,
		getenv: func(k string) string {
			if k == "AUTH_SECRET" {
				return testGatewaySecret
			}
			return ""
		},
		wrapStore: func(st store.Store) store.Store {
			return &closeWatch{Store: st, check: func() { closed <- liveComponents(t, label, value) }}
		},
	}
	addr := freeLoopbackAddr(t)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	served := make(chan error, 1)
	go pprof.Do(ctx, pprof.Labels(label, value), func(ctx context.Context) {
		served <- c.run(ctx, []string{"serve", "--listen", addr, "--url", "http://" + addr,
			"--data", filepath.Join(dir, "data"), "--scripts", repoPath("scripts"), "--config", cfgFile})
	})
	if err := waitUntilReady(ctx, "http://"+admin+"/healthz", nil); err != nil {
		t.Fatalf("admin listener: %v\n%s", err, out)
	}
	if err := waitUntilReady(ctx, "http://"+addr+"/api/auth/providers", nil); err != nil {
		t.Fatalf("gateway: %v\n%s", err, out)
	}
	if live := liveComponents(t, label, value); len(live) < 5 {
		t.Fatalf("the test sees %d component goroutines of a running serve, want them all; the detector is blind:\n%s", len(live), strings.Join(live, "\n\n"))
	}
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not return\n%s", out)
	}
	select {
	case live := <-closed:
		if len(live) > 0 {
			t.Errorf("components still running when serve closed the store:\n%s", strings.Join(live, "\n\n"))
		}
	default:
		t.Fatal("serve returned without closing the store")
	}
	if live := liveComponents(t, label, value); len(live) > 0 {
		t.Errorf("components still running after serve returned:\n%s", strings.Join(live, "\n\n"))
	}
}

// TestServeFailsToStart: the main listener's port is taken, so the last component fails to
// start. serve returns that error, having stopped what it had started (the admin listener,
// the revocation watch…) before closing the store, and leaves nothing running.
func TestServeFailsToStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "callgate.yaml")
	admin := freeLoopbackAddr(t)
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf("server:\n  admin_listen: %s\n", admin)), 0o644); err != nil {
		t.Fatal(err)
	}
	const label = "lifecycle-test"
	value := t.Name()
	out := &syncBuffer{}
	closed := make(chan []string, 1)
	c := &cli{
		stdin: strings.NewReader(""), stdout: out, stderr: out,
		getenv: func(k string) string {
			if k == "AUTH_SECRET" {
				return testGatewaySecret
			}
			return ""
		},
		wrapStore: func(st store.Store) store.Store {
			return &closeWatch{Store: st, check: func() { closed <- liveComponents(t, label, value) }}
		},
	}
	addr := busy.Addr().String()
	served := make(chan error, 1)
	go pprof.Do(t.Context(), pprof.Labels(label, value), func(ctx context.Context) {
		served <- c.run(ctx, []string{"serve", "--listen", addr, "--url", "http://" + addr,
			"--data", filepath.Join(dir, "data"), "--scripts", repoPath("scripts"), "--config", cfgFile})
	})
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "listen on "+addr) {
			t.Fatalf("serve: %v, want the main listener's error\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not return after failing to start\n%s", out)
	}
	if live := <-closed; len(live) > 0 {
		t.Errorf("components still running when serve closed the store:\n%s", strings.Join(live, "\n\n"))
	}
	if live := liveComponents(t, label, value); len(live) > 0 {
		t.Errorf("components still running after serve returned:\n%s", strings.Join(live, "\n\n"))
	}
	// The admin listener was bound, then released: its port is free again.
	ln, err := net.Listen("tcp", admin)
	if err != nil {
		t.Errorf("the admin port is still held after serve returned: %v", err)
	} else {
		ln.Close()
	}
}
