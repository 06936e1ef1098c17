package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/callgate/callgate/engine/script"
)

// Tracer is the script.Tracer that turns every callback call made during a traced request
// into a child span of that request: its name ("callbacks.jwt", "authorize",
// "events.signIn"), the generation that ran it, the outcome (ok, or the error kind) and
// its duration, including the wait for a runtime. Never its arguments or result, which
// hold passwords, tokens and profiles. Calls outside a request (a reload's self-test) are
// not traced. nil when t is: a generation with no tracer serialises nothing.
func (t *Telemetry) Tracer() script.Tracer {
	if t == nil {
		return nil
	}
	return scriptTracer{t}
}

type scriptTracer struct{ t *Telemetry }

// TimingOnly implements script.TimingOnly: a span needs no argument or result, so the
// script host serialises none for it.
func (scriptTracer) TimingOnly() {}

func (s scriptTracer) TraceCall(ctx context.Context, c script.TracedCall) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	outcome := "ok"
	var se *script.Error
	if c.Err != nil {
		outcome = "internal"
		if errors.As(c.Err, &se) {
			outcome = se.Kind.String()
		}
	}
	_, span := s.t.tracer.Start(ctx, c.Callback, trace.WithTimestamp(c.Start), trace.WithAttributes(
		attribute.String("callgate.callback", c.Callback),
		attribute.String("callgate.generation", shortHash(c.Generation)),
		attribute.String("callgate.outcome", outcome),
	))
	if c.Err != nil {
		// The kind and where in the script, not the message: a script can throw anything,
		// a credential included.
		desc := outcome
		if se != nil && se.File != "" {
			span.SetAttributes(attribute.String("code.file.path", se.File), attribute.Int("code.line.number", se.Line))
		}
		span.SetStatus(codes.Error, desc)
	}
	span.End(trace.WithTimestamp(c.Start.Add(c.Duration)))
}
