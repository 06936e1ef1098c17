package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/metrics"
	"github.com/callgate/callgate/engine/reload"
	"github.com/callgate/callgate/engine/script"
)

// scriptHost is the script side of serve: metrics, the heap guard and the reloader
// (file watcher and SIGHUP). Its goroutines end when close returns.
type scriptHost struct {
	logger   *slog.Logger
	metrics  *metrics.Metrics
	guard    *script.HeapGuard
	eng      atomic.Pointer[engine.Engine]
	reloader *reload.Reloader

	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
}

func newScriptHost(ctx context.Context, cfg config.Config, logger *slog.Logger) *scriptHost {
	h := &scriptHost{logger: logger}
	h.ctx, h.cancel = context.WithCancel(ctx)
	h.metrics = metrics.New(func() *script.Generation {
		if e := h.eng.Load(); e != nil {
			return e.Generation()
		}
		return nil
	})
	if cfg.Script.MaxHeapBytes > 0 {
		h.guard = script.NewHeapGuard(uint64(cfg.Script.MaxHeapBytes), 0, logger)
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.guard.Run(h.ctx)
		}()
	}
	return h
}

// options adds the limits and instruments of the configuration to o.
func (h *scriptHost) options(cfg config.Config, o script.Options) script.Options {
	o.MaxResultBytes = cfg.Script.MaxResultBytes
	o.HeapGuard = h.guard
	o.Observer = h.metrics
	o.Fetch = script.FetchOptions{
		Allow:            cfg.Script.Fetch.Allow,
		Timeout:          time.Duration(cfg.Script.Fetch.Timeout),
		MaxResponseBytes: cfg.Script.Fetch.MaxResponseBytes,
	}
	return o
}

// start begins reloading: the watcher (unless script.watch is false) and SIGHUP.
func (h *scriptHost) start(cfg config.Config, o script.Options, eng *engine.Engine) error {
	h.eng.Store(eng)
	r, err := reload.New(reload.Options{
		Script: o, Target: eng, Watch: *cfg.Script.Watch, TestOnReload: *cfg.Script.TestOnReload,
		Logger: h.logger, Recorder: h.metrics,
		Checks: func(ctx context.Context) map[string]any { return map[string]any{"store": eng.StoreStatus(ctx)} },
	})
	if err != nil {
		return err
	}
	h.reloader = r
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		_ = r.Run(h.ctx)
	}()
	go func() {
		defer h.wg.Done()
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		for {
			select {
			case <-h.ctx.Done():
				return
			case <-hup:
				h.logger.Info("SIGHUP: reloading scripts")
				_, _ = r.Reload(h.ctx)
			}
		}
	}()
	return nil
}

// handler adds /metrics and /-/status in front of next, and counts every request.
//
// The mux also answers every request whose path is not clean ("/public/../admin") with a
// redirect to the clean one, so that routes are only ever matched on clean paths: a public
// prefix must not lead to a protected path the upstream would resolve. Requests with a
// clean path for next skip the mux's pattern matching, which costs as much as half the
// proxy's own decision.
func (h *scriptHost) handler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h.metrics.Handler())
	if h.reloader != nil {
		mux.Handle("/-/status", h.reloader.StatusHandler())
	}
	mux.Handle("/", next)
	return h.metrics.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/metrics", p == "/-/status", r.Method == http.MethodConnect, !isCleanPath(p):
			mux.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	}))
}

// isCleanPath reports whether ServeMux would serve p as it is rather than redirect: rooted,
// and unchanged by path.Clean except for a trailing slash, which it keeps.
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return true // nothing path.Clean would change
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// close stops the goroutines and closes the live generation (requests have ended).
func (h *scriptHost) close() {
	h.cancel()
	h.wg.Wait()
	if e := h.eng.Load(); e != nil {
		e.Generation().Close()
	}
}
