package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// env is the tracing configuration read from the OTEL_* environment.
type env struct {
	endpoint    string // the full URL spans are sent to
	protocol    string // "http/protobuf", "http/json" or "grpc"
	headers     map[string]string
	serviceName string
	resource    []attribute.KeyValue
	sampler     sdktrace.Sampler
}

// defaultServiceName is service.name when OTEL_SERVICE_NAME is unset.
const defaultServiceName = "callgate"

// readEnv reads the variables the OpenTelemetry specification defines for a trace
// exporter, the _TRACES_ form winning over the general one. It returns nil when tracing
// is off. It reads them through getenv, never os.Getenv, so that what a test sets is
// what the gateway sees.
func readEnv(getenv func(string) string) (*env, error) {
	if isTrue(getenv("OTEL_SDK_DISABLED")) {
		return nil, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return nil, nil
	}
	first := func(names ...string) (name, value string) {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				return n, v
			}
		}
		return "", ""
	}
	e := &env{serviceName: defaultServiceName}
	_, e.protocol = first("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	if e.protocol == "" {
		e.protocol = "http/protobuf"
	}
	switch e.protocol {
	case "http/protobuf", "http/json", "grpc":
	default:
		return nil, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf, http/json or grpc", e.protocol)
	}

	name, endpoint := first("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	if endpoint == "" {
		return nil, nil // off: no collector to send to
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("telemetry: %s %q: want an http:// or https:// URL", name, endpoint)
	}
	if name == "OTEL_EXPORTER_OTLP_ENDPOINT" && e.protocol != "grpc" {
		// The general endpoint is a base: each signal adds its path. The _TRACES_ one is
		// used as it is.
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	e.endpoint = u.String()

	hname, headers := first("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
	if e.headers, err = parsePairs(headers); err != nil {
		// The value may hold a credential: name the variable, not its content.
		return nil, fmt.Errorf("telemetry: %s: %w", hname, err)
	}
	if v := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); v != "" {
		e.serviceName = v
	}
	attrs, err := parsePairs(getenv("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	for k, v := range attrs {
		if k == "service.name" && getenv("OTEL_SERVICE_NAME") == "" {
			e.serviceName = v
			continue
		}
		e.resource = append(e.resource, attribute.String(k, v))
	}
	if e.sampler, err = readSampler(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG")); err != nil {
		return nil, err
	}
	return e, nil
}

// parsePairs reads the W3C Baggage-like list the OTLP headers and resource attributes
// use: key=value pairs separated by commas, values percent-encoded.
func parsePairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("malformed entry %d: want key=value", len(out)+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("entry %q: the value is not percent-encoded properly", k)
		}
		out[k] = dv
	}
	return out, nil
}

// readSampler is OTEL_TRACES_SAMPLER: the SDK's default (parentbased_always_on) when
// unset. A ratio's argument is OTEL_TRACES_SAMPLER_ARG, 1 when unset.
func readSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg = strings.TrimSpace(arg); arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER_ARG %q: want a ratio between 0 and 1", arg)
		}
		ratio = r
	}
	switch strings.TrimSpace(name) {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER %q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
}

// exporter is the OTLP exporter e describes. Nothing is dialled yet.
func (e *env) exporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if e.protocol == "grpc" {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(e.endpoint)}
		if len(e.headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(e.headers))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/gRPC exporter: %w", err)
		}
		return exp, nil
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(e.endpoint)}
	if e.protocol == "http/json" {
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	}
	if len(e.headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(e.headers))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP/HTTP exporter: %w", err)
	}
	return exp, nil
}
