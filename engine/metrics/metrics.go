// Package metrics is the gateway's Prometheus instrumentation: script callbacks (calls,
// errors, timeouts, durations), the runtime pool, reloads, the live script generation and
// HTTP requests per route.
//
// Every metric lives on a registry owned by one Metrics value, never on the Prometheus
// default registry, so two gateways in one process (tests) never share counters. Labels
// come from fixed sets (callback names the host knows, route names, outcome names), never
// from request data, so the number of series stays bounded whatever clients send.
package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callgate/callgate/engine/script"
)

// Metrics records the gateway's measurements. It implements script.Observer and
// reload.Recorder. The zero value is not usable: call New.
type Metrics struct {
	reg *prometheus.Registry

	calls        *prometheus.CounterVec
	callErrors   *prometheus.CounterVec
	callTimeouts *prometheus.CounterVec
	callDuration *prometheus.HistogramVec
	poolWait     prometheus.Histogram
	poolWaits    prometheus.Counter
	reloads      *prometheus.CounterVec
	reloadTime   prometheus.Histogram
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	// The series every call and request updates, looked up once per label set: a vector's
	// WithLabelValues hashes its labels and takes a lock on every use, which on the proxy's
	// hot path cost as much as the rest of the bookkeeping together. Keys come from the same
	// bounded label sets as the series, so these maps stay small.
	callSeriesByName sync.Map // callback label → *callSeries
	httpSeriesByKey  sync.Map // httpKey → *httpSeries
}

type callSeries struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

type httpKey struct {
	route, method string
	code          int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// New registers every metric on a fresh registry. generation returns the live generation
// (engine.Engine.Generation); it may return nil before the engine exists.
func New(generation func() *script.Generation) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_callback_calls_total", Help: "Script callback calls, by callback.",
		}, []string{"callback"}),
		callErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_callback_errors_total", Help: "Failed script callback calls, by callback and kind (thrown, timeout, invalid result, internal, limit).",
		}, []string{"callback", "kind"}),
		callTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_callback_timeouts_total", Help: "Script callback calls interrupted at their deadline, by callback.",
		}, []string{"callback"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "callgate_callback_duration_seconds", Help: "Script callback call duration, including the wait for a runtime.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"callback"}),
		poolWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "callgate_script_pool_wait_seconds", Help: "Time calls waited for a runtime of the pool.",
			Buckets: []float64{.00001, .0001, .001, .005, .01, .05, .1, .5, 1, 5},
		}),
		poolWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callgate_script_pool_waits_total", Help: "Calls that found no idle runtime and had to wait or start one.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_script_reloads_total", Help: "Script reload attempts, by outcome (swapped, unchanged, failed).",
		}, []string{"outcome"}),
		reloadTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "callgate_script_reload_duration_seconds", Help: "Time to build, test and swap a generation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_http_requests_total", Help: "HTTP requests, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "callgate_http_request_duration_seconds", Help: "HTTP request latency, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	for _, name := range []string{script.CallbackJWT.String(), script.CallbackSession.String(), script.CallbackSignIn.String(), script.CallbackRedirect.String(), script.NameAuthorize} {
		m.calls.WithLabelValues(name) // present from the start, so rate() works at once
	}
	for _, o := range []string{"swapped", "unchanged", "failed"} {
		m.reloads.WithLabelValues(o)
	}
	reg.MustRegister(m.calls, m.callErrors, m.callTimeouts, m.callDuration, m.poolWait, m.poolWaits,
		m.reloads, m.reloadTime, m.httpRequests, m.httpDuration,
		&generationCollector{generation: generation},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry holding every metric, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveCall implements script.Observer.
func (m *Metrics) ObserveCall(callback string, d time.Duration, err error) {
	callback = callbackLabel(callback)
	cs := m.callSeries(callback)
	cs.calls.Inc()
	cs.duration.Observe(d.Seconds())
	if err == nil {
		return
	}
	kind := "internal"
	var se *script.Error
	if errors.As(err, &se) {
		kind = se.Kind.String()
		if se.Kind == script.KindTimeout {
			m.callTimeouts.WithLabelValues(callback).Inc()
		}
	}
	m.callErrors.WithLabelValues(callback, kind).Inc()
}

func (m *Metrics) callSeries(callback string) *callSeries {
	if cs, ok := m.callSeriesByName.Load(callback); ok {
		return cs.(*callSeries)
	}
	cs, _ := m.callSeriesByName.LoadOrStore(callback, &callSeries{
		calls:    m.calls.WithLabelValues(callback),
		duration: m.callDuration.WithLabelValues(callback),
	})
	return cs.(*callSeries)
}

// callbackLabel keeps the label set bounded: the names the host calls are fixed, except
// events (a fixed list in the script host too) and anything unexpected.
func callbackLabel(name string) string {
	switch {
	case name == script.NameAuthorize, strings.HasPrefix(name, "callbacks."), strings.HasPrefix(name, "events."):
		if len(name) <= 40 {
			return name
		}
	}
	return "other"
}

// ObservePoolWait implements script.Observer. Waits shorter than a microsecond found an
// idle runtime at once and are not counted as waits.
func (m *Metrics) ObservePoolWait(d time.Duration) {
	if d < time.Microsecond {
		return
	}
	m.poolWaits.Inc()
	m.poolWait.Observe(d.Seconds())
}

// ReloadDone implements reload.Recorder.
func (m *Metrics) ReloadDone(outcome string, d time.Duration) {
	m.reloads.WithLabelValues(outcome).Inc()
	if outcome != "unchanged" {
		m.reloadTime.Observe(d.Seconds())
	}
}

// generationCollector reports the live generation and its pool at scrape time.
type generationCollector struct {
	generation func() *script.Generation
}

var (
	genInfoDesc   = prometheus.NewDesc("callgate_script_generation_info", "The live script generation (hash label), always 1.", []string{"hash"}, nil)
	genLoadedDesc = prometheus.NewDesc("callgate_script_generation_loaded_timestamp_seconds", "When the live script generation was loaded.", nil, nil)
	poolSizeDesc  = prometheus.NewDesc("callgate_script_pool_size", "The bound of the live generation's runtime pool.", nil, nil)
	poolLiveDesc  = prometheus.NewDesc("callgate_script_pool_runtimes", "Runtimes of the live generation, by state (idle, total).", []string{"state"}, nil)
	poolInUseDesc = prometheus.NewDesc("callgate_script_inflight", "Requests and calls holding the live generation.", nil, nil)
)

func (c *generationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{genInfoDesc, genLoadedDesc, poolSizeDesc, poolLiveDesc, poolInUseDesc} {
		ch <- d
	}
}

func (c *generationCollector) Collect(ch chan<- prometheus.Metric) {
	if c.generation == nil {
		return
	}
	g := c.generation()
	if g == nil {
		return
	}
	ps := g.PoolStats()
	ch <- prometheus.MustNewConstMetric(genInfoDesc, prometheus.GaugeValue, 1, g.Hash())
	ch <- prometheus.MustNewConstMetric(genLoadedDesc, prometheus.GaugeValue, float64(g.LoadedAt().UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(poolSizeDesc, prometheus.GaugeValue, float64(ps.Size))
	ch <- prometheus.MustNewConstMetric(poolLiveDesc, prometheus.GaugeValue, float64(ps.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(poolLiveDesc, prometheus.GaugeValue, float64(ps.Live), "total")
	ch <- prometheus.MustNewConstMetric(poolInUseDesc, prometheus.GaugeValue, float64(ps.InUse))
}

// authRoutes are the /api/auth actions, the only path segments used as route labels.
var authRoutes = map[string]bool{
	"session": true, "csrf": true, "providers": true, "signin": true, "signout": true,
	"callback": true, "error": true, "verify-request": true, "_log": true, "backchannel-logout": true,
}

// Route is the label of a request no handler labelled (SetRoute): "/api/auth/session" and
// the other auth actions, "/" or "other". The paths the gateway serves itself and the
// proxied routes are labelled by whoever serves them, so an app's own /metrics forwarded
// on a route host is that route's, never "/metrics".
func Route(path string) string {
	if rest, ok := strings.CutPrefix(path, "/api/auth/"); ok {
		action, _, _ := strings.Cut(rest, "/")
		if authRoutes[action] {
			return "/api/auth/" + action
		}
		return "/api/auth/other"
	}
	if path == "/" {
		return path
	}
	return "other"
}

// SetRoute labels the request whose response w writes with route, from inside Middleware:
// the handler that knows what it is serving says so. The label set must stay bounded: fixed
// names and configured route names only. A w that Middleware did not wrap is left alone.
func SetRoute(w http.ResponseWriter, route string) {
	for {
		switch x := w.(type) {
		case *statusWriter:
			x.route = route
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// RouteOf is the label SetRoute gave the request w answers, or "" when none did (Route
// of the path is the label then): for instrumentation that runs inside Middleware and
// names what it saw the way the metrics do.
func RouteOf(w http.ResponseWriter) string {
	for {
		switch x := w.(type) {
		case *statusWriter:
			return x.route
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return ""
		}
	}
}

// StatusOf is the status the request w answers has written so far (200 when nothing set
// one), or false when w is not inside Middleware: for instrumentation that runs inside it
// and needs the answer's status without keeping a writer of its own.
func StatusOf(w http.ResponseWriter) (int, bool) {
	for {
		switch x := w.(type) {
		case *statusWriter:
			return x.code, true
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return 0, false
		}
	}
}

// Middleware counts and times every request by route: the label a handler set with
// SetRoute, else Route of the path.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := sw.route
		if route == "" {
			route = Route(r.URL.Path)
		}
		hs := m.httpSeries(httpKey{route, methodLabel(r.Method), sw.code})
		hs.requests.Inc()
		hs.duration.Observe(time.Since(start).Seconds())
	})
}

func (m *Metrics) httpSeries(k httpKey) *httpSeries {
	if hs, ok := m.httpSeriesByKey.Load(k); ok {
		return hs.(*httpSeries)
	}
	hs, _ := m.httpSeriesByKey.LoadOrStore(k, &httpSeries{
		requests: m.httpRequests.WithLabelValues(k.route, k.method, strconv.Itoa(k.code)),
		duration: m.httpDuration.WithLabelValues(k.route),
	})
	return hs.(*httpSeries)
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
		return m
	}
	return "other"
}

// statusWriter remembers the status code; Unwrap keeps http.ResponseController working.
type statusWriter struct {
	http.ResponseWriter
	code    int
	written bool
	route   string // set by SetRoute
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.code, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through (streamed proxy responses).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
