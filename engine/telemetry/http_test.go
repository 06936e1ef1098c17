package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recorded is a pipeline whose spans stay in memory, the SDK's own recorder.
func recorded(trust func(*http.Request) bool) (*Telemetry, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	return &Telemetry{provider: tp, tracer: tp.Tracer(instrumentation), propagator: propagation.TraceContext{}, trustParent: trust}, rec
}

const clientParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestIncomingTraceContext(t *testing.T) {
	for _, tt := range []struct {
		name      string
		trusted   bool
		wantTrace bool // the span continues the incoming trace
	}{
		{"trusted proxy: parent honoured", true, true},
		{"any other client: new trace, linked", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tel, rec := recorded(func(*http.Request) bool { return tt.trusted })
			h := tel.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			req := httptest.NewRequest(http.MethodGet, "/api/auth/session?code=secret", nil)
			req.Header.Set("Traceparent", clientParent)
			h.ServeHTTP(httptest.NewRecorder(), req)
			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			s := spans[0]
			continued := s.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736"
			if continued != tt.wantTrace {
				t.Errorf("span trace %s: continued the client's trace = %v, want %v", s.SpanContext().TraceID(), continued, tt.wantTrace)
			}
			if !tt.wantTrace && (len(s.Links()) != 1 || s.Links()[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736") {
				t.Errorf("untrusted trace context: links %v, want the client's trace", s.Links())
			}
			if s.Name() != "GET /api/auth/session" {
				t.Errorf("span name %q, want GET /api/auth/session", s.Name())
			}
			for _, a := range s.Attributes() {
				if strings.Contains(a.Value.Emit(), "secret") {
					t.Errorf("attribute %s=%q holds the query string", a.Key, a.Value.Emit())
				}
			}
		})
	}
}

func TestTransportReplacesClientTraceContext(t *testing.T) {
	tel, rec := recorded(nil)
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer up.Close()
	ctx, parent := tel.tracer.Start(context.Background(), "request")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up.URL+"/x", nil)
	req.Header.Set("Traceparent", clientParent)
	req.Header.Set("Tracestate", "client=1")
	res, err := tel.Transport(http.DefaultTransport).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	parent.End()
	if req.Header.Get("Traceparent") != clientParent {
		t.Error("the transport changed the request it was given")
	}
	if got.Get("Tracestate") != "" {
		t.Errorf("the client's tracestate %q reached the upstream", got.Get("Tracestate"))
	}
	var upstream sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "upstream GET" {
			upstream = s
		}
	}
	if upstream == nil {
		t.Fatal("no upstream span")
	}
	want := "00-" + upstream.SpanContext().TraceID().String() + "-" + upstream.SpanContext().SpanID().String() + "-01"
	if got.Get("Traceparent") != want {
		t.Errorf("upstream got traceparent %q, want %q", got.Get("Traceparent"), want)
	}
	if upstream.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Error("the upstream span is not the request's child")
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	tel, _ := recorded(nil)
	var buf bytes.Buffer
	logger := slog.New(tel.LogHandler(slog.NewTextHandler(&buf, nil))).With("component", "test")
	ctx, span := tel.tracer.Start(context.Background(), "request")
	logger.InfoContext(ctx, "inside")
	span.End()
	logger.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	sc := trace.SpanContextFromContext(ctx)
	if !strings.Contains(lines[0], "trace_id="+sc.TraceID().String()) || !strings.Contains(lines[0], "span_id="+sc.SpanID().String()) {
		t.Errorf("line in a span %q lacks its ids", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("line outside any span %q has a trace id", lines[1])
	}
}
