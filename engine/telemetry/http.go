package telemetry

import (
	"errors"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/callgate/callgate/engine/metrics"
)

// Middleware gives every request a server span, named by its method and the metrics'
// route label ("GET /api/auth/session", "GET route:app"), so that traces group the way
// the dashboards do and a path full of ids never becomes a span name. It must run inside
// metrics.Middleware, whose route label it reads once the request is served. The span
// carries the method, the route, the path (never the query string, which can hold a
// code or a token) and the status code; a 5xx answer marks it failed.
//
// The incoming traceparent becomes the parent only when TrustParent says the request
// came from a trusted proxy; from anyone else the gateway starts a new trace and links
// the client's, so a client cannot join or steer traces it does not own.
func (t *Telemetry) Middleware(next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		opts := []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(methodName(r.Method)), semconv.URLPath(r.URL.Path)),
		}
		if remote := trace.SpanContextFromContext(t.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))); remote.IsValid() {
			if t.trustParent(r) {
				ctx = trace.ContextWithRemoteSpanContext(ctx, remote)
			} else {
				opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{
					SpanContext: remote,
					Attributes:  []attribute.KeyValue{attribute.String("callgate.link", "untrusted client trace context")},
				}))
			}
		}
		ctx, span := t.tracer.Start(ctx, methodName(r.Method), opts...)
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))

		route := metrics.RouteOf(w)
		if route == "" {
			route = metrics.Route(r.URL.Path)
		}
		span.SetName(methodName(r.Method) + " " + route)
		span.SetAttributes(semconv.HTTPRoute(route))
		// The metrics' writer, outside this middleware, has the status.
		if code, ok := metrics.StatusOf(w); ok {
			span.SetAttributes(semconv.HTTPResponseStatusCode(code))
			if code >= 500 {
				span.SetStatus(codes.Error, http.StatusText(code))
			}
		}
	})
}

// methodName keeps span names and attributes to the known methods, as the metrics do.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// Transport wraps the proxy's upstream transport: a client span per upstream call, and
// the W3C trace context of that span in the request, replacing whatever traceparent and
// tracestate the client sent, so the app's own tracing continues the gateway's trace.
func (t *Telemetry) Transport(next http.RoundTripper) http.RoundTripper {
	if t == nil {
		return next
	}
	return &transport{t: t, next: next}
}

type transport struct {
	t    *Telemetry
	next http.RoundTripper
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := tr.t.tracer.Start(r.Context(), "upstream "+methodName(r.Method),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(methodName(r.Method)),
			semconv.ServerAddress(r.URL.Hostname()),
			semconv.URLPath(r.URL.Path),
		))
	defer span.End()
	// A RoundTripper must not change the request it was given: the headers are copied.
	out := r.WithContext(ctx)
	out.Header = r.Header.Clone()
	out.Header.Del("Traceparent")
	out.Header.Del("Tracestate")
	tr.t.propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	res, err := tr.next.RoundTrip(out)
	if err != nil {
		// Not the error's text: a *url.Error quotes the URL, query string and all.
		span.SetStatus(codes.Error, "upstream unreachable")
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", errors.Unwrap(err))))
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(res.StatusCode))
	if res.StatusCode >= 500 {
		span.SetStatus(codes.Error, http.StatusText(res.StatusCode))
	}
	return res, nil
}
