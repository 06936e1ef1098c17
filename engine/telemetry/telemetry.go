// Package telemetry is the gateway's OpenTelemetry tracing: a span per request, one per
// script callback, per store call and per upstream call, exported over OTLP to whatever
// backend the operator runs, and the trace and span ids added to the structured logs.
//
// It is configured by the standard OTEL_* environment (OTEL_EXPORTER_OTLP_ENDPOINT and its
// _TRACES_ forms, _PROTOCOL, _HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER, OTEL_SDK_DISABLED) and is off when no OTLP endpoint is set: Setup
// then returns nil, and every method of a nil *Telemetry hands back what it was given, so
// an untraced gateway creates no span, propagates nothing and pays nothing.
//
// It never records what could carry a secret: no callback arguments or results, no query
// string, no header value, no store key or record. Nothing here uses the OpenTelemetry
// globals (otel.SetTracerProvider): two gateways in one process never share a pipeline.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation is the tracer's scope name.
const instrumentation = "github.com/callgate/callgate"

// Telemetry is one tracing pipeline. A nil *Telemetry is tracing switched off.
type Telemetry struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	// propagator writes the W3C trace context (traceparent, tracestate) to upstream
	// requests and reads it from trusted proxies.
	propagator propagation.TextMapPropagator
	// trustParent says whether an incoming request's trace context may be its span's
	// parent; Options.TrustParent.
	trustParent func(*http.Request) bool
	// Endpoint is where spans go, for the startup log line.
	Endpoint string
	Protocol string
}

// Options are what the gateway decides beyond the environment.
type Options struct {
	// Getenv reads the environment; nil means no variable is set.
	Getenv func(string) string
	// Version is the gateway's version, the resource's service.version.
	Version string
	// TrustParent says whether a request's incoming traceparent may become its span's
	// parent: true for requests from the configured trusted proxies. Any other client's
	// trace context only links to the new trace the gateway starts, so a client on the
	// internet can neither join its requests to someone else's trace nor force sampling.
	// nil trusts no one.
	TrustParent func(*http.Request) bool
}

// Setup builds the pipeline the environment describes, or returns nil (and no error) when
// tracing is off: no OTLP endpoint set, or OTEL_SDK_DISABLED=true. A malformed variable is
// an error naming it. Setup does not wait for the collector: spans are batched and sent in
// the background, and a collector that is down costs the dropped spans, never a request.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	env, err := readEnv(getenv)
	if err != nil || env == nil {
		return nil, err
	}
	exp, err := env.exporter(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		append(env.resource, semconv.ServiceName(env.serviceName), semconv.ServiceVersion(o.Version))...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(env.sampler),
	)
	trust := o.TrustParent
	if trust == nil {
		trust = func(*http.Request) bool { return false }
	}
	return &Telemetry{
		provider:    tp,
		tracer:      tp.Tracer(instrumentation, trace.WithInstrumentationVersion(o.Version)),
		propagator:  propagation.TraceContext{},
		trustParent: trust,
		Endpoint:    env.endpoint,
		Protocol:    env.protocol,
	}, nil
}

// Shutdown sends the spans still buffered and stops the pipeline, within ctx.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: flush spans: %w", err)
	}
	return nil
}

// shutdownWait bounds the flush at shutdown: a collector that does not answer must not
// hold the gateway's exit.
const shutdownWait = 5 * time.Second

// Close is Shutdown bounded by a few seconds, for the gateway's lifecycle; the error is
// returned for the log.
func (t *Telemetry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	err := t.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("telemetry: the collector did not take the last spans within %s", shutdownWait)
	}
	return err
}

// shortHash is how spans name a generation: the first 12 hex digits, as the logs do.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// isTrue reads a boolean environment value the way the OpenTelemetry specification does:
// "true", case-insensitively; anything else is false.
func isTrue(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }
