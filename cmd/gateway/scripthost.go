package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
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
// (file watcher and SIGHUP). It starts no goroutine itself: components lists what serve's
// lifecycle runs.
type scriptHost struct {
	logger   *slog.Logger
	metrics  *metrics.Metrics
	guard    *script.HeapGuard
	eng      atomic.Pointer[engine.Engine]
	reloader *reload.Reloader
	// otel turns callback calls into spans; nil when tracing is off.
	otel script.Tracer
}

func newScriptHost(cfg config.Config, logger *slog.Logger) *scriptHost {
	h := &scriptHost{logger: logger}
	h.metrics = metrics.New(func() *script.Generation {
		if e := h.eng.Load(); e != nil {
			return e.Generation()
		}
		return nil
	})
	if cfg.Script.MaxHeapBytes > 0 {
		h.guard = script.NewHeapGuard(uint64(cfg.Script.MaxHeapBytes), 0, logger)
	}
	return h
}

// options adds the limits and instruments of the configuration to o.
func (h *scriptHost) options(cfg config.Config, o script.Options) script.Options {
	o.MaxResultBytes = cfg.Script.MaxResultBytes
	o.HeapGuard = h.guard
	o.Observer = h.metrics
	o.Tracer = script.JoinTracers(h.otel)
	o.Fetch = script.FetchOptions{
		Allow:            cfg.Script.Fetch.Allow,
		Timeout:          time.Duration(cfg.Script.Fetch.Timeout),
		MaxResponseBytes: cfg.Script.Fetch.MaxResponseBytes,
	}
	return o
}

// prepare builds the reloader for eng; components runs it.
func (h *scriptHost) prepare(cfg config.Config, o script.Options, eng *engine.Engine) error {
	h.eng.Store(eng)
	r, err := reload.New(reload.Options{
		Script: o, Target: eng, Watch: *cfg.Script.Watch, TestOnReload: *cfg.Script.TestOnReload,
		Logger: h.logger, Recorder: h.metrics,
		Checks: func(ctx context.Context) map[string]any { return map[string]any{"store": eng.StoreStatus(ctx)} },
		PublicChecks: func(ctx context.Context) map[string]any {
			return map[string]any{"store": publicStoreStatus(eng.StoreStatus(ctx), false)}
		},
	})
	if err != nil {
		return err
	}
	h.reloader = r
	h.metrics.WatchStore(func(ctx context.Context) metrics.StoreHealth {
		st := eng.StoreStatus(ctx)
		return metrics.StoreHealth{Up: st.State == "ok", RevocationsCurrent: st.Revocations == "current"}
	})
	return nil
}

// components are the script host's background work, in order of start: the heap guard
// (when script.max_heap_bytes is set), the reloader (the file watcher, unless script.watch
// is false) and the SIGHUP loop.
func (h *scriptHost) components() []component {
	var cs []component
	if h.guard != nil {
		cs = append(cs, component{name: "heap guard", run: func(ctx context.Context) error {
			h.guard.Run(ctx)
			return nil
		}})
	}
	return append(cs,
		component{name: "reloader", run: h.reloader.Run},
		component{name: "SIGHUP", run: h.reloadOnSIGHUP},
	)
}

// reloadOnSIGHUP reloads the scripts on every SIGHUP until ctx ends.
func (h *scriptHost) reloadOnSIGHUP(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			h.logger.Info("SIGHUP: reloading scripts")
			_, _ = h.reloader.Reload(ctx)
		}
	}
}

// close closes the live generation. serve calls it once every component has stopped, so
// no request and no reload holds it any more.
func (h *scriptHost) close() {
	if e := h.eng.Load(); e != nil {
		shutdownGeneration(e.Generation())
	}
}
